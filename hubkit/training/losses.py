"""Segmentation losses on logits ``(N, C, H, W)`` against targets in {0, 1} of the same shape.

`get_loss("bce+dice")` sums named terms; every loss returns a scalar tensor.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from hubkit.errors import ConfigError

__all__ = ["LOSSES", "get_loss", "dice_loss", "lovasz_hinge"]


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice, pooled over the batch per channel (stable on tiles without glomeruli)."""
    prob = torch.sigmoid(logits.float())
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + eps) / (total + eps)).mean()


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_hinge(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovasz hinge (Berman et al. 2018), per image then averaged: a direct surrogate of IoU."""
    losses = []
    for lg, tg in zip(logits.float().flatten(1), target.float().flatten(1)):
        signs = 2.0 * tg - 1.0
        errors = 1.0 - lg * signs
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(F.relu(errors_sorted), _lovasz_grad(tg[perm])))
    return torch.stack(losses).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "bce": bce,
    "dice": dice_loss,
    "lovasz": lovasz_hinge,
}


def get_loss(spec: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss from names joined by ``+`` (``"bce"``, ``"bce+dice"``, ``"bce+lovasz"``, ...).

    Raises:
        ConfigError: an unknown name; the message lists the valid ones.
    """
    names = [s.strip() for s in spec.split("+") if s.strip()]
    unknown = [n for n in names if n not in LOSSES]
    if not names or unknown:
        raise ConfigError(f"unknown loss {spec!r}; combine these with '+': {', '.join(LOSSES)}")
    terms = [LOSSES[n] for n in names]

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(term(logits, target) for term in terms)

    loss.__name__ = "+".join(names)
    return loss
