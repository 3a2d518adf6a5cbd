"""Seeding, the learning-rate schedule and the optimiser step every trainer shares."""

from __future__ import annotations

import random

import numpy as np
import torch

from hubkit.errors import ModelOutputError

__all__ = ["seed_all", "lr_lambda", "optimizer_step"]


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


def optimizer_step(loss: torch.Tensor, optim, scaler, sched, where: str) -> float:
    """Backpropagate ``loss`` through the gradient scaler, step the optimiser and the schedule.

    Returns:
        The loss as a float.

    Raises:
        ModelOutputError: the loss is NaN or infinite (``where`` says which fold, epoch and step).
    """
    if not torch.isfinite(loss):
        raise ModelOutputError(f"{where}: loss is {loss.item()}")
    optim.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optim)
    scaler.update()
    sched.step()
    return loss.item()
