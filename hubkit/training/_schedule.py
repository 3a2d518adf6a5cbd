"""Seeding, the optimiser set-up, the learning-rate schedule and the optimiser step every trainer shares."""

from __future__ import annotations

import random

import numpy as np
import torch

from hubkit.errors import ModelOutputError
from hubkit.inference.config import autocast_dtype

__all__ = ["seed_all", "lr_lambda", "optimizer_parts", "optimizer_step"]


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


def optimizer_parts(model: torch.nn.Module, cfg, steps_per_epoch: int, device: torch.device):
    """AdamW, its warm-up-then-decay schedule over the run and the gradient scaler.

    Args:
        model: the network whose parameters train.
        cfg: a `TrainConfig` (``lr``, ``weight_decay``, ``warmup``, ``epochs``, ``max_steps``, ``amp``).
        steps_per_epoch: optimiser steps in one epoch.
        device: where it trains: the scaler is on where its autocast is fp16 (`autocast_dtype`: CUDA),
            off where it is bf16 or float32 (a CPU), whose gradients do not underflow.

    Returns:
        ``(optim, sched, scaler, total)``; ``total`` is the run's optimiser steps
        (``epochs * steps_per_epoch``, capped by ``max_steps``), where the schedule reaches 0.
    """
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda(total, cfg.warmup))
    scaler = torch.amp.GradScaler(enabled=cfg.amp and autocast_dtype(device) == torch.float16)
    return optim, sched, scaler, total


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
