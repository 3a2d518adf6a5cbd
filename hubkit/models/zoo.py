"""The model zoo: models saved with a card beside their weights, found in any folder tree, loaded.

A zoo is any folder tree holding model folders, each with ``card.json`` (see `hubkit.models.card`)
and the safetensors file it names, checked by sha256 on load; a flat folder may hold several models
as ``<name>.card.json`` beside their weights (what Kaggle uploads whole). Kaggle mounts datasets and models at
paths that change, so `find_cards` walks the tree instead of assuming a layout; a local folder
loads exactly like a mounted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
from safetensors.torch import load_file, save_file

import hubkit
from hubkit._io import sha256_file
from hubkit.errors import CardError
from hubkit.models.card import CARD_FILE, FLAT_CARD_SUFFIX, ModelCard
from hubkit.models.ensemble import Ensemble
from hubkit.models.registry import create_model

__all__ = ["save", "load", "card_file", "is_card_file", "find_cards", "walk_once", "card_kinds", "choose_cards",
           "model_cards", "load_zoo", "ZooSource", "default_zoo_dir"]


def save(model: torch.nn.Module, card: ModelCard, directory, dtype: str = "float32") -> Path:
    """Save weights (safetensors) and the card beside them; fills ``card.sha256`` and ``dtype``.

    Args:
        model: a model from `create_model` matching the card.
        card: its card; ``name`` defaults to the folder name.
        directory: the model folder (created).
        dtype: ``"float32"`` or ``"float16"`` (half the size; loaded back as float32).

    Returns:
        The card's path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card.name = card.name or directory.name
    card.dtype = dtype
    card.hubkit_version = hubkit.__version__
    card.validate(str(directory / CARD_FILE))
    cast = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    tensors = {
        k: (v.detach().to("cpu", cast) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    weights = directory / card.weights_file
    save_file(tensors, str(weights), metadata={"format": "pt", "hubkit_card": card.name})
    card.sha256 = sha256_file(weights)
    path = directory / CARD_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(card.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(directory, device: str = "cpu", verify: bool = True) -> tuple[torch.nn.Module, ModelCard]:
    """Load a model folder (or its card file) into an eval-mode float32 model.

    Args:
        directory: the folder holding ``card.json``, or the card file itself (``card.json`` or a
            flat dataset's ``<name>.card.json``); the weights lie beside it.
        device: where to put the model.
        verify: check the weights' sha256 against the card.

    Raises:
        CardError: a missing card or weight file, a sha256 mismatch, or weights that do not fit the
            card's architecture; every message names the file.
    """
    card_path = card_file(directory)
    card = ModelCard.read(card_path)
    weights = card_path.parent / card.weights_file
    if not weights.is_file():
        raise CardError(f"{weights}: weight file named by {card_path} is missing")
    if verify and card.sha256 and sha256_file(weights) != card.sha256:
        raise CardError(f"{weights}: sha256 does not match {card_path} (corrupt or replaced weights)")
    model = create_model(card.architecture, card.encoder, card.classes,
                         **({"in_channels": card.in_channels} if card.in_channels != 3 else {}))
    try:
        state = load_file(str(weights))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise CardError(f"{weights}: unreadable safetensors file ({err})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CardError(f"{weights}: weights do not fit {card.architecture}/{card.encoder} ({first})") from None
    return model.to(device).eval(), card


def card_file(directory) -> Path:
    """The card of a model folder (``<folder>/card.json``), or ``directory`` itself where it names a card file."""
    directory = Path(directory)
    return directory if is_card_file(directory.name) else directory / CARD_FILE


def is_card_file(name: str) -> bool:
    """``card.json`` (a model folder) or ``<name>.card.json`` (a flat folder of several models,
    as `hubkit.kaggle.datasets.pack_zoo` writes for upload)."""
    return name == CARD_FILE or (name.endswith(FLAT_CARD_SUFFIX) and len(name) > len(FLAT_CARD_SUFFIX))


def find_cards(root) -> list[Path]:
    """Every hubkit card file (`is_card_file`) under ``root`` (any depth), sorted by path.

    Links are followed, but each real folder is visited once, so a link back up the tree neither
    loops nor lists a card twice.
    """
    return sorted(Path(folder) / f for folder, files in walk_once(root) for f in files if is_card_file(f))


def walk_once(root) -> Iterator[tuple[str, list[str]]]:
    """``(folder, file names)`` of every folder under ``root``, following links but visiting each real
    folder once (a link back up the tree neither loops nor repeats), in sorted order."""
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        yield folder, files


def card_kinds(root) -> set[str]:
    """The kinds (``segmenter``, ``classifier``) of the model cards under ``root``."""
    return {ModelCard.read(p).kind for p in find_cards(root)}


def choose_cards(root, names: Optional[list[str]] = None, kind: str = "segmenter") -> list[Path]:
    """The card files of the models of ``kind`` under ``root``, by card name (or those whose card
    ``name`` is in ``names``, in that order), read and checked but not loaded. A zoo may hold segmenters and
    classifiers side by side; each use picks its kind.

    Raises:
        CardError: no cards of the kind found, two cards of one name, a requested name missing (the
            message lists those found), or an invalid card.
    """
    cards = find_cards(root)
    if not cards:
        raise CardError(f"{root}: no model card ({CARD_FILE} or *{FLAT_CARD_SUFFIX}) found under this folder")
    by_name: dict[str, Path] = {}
    other: list[str] = []
    for path in cards:
        card = ModelCard.read(path)
        name = card.name
        if card.kind != kind:
            other.append(f"{name} ({card.kind})")
            continue
        if name in by_name:
            raise CardError(f"{root}: two models named {name!r} ({by_name[name].parent} and {path.parent}); "
                            "an ensemble would weigh it twice")
        by_name[name] = path
    if not by_name:
        raise CardError(f"{root}: no {kind} model card under this folder; found only {', '.join(other)}")
    if names is None:  # by card name, so a zoo of folders and its flat upload ensemble in one order
        return [by_name[n] for n in sorted(by_name)]
    absent = [n for n in names if n not in by_name]
    if absent:
        raise CardError(f"{root}: no {kind} models named {absent}; found {sorted(by_name)}")
    return [by_name[n] for n in names]


def model_cards(paths: Sequence, kind: str = "segmenter") -> list[Path]:
    """Models named by paths that may be zoos: a model folder or a card file stands for itself, a folder with no
    card of its own for the models of ``kind`` under it (`choose_cards`: by card name), in the order given.

    Raises:
        CardError: a zoo folder with no model of ``kind`` (see `choose_cards`).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        own = path.is_file() or (path / CARD_FILE).is_file() or not path.is_dir()  # not there: its load says so
        found += [path] if own else choose_cards(path, kind=kind)
    return found


def load_zoo(root, names: Optional[list[str]] = None, device: str = "cpu") -> Ensemble:
    """Load every segmenter under ``root`` (or those whose card ``name`` is in ``names``) as an ensemble.

    Raises:
        CardError: see `choose_cards`, or any model failing to load.
    """
    return Ensemble.of([load(path, device) for path in choose_cards(root, names)])


@dataclass(frozen=True)
class ZooSource:
    """Where an ensemble comes from, small enough to send to other processes, which load it there
    (`hubkit.inference.cluster` workers load their models once each).

    Attributes:
        root: the zoo folder.
        names: the models to use, or None for all of them.
    """

    root: str
    names: Optional[tuple[str, ...]] = None

    def cards(self) -> list[ModelCard]:
        """The chosen models' cards (their ``sha256`` identify the weights)."""
        return [ModelCard.read(p) for p in choose_cards(self.root, list(self.names) if self.names else None)]

    def load(self, device: str = "cpu") -> Ensemble:
        """The ensemble, on ``device``."""
        return load_zoo(self.root, list(self.names) if self.names else None).to(device)


def default_zoo_dir() -> Path:
    """The zoo shipped inside the hubkit package (the starter model lives here)."""
    return Path(__file__).parent / "builtin"
