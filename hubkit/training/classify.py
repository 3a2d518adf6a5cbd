"""Train glomerulus classifiers on a crop set: ``hubkit train`` with ``task: classify``.

k-fold by slide (`folds_by_group` on ``labels.csv``'s ``slide``: crops of one slide never straddle
folds), the class imbalance weighed into the loss (positive weight = negatives / positives), stain
and colour augmentation (`hubkit.training.augment.crop_transforms`), AdamW with warm-up and linear
decay, autocast as `hubkit.inference.config.autocast_dtype` says. Each fold keeps its **last** epoch
(picking the best epoch on the fold would flatter its own score), so the out-of-fold probabilities are honest.

Writes, under ``cfg.out``: ``<name>-fold<k>/`` (a zoo model of kind ``classifier``),
``<name>-oof.csv`` (``crop, slide, label, fold, p``: every validated crop), ``<name>-cv.csv`` (the
per-fold table: ROC AUC, balanced accuracy at 0.5, sensitivity at 90% specificity) and, with
``fit_all``, ``<name>/``: one model trained on every crop, its card carrying the CV table and the
threshold that maximised balanced accuracy out of fold. One process (no ``torchrun``): a crop set
trains in minutes on a GPU.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from hubkit._io import atomic_write
from hubkit.errors import DataError
from hubkit.formats.metrics import balanced_accuracy, best_threshold, roc_auc, sensitivity_at_specificity
from hubkit.inference.config import autocast, resolve_device
from hubkit.models import zoo
from hubkit.models.card import ModelCard
from hubkit.models.classifier import crop_probabilities
from hubkit.models.pretrained import PRETRAINED
from hubkit.models.registry import create_model
from hubkit.training._schedule import optimizer_parts, optimizer_step, seed_all
from hubkit.training.config import TrainConfig
from hubkit.training.crops import CropSet, read_crop_set
from hubkit.training.prep import folds_by_group

__all__ = ["run_classify", "classifier_metrics", "crop_folds"]


def classifier_metrics(labels, scores, threshold: float = 0.5) -> dict:
    """ROC AUC, balanced accuracy at ``threshold`` and sensitivity at 90% specificity."""
    sens, _ = sensitivity_at_specificity(labels, scores, 0.9)
    return {"auc": roc_auc(labels, scores), "balanced_accuracy": balanced_accuracy(labels, scores, threshold),
            "sensitivity_at_90_specificity": sens}


def crop_folds(table: pd.DataFrame, cfg: TrainConfig) -> np.ndarray:
    """The fold of every crop, by slide; each fold to train must validate and train on both classes.

    Raises:
        DataError: a fold whose validation or training crops lack a class (fewer folds help).
    """
    fold_of = folds_by_group(table["slide"], cfg.folds, cfg.seed)
    for fold in cfg.train_folds:
        for part, rows in (("validation", table[fold_of == fold]), ("training", table[fold_of != fold])):
            if rows["target"].nunique() < 2:
                raise DataError(f"{cfg.tiles}: fold {fold}'s {part} crops ({len(rows)}, slides "
                                f"{sorted(set(rows['slide']))[:5]}) hold one class only; use fewer folds")
    return fold_of


def _normalisation(cfg: TrainConfig) -> tuple[tuple, tuple]:
    """The pretrained weights' input normalisation (ImageNet's when training from scratch)."""
    if cfg.pretrained:
        source = PRETRAINED[cfg.pretrained]
        return source.mean, source.std
    return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _inputs(ds: CropSet) -> torch.Tensor:
    return torch.stack([ds[i][0] for i in range(len(ds))])


def _train(cfg: TrainConfig, train_rows: pd.DataFrame, valid_rows: Optional[pd.DataFrame], label: str,
           progress: bool) -> tuple[torch.nn.Module, Optional[np.ndarray]]:
    """Train one model; returns it (eval mode) and its probabilities on ``valid_rows``."""
    device = resolve_device(cfg.device)
    mean, std = _normalisation(cfg)
    with_mask = cfg.inputs == "rgb+mask"
    train_ds = CropSet(train_rows, cfg.tile_size, mean, std, with_mask, cfg.strength, cfg.seed)
    valid_x = _inputs(CropSet(valid_rows, cfg.tile_size, mean, std, with_mask)) if valid_rows is not None else None
    model = create_model(cfg.architecture, cfg.encoder, 1, pretrained=cfg.pretrained or None,
                         **({"in_channels": 4} if with_mask else {}))
    model = model.to(device).to(memory_format=torch.channels_last)
    loader = DataLoader(train_ds, cfg.batch_size, shuffle=True, num_workers=cfg.workers, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.seed), pin_memory=device.type == "cuda")
    optim, sched, scaler, total = optimizer_parts(model, cfg, len(loader), device)
    positives = int(train_rows["target"].sum())
    pos_weight = torch.tensor([(len(train_rows) - positives) / max(positives, 1)], device=device)
    say = print if progress else (lambda *a, **k: None)
    step, t0, probs = 0, time.time(), None
    for epoch in range(cfg.epochs):
        if step >= total:
            break
        train_ds.set_epoch(epoch)
        model.train()
        losses = []
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            with autocast(device, cfg.amp):
                logits = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y.to(device),
                                                                        pos_weight=pos_weight)
            losses.append(optimizer_step(loss, optim, scaler, sched, f"{label} epoch {epoch} step {step}"))
            step += 1
            if step >= total:
                break
        model.eval()
        line = f"{label} epoch {epoch}: loss {np.mean(losses) if losses else float('nan'):.4f}"
        if valid_x is not None:
            probs = crop_probabilities(model, valid_x)
            line += f"  valid AUC {roc_auc(valid_rows['target'], probs):.4f}"
        say(f"{line}  {time.time() - t0:.0f} s", flush=True)
    if valid_x is not None and probs is None:
        probs = crop_probabilities(model.eval(), valid_x)
    return model.eval(), probs


def _card(cfg: TrainConfig, name: str, threshold: float, cv_score: Optional[float], notes: str,
          extra: dict) -> ModelCard:
    mean, std = _normalisation(cfg)
    return ModelCard(
        architecture=cfg.architecture, encoder=cfg.encoder, name=name, kind="classifier", inputs=cfg.inputs,
        classes=1, class_names=[cfg.positive], scale=1.0, tile_size=cfg.tile_size, mean=tuple(mean), std=tuple(std),
        threshold=threshold, training_data=cfg.training_data or f"crop set {cfg.tiles}", cv_score=cv_score,
        notes=notes, licence=cfg.licence, extra={**extra, "config": asdict(cfg)},
    )


def run_classify(cfg: TrainConfig, progress: bool = True) -> list[dict]:
    """Train the folds of a classify config (and, with ``fit_all``, the model on every crop).

    Returns:
        One summary per fold: ``fold``, crops and slides validated, ``auc``, ``balanced_accuracy``,
        ``sensitivity_at_90_specificity`` and the model folder.
    """
    table = read_crop_set(cfg.tiles, cfg.positive, need_masks=True)
    fold_of = crop_folds(table, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results, oof = [], []
    for fold in cfg.train_folds:
        seed_all(cfg.seed + fold)
        train_rows, valid_rows = table[fold_of != fold], table[fold_of == fold]
        model, probs = _train(cfg, train_rows, valid_rows, f"fold {fold}", progress)
        scores = classifier_metrics(valid_rows["target"], probs)
        folder = out / f"{cfg.name}-fold{fold}"
        row = {"fold": fold, "crops": len(valid_rows), "positive": int(valid_rows["target"].sum()),
               "slides": int(valid_rows["slide"].nunique()), **{k: round(v, 5) for k, v in scores.items()},
               "model": str(folder)}
        zoo.save(model, _card(cfg, f"{cfg.name}-fold{fold}", 0.5, round(scores["auc"], 5),
                              f"fold {fold} of {cfg.folds} by slide; last epoch of {cfg.epochs}; cv_score = ROC AUC",
                              {k: v for k, v in row.items() if k != "model"}), folder, dtype="float16")
        results.append(row)
        oof.append(valid_rows[["crop", "slide", "label"]].assign(fold=fold, p=probs))
    cv = pd.DataFrame(results)
    oof_table = pd.concat(oof, ignore_index=True)
    oof_targets = (oof_table["label"] == cfg.positive).astype(int)
    pooled = classifier_metrics(oof_targets, oof_table["p"])
    with atomic_write(out / f"{cfg.name}-oof.csv", newline="") as f:
        oof_table.to_csv(f, index=False)
    with atomic_write(out / f"{cfg.name}-cv.csv", newline="") as f:
        cv.to_csv(f, index=False)
    if progress:
        print(cv.drop(columns="model").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print("out of fold, pooled: " + ", ".join(f"{k} {v:.4f}" for k, v in pooled.items()))
    if cfg.fit_all:
        threshold = best_threshold(oof_targets, oof_table["p"])
        seed_all(cfg.seed)
        model, _ = _train(cfg, table, None, "all crops", progress)
        notes = (f"trained on every crop ({len(table)}, {table['slide'].nunique()} slides) for {cfg.epochs} epochs; "
                 f"cv_score = pooled out-of-fold ROC AUC over folds {cfg.train_folds} of {cfg.folds} by slide; "
                 "threshold maximises out-of-fold balanced accuracy")
        zoo.save(model, _card(cfg, cfg.name, round(threshold, 4), round(pooled["auc"], 5), notes,
                              {"folds": cv.drop(columns="model").to_dict("records"),
                               "out_of_fold": {k: round(v, 5) for k, v in pooled.items()}}),
                 out / cfg.name, dtype="float16")
        if progress:
            print(f"model on every crop -> {out / cfg.name} (threshold {threshold:.4f})")
    return results
