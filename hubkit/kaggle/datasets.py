"""Kaggle datasets that upload whole: ``kaggle datasets create -p DIR`` skips sub-folders unless told
otherwise, so every folder made here is flat (files only) with its ``dataset-metadata.json``.

- `pack_zoo`: a zoo's models as ``<name>.card.json`` + ``<name>.safetensors`` pairs.
- `pack_source`: the hubkit source tree as one ``hubkit-source.tar.gz`` (the wheel-builder kernel
  unpacks it into ``/kaggle/working``).
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

from hubkit.errors import CardError, MissingInputError, OutputError
from hubkit.kaggle.metadata import write_dataset_metadata
from hubkit.models.card import FLAT_CARD_SUFFIX, ModelCard
from hubkit.models.zoo import find_cards

__all__ = ["pack_zoo", "pack_source", "SOURCE_ARCHIVE", "SOURCE_FILES"]

#: The source dataset's one file.
SOURCE_ARCHIVE = "hubkit-source.tar.gz"

#: What the source archive holds (relative to the source tree): enough to build the wheel.
SOURCE_FILES = ("setup.py", "README.md", "LICENSE", "constraints.txt", "hubkit")


def _flat_folder(out) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    if folders:
        raise OutputError(f"{out}: holds folders ({', '.join(folders[:3])}), which `kaggle datasets create` "
                          "skips; pack into an empty folder")
    return out


def pack_zoo(zoo, out, dataset_id: str, title: str = "hubkit model zoo") -> list[Path]:
    """Write every model under ``zoo`` flat into ``out``: ``<name>.card.json`` and ``<name>.safetensors``.

    The weights keep their bytes (the card's sha256 still holds); only the card's ``weights_file``
    changes. Card names are plain file names (the card is validated), so nothing lands outside ``out``.

    Returns:
        The card files written.

    Raises:
        MissingInputError: no card under ``zoo``. CardError: an invalid card, or two models of one
            name. OutputError: ``out`` holds folders.
    """
    cards = find_cards(zoo)
    if not cards:
        raise MissingInputError(f"{zoo}: no model card found")
    out = _flat_folder(out)
    written: dict[str, Path] = {}
    for path in cards:
        card = ModelCard.read(path)
        if card.name in written:
            raise CardError(f"{zoo}: two models named {card.name!r} ({written[card.name]} and {path})")
        weights = f"{card.name}.safetensors"
        shutil.copyfile(path.parent / card.weights_file, out / weights)
        target = out / f"{card.name}{FLAT_CARD_SUFFIX}"
        target.write_text(replace(card, weights_file=weights).to_json(), encoding="utf-8")
        written[card.name] = path
    write_dataset_metadata(out, dataset_id, title)
    return sorted(out / f"{name}{FLAT_CARD_SUFFIX}" for name in written)


def _source_members(source: Path):
    for name in SOURCE_FILES:
        path = source / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                              and not p.name.endswith((".pyc", ".tmp")))


def pack_source(source, out, dataset_id: str, title: str = "hubkit source") -> Path:
    """Archive the hubkit source tree (`SOURCE_FILES`) as ``out/hubkit-source.tar.gz`` with metadata.

    Raises:
        MissingInputError: ``source`` has no ``setup.py`` and ``hubkit/``. OutputError: ``out``
            holds folders.
    """
    source = Path(source)
    if not (source / "setup.py").is_file() or not (source / "hubkit" / "__init__.py").is_file():
        raise MissingInputError(f"{source}: not a hubkit source tree (setup.py and hubkit/ expected)")
    out = _flat_folder(out)
    archive = out / SOURCE_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        for path in _source_members(source):
            tar.add(path, arcname=f"hubkit-source/{path.relative_to(source).as_posix()}", recursive=False)
    write_dataset_metadata(out, dataset_id, title)
    return archive
