"""Train zoo models on a prepared tile set: ``hubkit train CONFIG`` or `run(TrainConfig(...))`.

k-fold by the index's ``group`` column (neighbouring tiles never straddle folds), AdamW with
linear warm-up then linear decay, AMP on CUDA (bf16 autocast on CPU), validation Dice every
epoch, and the best epoch of each fold saved as a zoo model whose card carries its CV score.
The same config runs on CPU (slowly) and on CUDA unchanged.
"""

from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hubkit.errors import ConfigError, DataError, ModelOutputError
from hubkit.formats.metrics import dice_from_counts
from hubkit.inference.config import resolve_device
from hubkit.models import zoo
from hubkit.models.card import ModelCard
from hubkit.models.registry import create_model
from hubkit.training.config import TrainConfig
from hubkit.training.data import TrainTiles, ValidTiles
from hubkit.training.losses import get_loss
from hubkit.training.prep import folds_by_group, read_index, tile_set_stats

__all__ = ["run", "train_fold", "train_loader", "evaluate", "summary_json"]


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _lr_lambda(total: int, warmup: float):
    warm = max(1, int(total * warmup))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return f


@torch.inference_mode()
def evaluate(model, loader, device, amp_dtype, threshold: float = 0.5) -> dict:
    """Pooled and per-tile Dice of a model over whole validation tiles."""
    model.eval()
    inter = total = 0.0
    per_tile = []
    for image, mask, h, w in loader:
        with torch.autocast(device.type, dtype=amp_dtype):
            logits = model(image.to(device, non_blocking=True))
        pred = (torch.sigmoid(logits.float())[:, 0, : int(h), : int(w)] > threshold).float().cpu()
        i, t = float((pred * mask).sum()), float(pred.sum() + mask.sum())
        inter, total = inter + i, total + t
        per_tile.append(dice_from_counts(i, t))
    model.train()
    return {"dice": dice_from_counts(inter, total), "dice_per_tile": float(np.mean(per_tile))}


