"""Kaggle: the image kernels run in, their inputs, the time-budgeted submission, wheels and datasets.

`find_inputs` finds the competition, wheels and zoo under ``/kaggle/input``; `run_submission`
predicts into ``submission.csv`` within a time limit; `build_wheelhouse`, `pack_zoo` and
`pack_source` make the offline datasets a submission notebook needs.

The wheel-builder kernel imports `hubkit.kaggle.wheelhouse` in an image that lacks hubkit's
dependencies, so the names that need torch or smp are imported on first use.
"""

from hubkit.kaggle.image import ImageSpec, get_image
from hubkit.kaggle.metadata import check_kernel_metadata, write_dataset_metadata
from hubkit.kaggle.wheelhouse import EXCLUDED_PREFIXES, WHEEL_SETS, build_wheelhouse, check_wheels

__all__ = [
    "KaggleInputs", "find_inputs", "run_submission", "fit_budget", "Pace", "build_wheelhouse", "check_wheels",
    "WHEEL_SETS", "EXCLUDED_PREFIXES", "ImageSpec", "get_image", "write_dataset_metadata", "check_kernel_metadata",
    "pack_zoo", "pack_source",
]

_LAZY = {
    "KaggleInputs": "hubkit.kaggle.inputs", "find_inputs": "hubkit.kaggle.inputs",
    "run_submission": "hubkit.kaggle.submission", "fit_budget": "hubkit.kaggle.submission",
    "Pace": "hubkit.kaggle.submission", "pack_zoo": "hubkit.kaggle.datasets", "pack_source": "hubkit.kaggle.datasets",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hubkit.kaggle' has no attribute {name!r}")
