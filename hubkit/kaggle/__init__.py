"""Kaggle: find a notebook's inputs, run the time-budgeted submission, build wheels and datasets.

`find_inputs` finds the competition, wheels and zoo under ``/kaggle/input``; `run_submission`
predicts into ``submission.csv`` within a time limit; `build_wheelhouse` and `pack_zoo` make the
offline datasets a submission notebook needs.
"""

from hubkit.kaggle.datasets import pack_zoo, write_dataset_metadata
from hubkit.kaggle.inputs import KaggleInputs, find_inputs
from hubkit.kaggle.submission import fit_budget, run_submission
from hubkit.kaggle.wheelhouse import EXCLUDED_PREFIXES, PLATFORMS, WHEELHOUSE_PACKAGES, build_wheelhouse

__all__ = [
    "KaggleInputs", "find_inputs", "run_submission", "fit_budget", "build_wheelhouse", "WHEELHOUSE_PACKAGES",
    "PLATFORMS", "EXCLUDED_PREFIXES", "write_dataset_metadata", "pack_zoo",
]