def _mix(image: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp (blend with a shuffled batch) and CutMix (paste a box of it), each with its probability."""
    if cfg.mixup and random.random() < cfg.mixup:
        lam = float(np.random.beta(0.4, 0.4))
        perm = torch.randperm(image.shape[0], device=image.device)
        image = lam * image + (1 - lam) * image[perm]
        mask = lam * mask + (1 - lam) * mask[perm]
    if cfg.cutmix and random.random() < cfg.cutmix:
        h, w = image.shape[-2:]
        side = np.sqrt(1 - np.random.beta(1.0, 1.0))
        bh, bw = int(h * side), int(w * side)
        r, c = np.random.randint(0, h - bh + 1), np.random.randint(0, w - bw + 1)
        perm = torch.randperm(image.shape[0], device=image.device)
        image, mask = image.clone(), mask.clone()
        image[..., r : r + bh, c : c + bw] = image[perm][..., r : r + bh, c : c + bw]
        mask[..., r : r + bh, c : c + bw] = mask[perm][..., r : r + bh, c : c + bw]
    return image, mask


def train_loader(dataset: TrainTiles, cfg: TrainConfig, pin_memory: bool = False) -> DataLoader:
    """Batches of training crops. Workers are made afresh each epoch (not persistent), so they see
    the epoch `TrainTiles.set_epoch` sets and draw new crops."""
    return DataLoader(dataset, cfg.batch_size, shuffle=False, num_workers=cfg.workers, pin_memory=pin_memory,
                      drop_last=True)


def train_fold(cfg: TrainConfig, fold: int, progress: bool = True) -> dict:
    """Train one fold; save its best epoch as a zoo model. Returns the fold's summary."""
    if cfg.classes != 1:
        raise ConfigError(
            "training a 2-class (healthy/unhealthy) head needs masks labelled 1 and 2; the tile sets "
            "hubkit prepares have one class, so set classes to 1"
        )
    _seed(cfg.seed + fold)
    device = resolve_device(cfg.device)
    index, root = read_index(cfg.tiles)
    stats = tile_set_stats(root) or {"mean": [0.5] * 3, "std": [0.5] * 3}
    fold_of = folds_by_group(index["group"], cfg.folds, cfg.seed)
    train_idx, valid_idx = index[fold_of != fold], index[fold_of == fold]
    if cfg.sources_valid:
        valid_idx = valid_idx[valid_idx["source"].isin(cfg.sources_valid)]
    if len(train_idx) == 0 or len(valid_idx) == 0:
        raise DataError(f"fold {fold}: {len(train_idx)} training and {len(valid_idx)} validation tiles; need both")
    train_ds = TrainTiles(train_idx, root, cfg.crop, stats["mean"], stats["std"], cfg.samples_per_epoch,
                          strength=cfg.strength, seed=cfg.seed)
    valid_ds = ValidTiles(valid_idx, root, stats["mean"], stats["std"])
    pin = device.type == "cuda"
    train_dl = train_loader(train_ds, cfg, pin)
    valid_dl = DataLoader(valid_ds, 1, num_workers=cfg.workers, pin_memory=pin)
    model = create_model(cfg.architecture, cfg.encoder, cfg.classes, pretrained=cfg.pretrained or None)
    model = model.to(device).to(memory_format=torch.channels_last)
    steps_per_epoch = len(train_dl)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _lr_lambda(total, cfg.warmup))
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
    loss_fn = get_loss(cfg.loss)
    out_dir = Path(cfg.out) / f"{cfg.name}-fold{fold}"
    log_path = Path(cfg.out) / f"{cfg.name}-fold{fold}.log.csv"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    best = {"dice": -1.0}
    step, t0 = 0, time.time()
    with open(log_path, "w", newline="") as log_file:
        log = csv.writer(log_file)
        log.writerow(["epoch", "step", "lr", "train_loss", "valid_dice", "valid_dice_per_tile", "seconds"])
        for epoch in range(cfg.epochs):
            train_ds.set_epoch(epoch)
            losses = []
            bar = tqdm(train_dl, desc=f"fold {fold} epoch {epoch}", disable=not progress, leave=False)
            for image, mask in bar:
                image = image.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                mask = mask.to(device, non_blocking=True)
                image, mask = _mix(image, mask, cfg)
                with torch.autocast(device.type, dtype=amp_dtype):
                    logits = model(image)
                loss = loss_fn(logits.float(), mask)
                if not torch.isfinite(loss):
                    raise ModelOutputError(f"fold {fold} epoch {epoch} step {step}: loss is {loss.item()}")
                optim.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optim)
                scaler.update()
                sched.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                step += 1
                if step >= total:
                    break
            scores = evaluate(model, valid_dl, device, amp_dtype)
            log.writerow([epoch, step, f"{sched.get_last_lr()[0]:.2e}", f"{np.mean(losses):.5f}",
                          f"{scores['dice']:.5f}", f"{scores['dice_per_tile']:.5f}", f"{time.time() - t0:.0f}"])
            log_file.flush()
            if progress:
                print(f"fold {fold} epoch {epoch}: loss {np.mean(losses):.4f}  valid Dice {scores['dice']:.4f} "
                      f"(per tile {scores['dice_per_tile']:.4f})  {time.time() - t0:.0f} s", flush=True)
            if scores["dice"] > best["dice"]:
                best = {**scores, "epoch": epoch, "train_loss": float(np.mean(losses))}
                card = ModelCard(
                    architecture=cfg.architecture, encoder=cfg.encoder, name=f"{cfg.name}-fold{fold}",
                    classes=cfg.classes, class_names=["glomerulus"] if cfg.classes == 1 else ["healthy", "unhealthy"],
                    scale=cfg.scale, tile_size=cfg.tile_size, mean=tuple(stats["mean"]), std=tuple(stats["std"]),
                    training_data=cfg.training_data or f"tile set {cfg.tiles}: {stats.get('sources', '')}",
                    cv_score=round(scores["dice"], 5),
                    notes=f"fold {fold} of {cfg.folds} (groups never split); best epoch {epoch} of {cfg.epochs}",
                    extra={"fold": fold, "valid_tiles": len(valid_idx), "dice_per_tile": round(scores["dice_per_tile"], 5),
                           "config": asdict(cfg)},
                )
                zoo.save(model, card, out_dir, dtype="float16")
            if step >= total:
                break
    return {"fold": fold, "valid_tiles": len(valid_idx), "model": str(out_dir), **best}


def run(cfg: TrainConfig, progress: bool = True) -> list[dict]:
    """Train every fold in ``cfg.train_folds``; print and return their summaries."""
    results = [train_fold(cfg, fold, progress) for fold in cfg.train_folds]
    dice = [r["dice"] for r in results]
    if progress:
        for r in results:
            print(f"fold {r['fold']}: best valid Dice {r['dice']:.4f} (epoch {r['epoch']}, {r['valid_tiles']} tiles) -> {r['model']}")
        print(f"mean CV Dice over {len(dice)} fold(s): {np.mean(dice):.4f}")
    return results


def summary_json(results: list[dict], path: Optional[str] = None) -> str:
    text = json.dumps({"folds": results, "mean_dice": float(np.mean([r["dice"] for r in results]))}, indent=2)
    if path:
        Path(path).write_text(text)
    return text
