"""Model soups: one model whose weights are the (weighted) mean of several fine-tunes of one model.

Fine-tunes of the same parent (a model and its stain-jitter fine-tune, or the epochs of one run) lie in
one basin of the loss, and the mean of their weights often predicts as well as their ensemble at the
cost of one model (Wortsman et al. 2022, "Model soups"). Models trained apart from ImageNet (other
folds, other seeds) do not: average those and the result is noise. `average_models` checks that the
models are the same network used the same way (architecture, encoder, classes, scale, tile size,
normalisation) and writes the soup as a zoo model whose card names its parents by sha256; whether it
predicts well is for a held-out set to say (``bench/bench_stain.py``, ``bench/bench_postprocess.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

from hubkit.errors import CardError
from hubkit.models.card import SPLIT_KEYS, ModelCard
from hubkit.models.zoo import card_file, load, save

__all__ = ["MUST_MATCH", "average_models"]

#: Card fields every ingredient of a soup must share: the same network, fed and scaled the same way.
MUST_MATCH = ("kind", "inputs", "architecture", "encoder", "classes", "class_names", "scale", "tile_size", "mean",
              "std")


def average_models(models: Sequence, out, name: str = "", weights: Optional[Sequence[float]] = None,
                   dtype: str = "float16", notes: str = "") -> Path:
    """Average the weights of several models of one network into one zoo model.

    Float tensors (weights, batch-norm running statistics) are averaged in float32 with ``weights``;
    integer buffers (batch-norm step counts) are taken from the first model. The card is the first
    model's with ``name``, the weighted mean of the thresholds, no ``cv_score`` (a soup is measured
    anew) and in ``extra``: ``soup``, each parent's name, sha256 and weight; and where every parent is
    a fine-tune of one fold of one split (the same ``fold``, and the same `SPLIT_KEYS` in its
    ``config``), that fold, its ``valid_tiles`` and the first parent's ``config``, so the soup is
    validated on the tiles none of its parents trained on. Parents of different folds make a soup with
    no held-out fold.

    Args:
        models: two or more model folders (or card files), each loaded with its sha256 checked.
        out: the soup's model folder (created; a card already there is replaced).
        name: the soup's name (default: the folder's name).
        weights: one positive weight per model, normalised to sum to 1 (default: equal).
        dtype: how the weights are stored (``"float16"`` or ``"float32"``).
        notes: what the card's ``notes`` say (default: how it was made).

    Returns:
        The soup's card path.

    Raises:
        CardError: fewer than two models, a weight count or value that does not fit, a model that cannot be
            loaded, or two models whose cards differ in a `MUST_MATCH` field (the message names both
            cards, the field and both values).
    """
    paths = [Path(m) for m in models]
    if len(paths) < 2:
        raise CardError(f"a soup needs two or more models, got {len(paths)}: {', '.join(map(str, paths)) or 'none'}")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise CardError(f"{len(weights)} weights for {len(paths)} models: give one weight per model")
    if not all(w > 0 for w in weights):
        raise CardError(f"soup weights must all be positive, got {weights}")
    weights = [w / sum(weights) for w in weights]

    first, first_card = load(paths[0])
    states, cards = [first.state_dict()], [first_card]
    for path in paths[1:]:
        model, card = load(path)
        for field in MUST_MATCH:
            if getattr(card, field) != getattr(first_card, field):
                raise CardError(f"{card_file(path)}: {field} {getattr(card, field)!r} differs from "
                                f"{getattr(first_card, field)!r} in {card_file(paths[0])}; a soup averages "
                                f"one network ({', '.join(MUST_MATCH)} must match)")
        states.append(model.state_dict())
        cards.append(card)

    soup = {}
    for key, tensor in states[0].items():
        if tensor.is_floating_point():
            soup[key] = sum(w * s[key].float() for w, s in zip(weights, states)).to(tensor.dtype)
        else:
            soup[key] = tensor.clone()
    first.load_state_dict(soup)

    parents = [{"name": c.name, "sha256": c.sha256, "weight": round(w, 6)} for c, w in zip(cards, weights)]
    card = dataclasses.replace(
        first_card, name=name, sha256="", cv_score=None,
        threshold=float(sum(w * c.threshold for w, c in zip(weights, cards))),
        notes=notes or "Weight average (model soup) of " + ", ".join(
            f"{p['name']} (sha256 {p['sha256'][:8]}..., weight {p['weight']:g})" for p in parents) + ".",
        extra={**_shared_split(cards), "soup": parents},
    )
    return save(first, card, out, dtype=dtype)


def _shared_split(cards: list[ModelCard]) -> dict:
    """``fold``, ``valid_tiles`` and ``config`` of the first card when every card names the same fold of
    the same split (`SPLIT_KEYS` of its training config); else nothing."""
    folds = {card.extra.get("fold") for card in cards}
    splits = {tuple((card.extra.get("config") or {}).get(key) for key in SPLIT_KEYS) for card in cards}
    if len(folds) != 1 or None in folds or len(splits) != 1 or None in next(iter(splits)):
        return {}
    return {key: cards[0].extra[key] for key in ("fold", "valid_tiles", "config") if key in cards[0].extra}
