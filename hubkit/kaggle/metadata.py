"""Kaggle's metadata files: ``dataset-metadata.json`` (``kaggle datasets create``) and the checks a
``kernel-metadata.json`` (``kaggle kernels push``) must pass.

Imports nothing beyond the standard library: the wheel-builder kernel uses it before hubkit's
dependencies are installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hubkit._io import read_json
from hubkit.errors import ConfigError

__all__ = ["write_dataset_metadata", "check_kernel_metadata", "MACHINE_SHAPES", "KERNEL_FIELDS"]

#: ``machine_shape`` values the Kaggle CLI documents (``NvidiaTeslaT4`` is two T4s); CPU kernels omit it.
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaL4", "NvidiaH100", "TpuV6E8")

#: Fields every kernel-metadata.json here spells out (``enable_internet`` included: the CLI defaults it to true).
KERNEL_FIELDS = ("id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu", "enable_tpu",
                 "enable_internet", "dataset_sources", "competition_sources", "kernel_sources", "model_sources")

_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9-]{4,49}$")


def write_dataset_metadata(folder, dataset_id: str, title: str, licence: str = "other") -> Path:
    """Write the ``dataset-metadata.json`` that ``kaggle datasets create -p folder`` reads.

    Raises:
        ConfigError: ``dataset_id`` is not ``owner/slug`` (slug: 5-50 lower-case letters, digits, '-').
    """
    if not _DATASET_ID.match(dataset_id):
        raise ConfigError(f"dataset id must be 'owner/slug' (slug: 5-50 of a-z, 0-9, '-'), got {dataset_id!r}")
    path = Path(folder) / "dataset-metadata.json"
    path.write_text(json.dumps({"title": title, "id": dataset_id, "licenses": [{"name": licence}]}, indent=2))
    return path


def check_kernel_metadata(path) -> dict:
    """Read a ``kernel-metadata.json`` and check what ``kaggle kernels push`` would get wrong silently.

    Returns:
        The metadata.

    Raises:
        ConfigError: a missing field, a non-boolean flag, an undocumented ``machine_shape`` (or one
            on a kernel without GPU/TPU), or a missing code file; the message names the file.
    """
    path = Path(path)
    meta = read_json(path, ConfigError, "kernel metadata")
    problems = [f"missing {k}" for k in KERNEL_FIELDS if k not in meta]
    problems += [f"{k} must be true or false" for k in ("is_private", "enable_gpu", "enable_tpu", "enable_internet")
                 if k in meta and not isinstance(meta[k], bool)]
    shape = meta.get("machine_shape")
    accelerated = meta.get("enable_gpu") or meta.get("enable_tpu")
    if shape is not None and shape not in MACHINE_SHAPES:
        problems.append(f"machine_shape {shape!r} is not one of {', '.join(MACHINE_SHAPES)} (omit it for CPU)")
    if shape is not None and not accelerated:
        problems.append(f"machine_shape {shape!r} on a kernel with enable_gpu and enable_tpu false")
    if not (path.parent / str(meta.get("code_file", ""))).is_file():
        problems.append(f"code_file {meta.get('code_file')!r} is not beside it")
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    return meta
