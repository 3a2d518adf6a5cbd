"""A saved fold model scored on its held-out fold, as the trainer scored it, and the score kept on its card.

A model `hubkit train` saved (or a soup of fine-tunes of one fold, `hubkit.models.soup`) names its split on
its card: ``extra.fold`` and the training ``config`` (tile set, folds, seed, ``sources_valid``). That is
enough to rebuild the fold's validation tiles and score the model on them, whole tiles at model scale, no
TTA, at the card's threshold: the card's ``cv_score``. A model of no known fold has no held-out tiles and
is refused rather than scored on tiles it may have trained on.

Models of one split, one per fold (a k-fold zoo, `data_prep/train_folds.sh`), score every tile of the split once
between them, each by the model that never trained on it: their out-of-fold Dice (`validate_out_of_fold`), pooled
over all those tiles' pixels, is the recipe's cross-validation score, the figure to compare recipes by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import torch
from torch.utils.data import DataLoader

from hubkit._io import atomic_write
from hubkit.errors import CardError, DataError
from hubkit.formats.metrics import dice_from_counts
from hubkit.models.card import SPLIT_KEYS, ModelCard
from hubkit.models.zoo import card_file, load
from hubkit.training.data import ValidTiles
from hubkit.training.loop import evaluate
from hubkit.training.prep import read_index, split_fold

__all__ = ["FoldScore", "OutOfFold", "held_out_tiles", "held_out_loader", "missing_folds", "one_split",
           "validate_fold_model", "validate_out_of_fold", "record_fold_score"]


@dataclass(frozen=True)
class FoldScore:
    """A model's Dice on its held-out fold.

    Attributes:
        dice: pooled over the tiles' pixels (the card's ``cv_score``).
        dice_per_tile: the mean of the tiles' Dice.
        tiles: validation tiles scored.
        fold: the fold.
        intersection: pixels predicted and true, summed over the tiles (to pool with other folds).
        total: pixels predicted plus pixels true, summed over the tiles.
    """

    dice: float
    dice_per_tile: float
    tiles: int
    fold: int
    intersection: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class OutOfFold:
    """Fold models of one split scored together, each on the tiles it held out (`validate_out_of_fold`).

    Attributes:
        dice: pooled over every scored tile's pixels: the split's out-of-fold (cross-validation) Dice.
        dice_per_tile: the mean of every scored tile's Dice.
        tiles: tiles scored, over all the folds given.
        folds: the folds given, ascending.
        of: the split's number of folds (``folds`` is complete when it holds all of them).
        scores: each model's own `FoldScore`, in the order the models were given.
    """

    dice: float
    dice_per_tile: float
    tiles: int
    folds: tuple[int, ...]
    of: int
    scores: tuple[FoldScore, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        """The split's folds no model was given for (their tiles are not in the score)."""
        return missing_folds(self.folds, self.of)


def missing_folds(folds: Sequence[int], of: int) -> tuple[int, ...]:
    """The folds of a split of ``of`` folds that are not in ``folds``, ascending."""
    return tuple(k for k in range(of) if k not in folds)


def held_out_tiles(directory, tiles: Optional[str] = None) -> tuple[ModelCard, pd.DataFrame, Path]:
    """A saved fold model's card and the validation tiles of its fold (``sources_valid`` of its config).

    Args:
        directory: the model folder (or its card file).
        tiles: the tile set (default: the one its card's config names, relative to the working folder).

    Returns:
        ``(card, valid, root)``: the card, the fold's rows of the tile set's index and the tile set's folder.

    Raises:
        CardError: a card with no fold or no training config (the message names the card).
        DataError: a tile set that is not there, or that holds no tile of the fold.
    """
    path = card_file(directory)
    card = ModelCard.read(path)  # the card's split is checked before the weights are read
    config, fold = card.extra.get("config"), card.extra.get("fold")
    if not (isinstance(config, dict) and isinstance(fold, int)
            and all(isinstance(config.get(key), int) for key in ("folds", "seed"))):
        raise CardError(f"{path}: names no held-out fold (extra.fold, and extra.config with its folds and seed, "
                        "as `hubkit train` writes them), so there are no tiles it is known not to have trained on")
    tile_set = tiles or config.get("tiles")
    if not tile_set or not Path(tile_set).is_dir():
        raise DataError(f"{path}: its tile set {tile_set!r} is not there; build it (data_prep/) or pass --tiles")
    index, root = read_index(tile_set)
    _, valid = split_fold(index, config["folds"], config["seed"], fold, sources_valid=config.get("sources_valid"))
    if len(valid) == 0:
        raise DataError(f"{tile_set}: no tile of fold {fold} (sources {config.get('sources_valid') or 'all'}) "
                        f"to score {path} on")
    return card, valid, root


def validate_fold_model(directory, tiles: Optional[str] = None, device: str = "cpu") -> FoldScore:
    """Score a saved model on the validation tiles of its fold (`held_out_tiles`).

    Args:
        directory: the model folder (or its card file); weights sha256-checked.
        tiles: the tile set (default: the one its card's config names, relative to the working folder).
        device: where to run it (autocast as `hubkit.inference.config.autocast_dtype` says).

    Returns:
        The pooled and per-tile Dice over the fold's validation tiles (``sources_valid`` of its config).

    Raises:
        CardError: a card with no fold or no training config (the message names the card).
        DataError: a tile set that is not there, or that holds no tile of the fold.
    """
    card, valid, root = held_out_tiles(directory, tiles)  # the card's split is checked before the weights are read
    return _score(directory, card, valid, root, device)


