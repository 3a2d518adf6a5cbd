"""Seeding and the learning-rate schedule every trainer shares."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_all", "lr_lambda"]


def seed_all(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(total: int, warmup: float):
    """Linear warm-up over ``warmup`` of ``total`` steps, then linear decay to 0 (a LambdaLR factor)."""
    warm = max(1, int(total * warmup))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return f
