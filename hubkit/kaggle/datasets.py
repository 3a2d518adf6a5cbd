"""Kaggle datasets from local folders: ``dataset-metadata.json``, and a zoo packed for upload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hubkit.errors import ConfigError, MissingInputError
from hubkit.models.card import ModelCard
from hubkit.models.zoo import find_cards

__all__ = ["write_dataset_metadata", "pack_zoo"]


def write_dataset_metadata(folder, dataset_id: str, title: str, licence: str = "other") -> Path:
    """Write the Kaggle ``dataset-metadata.json`` that ``kaggle datasets create -p folder`` reads."""
    if "/" not in dataset_id:
        raise ConfigError(f"dataset id must be 'owner/slug', got {dataset_id!r}")
    path = Path(folder) / "dataset-metadata.json"
    path.write_text(json.dumps({"title": title, "id": dataset_id, "licenses": [{"name": licence}]}, indent=2))
    return path


def pack_zoo(zoo, out, dataset_id: str, title: str = "hubkit model zoo") -> list[Path]:
    """Copy a zoo's model folders (card and weights) into ``out/<name>/`` with ``dataset-metadata.json``.

    Card names and weight file names are plain file names (the card is validated), so nothing is
    written outside ``out``.

    Returns:
        The packed model folders.

    Raises:
        MissingInputError: no card under ``zoo``; CardError: an invalid card.
    """
    out = Path(out)
    cards = find_cards(zoo)
    if not cards:
        raise MissingInputError(f"{zoo}: no card.json found")
    packed = []
    for path in cards:
        card = ModelCard.read(path)
        target = out / card.name
        target.mkdir(parents=True, exist_ok=True)
        for name in ("card.json", card.weights_file):
            shutil.copy2(path.parent / name, target / name)
        packed.append(target)
    write_dataset_metadata(out, dataset_id, title)
    return packed