def validate_out_of_fold(directories: Sequence, tiles: Optional[str] = None, device: str = "cpu") -> OutOfFold:
    """Score fold models of one split, one model per fold, each on its held-out fold, and pool them.

    Every card is checked before any weights are read: the models must share one split (the same tile set,
    number of folds, seed and validation sources, so the folds' tiles are disjoint) and hold out different folds.
    Fewer models than folds give the out-of-fold Dice of the folds given (`OutOfFold.missing` names the rest).

    Args:
        directories: model folders (or card files), e.g. ``train_folds.sh``'s ``zoo/*``.
        tiles: the tile set (default: the one each card's config names, relative to the working folder).
        device: where to run them (autocast as `hubkit.inference.config.autocast_dtype` says).

    Returns:
        The pooled Dice over all the folds' tiles, and each model's own score.

    Raises:
        CardError: no model; a card with no fold; models of different splits, or two of one fold (the message
            names both cards and what differs).
        DataError: a tile set that is not there, or that holds no tile of a fold.
    """
    held = one_split(directories, tiles)
    scores = tuple(_score(directory, card, valid, root, device)
                   for directory, (card, valid, root) in zip(directories, held))
    inter, total = sum(s.intersection for s in scores), sum(s.total for s in scores)
    count = sum(s.tiles for s in scores)
    return OutOfFold(dice_from_counts(inter, total), sum(s.dice_per_tile * s.tiles for s in scores) / count,
                     count, tuple(sorted(s.fold for s in scores)), held[0][0].extra["config"]["folds"], scores)


def one_split(directories: Sequence, tiles: Optional[str] = None) -> list[tuple[ModelCard, pd.DataFrame, Path]]:
    """The held-out tiles of fold models that must be one split's folds, one model each (`held_out_tiles`).

    Args:
        directories: model folders (or card files); only their cards are read.
        tiles: the tile set (default: the one each card's config names, relative to the working folder).

    Returns:
        ``(card, valid, root)`` per model, in order; the folds' ``valid`` rows are disjoint.

    Raises:
        CardError: no model; a card with no fold; models of different splits (the same tile set, number of
            folds, seed and validation sources make one split), or two of one fold: the message names both
            cards and what differs.
        DataError: a tile set that is not there, or that holds no tile of a fold.
    """
    if not directories:
        raise CardError("no model to score: give one model folder per fold")
    held = [held_out_tiles(directory, tiles) for directory in directories]
    first_split = _split(held[0][0], held[0][2])
    by_fold: dict[int, object] = {}
    for directory, (card, _, root) in zip(directories, held):
        split = _split(card, root)
        if split != first_split:
            differ = ", ".join(f"{_KEY_NAMES.get(key, key)} {split[key]!r} vs {first_split[key]!r}"
                               for key in split if split[key] != first_split[key])
            raise CardError(f"{card_file(directory)}: held out a fold of another split than "
                            f"{card_file(directories[0])} ({differ}); out-of-fold Dice pools the folds of one split")
        fold = card.extra["fold"]
        if fold in by_fold:
            raise CardError(f"{card_file(directory)} and {card_file(by_fold[fold])}: both held out fold {fold}; "
                            "give one model per fold")
        by_fold[fold] = directory
    return held


#: How `one_split`'s errors name the config keys that are not plain words.
_KEY_NAMES = {"tiles": "tile set", "sources_valid": "validation sources"}


def _split(card: ModelCard, root: Path) -> dict:
    """What decides a fold model's held-out tiles: its config's `SPLIT_KEYS` (the tile set as the folder
    actually read, which ``--tiles`` may name) and the validation sources that filter them."""
    config = card.extra["config"]
    return {**{key: config.get(key) for key in SPLIT_KEYS}, "tiles": str(Path(root).resolve()),
            "sources_valid": sorted(config.get("sources_valid") or [])}


def held_out_loader(card: ModelCard, valid: pd.DataFrame, root: Path) -> DataLoader:
    """Whole tiles of a tile set (``valid``: rows of its index, e.g. those `held_out_tiles` gave for a model),
    one a batch, normalised as the model's card says."""
    return DataLoader(ValidTiles(valid, root, card.mean, card.std, card.classes), batch_size=1)


def _score(directory, card: ModelCard, valid: pd.DataFrame, root: Path, device: str) -> FoldScore:
    """A fold model scored on the validation rows `held_out_tiles` gave for it."""
    model, _ = load(directory, device)  # sha256-checked
    torch_device = torch.device(device)
    scores = evaluate(model, held_out_loader(card, valid, root), torch_device, card.threshold)
    return FoldScore(float(scores["dice"]), float(scores["dice_per_tile"]), len(valid), card.extra["fold"],
                     float(scores["intersection"]), float(scores["total"]))


def record_fold_score(directory, score: FoldScore) -> Path:
    """Write ``score`` into the card: ``cv_score`` (pooled Dice), ``extra.dice_per_tile`` and
    ``extra.valid_tiles``; the weights and their sha256 are unchanged. Returns the card's path."""
    path = card_file(directory)
    card = ModelCard.read(path)
    card.cv_score = round(score.dice, 5)
    card.extra = {**card.extra, "valid_tiles": score.tiles, "dice_per_tile": round(score.dice_per_tile, 5)}
    with atomic_write(path) as f:
        f.write(card.to_json())
    return path
