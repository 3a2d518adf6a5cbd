"""Training: tile sets cut at model scale, augmented crops, losses, and the k-fold trainer.

`hubkit.training.prep` cuts tile sets (with fold groups) from tile folders or competition slides;
`load_config` reads a `TrainConfig`; `run` trains its folds, each fold's best epoch saved as a zoo
model with its card; a ``task: classify`` config trains a glomerulus classifier on a crop set
(`hubkit.training.crops`, `hubkit.training.classify`); `validate_fold_model` scores a saved fold model
on its held-out tiles as the trainer did, `validate_out_of_fold` a k-fold zoo's models on all the split's
tiles, each tile by the model that held it out, and `calibrate_out_of_fold` chooses their probability cuts on
those tiles. Importing this package imports torch and albumentations.
"""

from hubkit.training.calibrate import Calibration, Cut, calibrate_out_of_fold
from hubkit.training.config import TrainConfig, apply_overrides, load_config
from hubkit.training.loop import run, summary_json, train_fold
from hubkit.training.prep import (
    folds_by_group,
    prepare_slides,
    prepare_tile_folder,
    read_index,
    split_fold,
    write_index,
)
from hubkit.training.validate import (
    FoldScore,
    OutOfFold,
    record_fold_score,
    validate_fold_model,
    validate_out_of_fold,
)

__all__ = [
    "TrainConfig", "load_config", "apply_overrides", "run", "train_fold", "summary_json", "prepare_tile_folder",
    "prepare_slides", "write_index", "read_index", "folds_by_group", "split_fold", "FoldScore", "validate_fold_model",
    "record_fold_score", "OutOfFold", "validate_out_of_fold", "Calibration", "Cut", "calibrate_out_of_fold",
]
