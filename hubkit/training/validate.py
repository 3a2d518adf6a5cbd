"""A saved fold model scored on its held-out fold, as the trainer scored it, and the score kept on its card.

A model `hubkit train` saved (or a soup of fine-tunes of one fold, `hubkit.models.soup`) names its split on
its card: ``extra.fold`` and the training ``config`` (tile set, folds, seed, ``sources_valid``). That is
enough to rebuild the fold's validation tiles and score the model on them, whole tiles at model scale, no
TTA, at the card's threshold: the card's ``cv_score``. A model of no known fold has no held-out tiles and
is refused rather than scored on tiles it may have trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import torch
from torch.utils.data import DataLoader

from hubkit._io import atomic_write
from hubkit.errors import CardError, DataError
from hubkit.inference.config import autocast_dtype
from hubkit.models.card import ModelCard
from hubkit.models.zoo import card_file, load
from hubkit.training.data import ValidTiles
from hubkit.training.loop import evaluate
from hubkit.training.prep import read_index, split_fold

__all__ = ["FoldScore", "held_out_tiles", "validate_fold_model", "record_fold_score"]


@dataclass(frozen=True)
class FoldScore:
    """A model's Dice on its held-out fold.

    Attributes:
        dice: pooled over the tiles' pixels (the card's ``cv_score``).
        dice_per_tile: the mean of the tiles' Dice.
        tiles: validation tiles scored.
        fold: the fold.
    """

    dice: float
    dice_per_tile: float
    tiles: int
    fold: int


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
        device: where to run it (bf16 autocast on CPU, fp16 on CUDA).

    Returns:
        The pooled and per-tile Dice over the fold's validation tiles (``sources_valid`` of its config).

    Raises:
        CardError: a card with no fold or no training config (the message names the card).
        DataError: a tile set that is not there, or that holds no tile of the fold.
    """
    card, valid, root = held_out_tiles(directory, tiles)  # the card's split is checked before the weights are read
    model, _ = load(directory, device)  # sha256-checked
    torch_device = torch.device(device)
    loader = DataLoader(ValidTiles(valid, root, card.mean, card.std, card.classes), batch_size=1)
    scores = evaluate(model, loader, torch_device, autocast_dtype(torch_device), card.threshold)
    return FoldScore(float(scores["dice"]), float(scores["dice_per_tile"]), len(valid), card.extra["fold"])


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
