"""Train zoo models on a prepared tile set: ``hubkit train CONFIG`` or `run(TrainConfig(...))`.

k-fold by the index's ``group`` column (neighbouring tiles never straddle folds), AdamW with
linear warm-up then linear decay, AMP on CUDA and on a CPU with bf16 hardware (`hubkit.inference.config.autocast`),
validation Dice every epoch, and the best epoch of each fold saved as a zoo model whose card carries its CV score.
The same config runs on CPU (slowly) and on CUDA unchanged, in one process or in several with
``torchrun`` (`hubkit.training.distributed`: DDP, each rank a share of every batch, validation sums
reduced, rank 0 writing). Every epoch is checkpointed so a killed run resumes, and a rerun skips the
folds it finished with the same settings (`hubkit.training._resume`).
"""

from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hubkit.errors import ConfigError, DataError
from hubkit.formats.metrics import dice_from_counts
from hubkit.inference.config import autocast, resolve_device
from hubkit.inference.tta import get_tta
from hubkit.models import zoo
from hubkit.models.card import SPLIT_KEYS, ModelCard
from hubkit.models.registry import create_model
from hubkit.training._resume import checkpoint_path, done_summary, load_checkpoint, record_done, save_checkpoint
from hubkit.training._schedule import optimizer_parts, optimizer_step, seed_all
from hubkit.training.config import TrainConfig
from hubkit.training.data import TrainTiles, ValidTiles
from hubkit.training.distributed import EpochShard, Ranks
from hubkit.training.losses import get_loss
from hubkit.training.prep import read_index, split_fold, tile_set_stats

#: A segmenter's class names by head size; 2 = the 4th-place team's healthy / unhealthy glomeruli.
CLASS_NAMES = {1: ["glomerulus"], 2: ["healthy", "unhealthy"]}

__all__ = ["CLASS_NAMES", "run", "train_fold", "initial_model", "train_loader", "valid_probabilities",
           "valid_predictions", "evaluate", "checkpoint_path", "summary_json"]


def valid_probabilities(model, loader, device, amp: bool = True,
                        tta: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each whole validation tile's glomerulus probability beside its truth: one forward pass per
    transform of the TTA set, the probabilities averaged as `hubkit.inference` averages them, a
    glomerulus any class (the largest class probability, as `predict` writes it:
    `hubkit.formats.hubmap2021.glomerulus_probability`). The model is left in eval mode.

    Yields:
        ``(prob, mask)``: ``(n, h, w)`` float tensors on the CPU (probabilities in [0, 1], the mask 0/1),
        the batch's padding cropped off (``n`` is the loader's batch size; hubkit's validation loaders give
        one tile a batch).
    """
    transforms = get_tta(tta)
    model.eval()
    for image, mask, h, w in loader:
        with torch.inference_mode():  # not held across the yield: the caller runs in its own mode
            x, total = image.to(device, non_blocking=True), 0.0
            for t in transforms:
                with autocast(device, amp):
                    logits = model(t.forward(x))
                total = total + t.inverse(torch.sigmoid(logits.float()))
            prob = (total / len(transforms)).amax(dim=1)[:, : int(h), : int(w)].cpu()
        yield prob, mask


def valid_predictions(model, loader, device, threshold: float = 0.5,
                      amp: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each whole validation tile's prediction beside its truth, as the trainer validates: one
    forward pass, no TTA, cut at ``threshold`` (`valid_probabilities`). The model is left in eval mode.

    Yields:
        ``(pred, mask)``: ``(n, h, w)`` float 0/1 tensors on the CPU, the batch's padding cropped
        off (``n`` is the loader's batch size; hubkit's validation loaders give one tile a batch).
    """
    for prob, mask in valid_probabilities(model, loader, device, amp):
        yield (prob > threshold).float(), mask


def evaluate(model, loader, device, threshold: float = 0.5, ranks: Optional[Ranks] = None,
             amp: bool = True) -> dict:
    """Pooled and per-tile Dice of a model over whole validation tiles (`valid_predictions`; each
    rank's share of them, summed over the ranks: the same numbers as one process over all tiles).

    Returns:
        ``dice`` (pooled over the tiles' pixels), ``dice_per_tile`` (the mean of the tiles' Dice) and the
        counts they came from, to pool with other folds' (`hubkit.training.validate.validate_out_of_fold`):
        ``intersection`` (pixels predicted and true) and ``total`` (pixels predicted plus pixels true).
    """
    inter = total = per_tile = tiles = 0.0
    for pred, mask in valid_predictions(model, loader, device, threshold, amp):
        i, t = float((pred * mask).sum()), float(pred.sum() + mask.sum())
        inter, total = inter + i, total + t
        per_tile, tiles = per_tile + dice_from_counts(i, t), tiles + 1
    model.train()
    inter, total, per_tile, tiles = (ranks or Ranks()).sum([inter, total, per_tile, tiles])
    return {"dice": dice_from_counts(inter, total), "dice_per_tile": per_tile / max(tiles, 1),
            "intersection": inter, "total": total}

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


def train_loader(dataset: TrainTiles, cfg: TrainConfig, pin_memory: bool = False,
                 ranks: Optional[Ranks] = None) -> DataLoader:
    """This rank's batches of training crops (`EpochShard`; all of them with one process). Workers
    are made afresh each epoch (not persistent), so they see the epoch `TrainTiles.set_epoch` sets."""
    sampler = EpochShard(len(dataset), cfg.batch_size, ranks or Ranks())
    return DataLoader(dataset, sampler.per, sampler=sampler, num_workers=cfg.workers, pin_memory=pin_memory,
                      drop_last=True)


def initial_model(cfg: TrainConfig, fold: int) -> tuple[torch.nn.Module, Optional[dict]]:
    """The network a fold starts from: ImageNet-pretrained (``cfg.pretrained``), or the zoo model
    ``cfg.init`` to fine-tune, with that model's input normalisation (``{"mean", "std"}``; None
    for a fresh network, which takes the tile set's).

    Raises:
        ConfigError: the init model's card does not match the config's architecture, encoder or
            classes, or it trained on another fold of the same tile set (so its weights saw this
            fold's validation tiles and the fold's Dice would be a leak); names the card.
        CardError: an unreadable init model (`hubkit.models.zoo.load`).
    """
    if not cfg.init:
        return create_model(cfg.architecture, cfg.encoder, cfg.classes, pretrained=cfg.pretrained or None), None
    model, card = zoo.load(cfg.init)
    wrong = [f"{key} {getattr(card, key)!r} (config: {getattr(cfg, key)!r})"
             for key in ("architecture", "encoder", "classes") if getattr(card, key) != getattr(cfg, key)]
    if wrong:
        raise ConfigError(f"init {cfg.init}: the model's card does not match the config: {'; '.join(wrong)}")
    done = card.extra.get("config") or {}
    same_split = all(done.get(key) == getattr(cfg, key) for key in SPLIT_KEYS)
    if same_split and card.extra.get("fold") not in (None, fold):
        raise ConfigError(f"init {cfg.init}: trained as fold {card.extra['fold']} of {cfg.tiles}, so its weights saw "
                          f"fold {fold}'s validation tiles; fine-tune it as fold {card.extra['fold']} only "
                          f"(train_folds [{card.extra['fold']}])")
    model.train()
    return model, {"mean": list(card.mean), "std": list(card.std)}


def _fold_tiles(cfg: TrainConfig, fold: int, ranks: Ranks, norm: Optional[dict] = None):
    """The fold's training crops, this rank's share of its validation tiles, the tile statistics
    (``norm``'s mean and std when given: a fine-tuned model keeps its own) and the number of
    validation tiles in all."""
    index, root = read_index(cfg.tiles)
    stats = {**(tile_set_stats(root) or {"mean": [0.5] * 3, "std": [0.5] * 3}), **(norm or {})}
    train_idx, valid_idx = split_fold(index, cfg.folds, cfg.seed, fold, cfg.sources_train, cfg.sources_valid)
    if len(train_idx) == 0 or len(valid_idx) == 0:
        raise DataError(f"{cfg.tiles}: fold {fold} has {len(train_idx)} training and {len(valid_idx)} validation tiles "
                        f"(sources_train {cfg.sources_train or 'all'}, sources_valid {cfg.sources_valid or 'all'}; "
                        f"the tile set's sources: {', '.join(sorted(index['source'].unique()))}); need both")
    train_ds = TrainTiles(train_idx, root, cfg.crop, stats["mean"], stats["std"], cfg.samples_per_epoch,
                          strength=cfg.strength, seed=cfg.seed, classes=cfg.classes, stain=cfg.stain)
    if cfg.classes > 1:
        _check_labels(train_ds, cfg)
    valid_ds = ValidTiles(valid_idx.iloc[ranks.rank :: ranks.world], root, stats["mean"], stats["std"], cfg.classes)
    return train_ds, valid_ds, stats, len(valid_idx)


def _check_labels(tiles: TrainTiles, cfg: TrainConfig) -> None:
    """A head of several classes must see every class in its training tiles."""
    seen = set()
    for i in range(len(tiles.index)):
        seen |= set(np.unique(tiles._load(i)[1]).tolist())
    missing = [k for k in range(1, cfg.classes + 1) if k not in seen]
    if missing:
        raise ConfigError(f"{cfg.tiles}: training a {cfg.classes}-class head (1 healthy, 2 sclerotic) needs masks "
                          f"labelled 1 to {cfg.classes}; no training tile holds label(s) {missing}. A one-class tile "
                          "set trains classes 1")


def _fold_card(cfg: TrainConfig, fold: int, stats: dict, scores: dict, epoch: int, valid_tiles: int) -> ModelCard:
    return ModelCard(
        architecture=cfg.architecture, encoder=cfg.encoder, name=f"{cfg.name}-fold{fold}",
        classes=cfg.classes, class_names=CLASS_NAMES.get(cfg.classes, [f"class{k}" for k in range(1, cfg.classes + 1)]),
        scale=cfg.scale, tile_size=cfg.tile_size, mean=tuple(stats["mean"]), std=tuple(stats["std"]),
        training_data=cfg.training_data or f"tile set {cfg.tiles}: {stats.get('sources', '')}",
        cv_score=round(scores["dice"], 5),
        notes=f"fold {fold} of {cfg.folds} (groups never split); best epoch {epoch} of {cfg.epochs}"
              + (f"; fine-tuned from {cfg.init}" if cfg.init else ""),
        extra={"fold": fold, "valid_tiles": valid_tiles, "dice_per_tile": round(scores["dice_per_tile"], 5),
               "config": asdict(cfg)},
    )


def train_fold(cfg: TrainConfig, fold: int, progress: bool = True, ranks: Optional[Ranks] = None,
               fresh: bool = False) -> dict:
    """Train one fold; save its best epoch as a zoo model. Returns the fold's summary.

    Each finished epoch is checkpointed (``<out>/<name>-fold<k>.checkpoint.pt``): a rerun of the
    same config (or ``torchrun --max-restarts``) resumes from the epoch after it, with the same
    crops and random draws it would have made; the checkpoint is removed when the fold ends. A
    finished fold leaves a record (``<out>/<name>-fold<k>.done.json``), and a rerun with the same
    settings and init weights, its saved weights unchanged, skips the fold and returns the recorded
    summary (`hubkit.training._resume`). ``fresh`` ignores both and trains the fold from its first
    epoch. With several ranks, rank 0 alone writes files, and a fold is skipped only where every
    rank finds its record.
    """
    ranks = ranks or Ranks(device=resolve_device(cfg.device))
    device = ranks.device
    say = print if progress and ranks.main else (lambda *a, **k: None)
    tell = print if ranks.main else (lambda *a, **k: None)  # what a rerun skips, said even when quiet
    out_dir = Path(cfg.out) / f"{cfg.name}-fold{fold}"
    done = None if fresh else done_summary(cfg, fold, out_dir, tell)
    if ranks.sum([done is not None])[0] == ranks.world:
        tell(f"fold {fold}: finished earlier with these settings ({done['model']}, valid Dice {done['dice']:.4f}); "
             "skipped (--fresh trains it again)", flush=True)
        return done
    seed_all(cfg.seed + fold)
    model, init_stats = initial_model(cfg, fold)
    train_ds, valid_ds, stats, valid_tiles = _fold_tiles(cfg, fold, ranks, init_stats)
    pin = device.type == "cuda"
    train_dl = train_loader(train_ds, cfg, pin, ranks)
    valid_dl = DataLoader(valid_ds, 1, num_workers=cfg.workers, pin_memory=pin)
    model = model.to(device).to(memory_format=torch.channels_last)
    net = model
    if ranks.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optim, sched, scaler, total = optimizer_parts(model, cfg, len(train_dl), device)
    loss_fn = get_loss(cfg.loss)
    log_path = Path(cfg.out) / f"{cfg.name}-fold{fold}.log.csv"
    ckpt_path = checkpoint_path(cfg, fold)
    parts = {"model": model, "optim": optim, "sched": sched, "scaler": scaler}
    state = (None if fresh else load_checkpoint(ckpt_path, cfg, parts, say)) or {"epoch": 0, "step": 0,
                                                                                "best": {"dice": -1.0}}
    if state["epoch"]:
        say(f"fold {fold}: resuming after epoch {state['epoch'] - 1} from {ckpt_path}", flush=True)
    best, step, t0 = state["best"], state["step"], time.time()
    if ranks.main:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "a" if state["epoch"] else "w", newline="") if ranks.main else None
    try:
        log = csv.writer(log_file) if log_file else None
        if log and not state["epoch"]:
            log.writerow(["epoch", "step", "lr", "train_loss", "valid_dice", "valid_dice_per_tile", "seconds"])
        for epoch in range(state["epoch"], cfg.epochs):
            if step >= total:
                break
            seed_all(cfg.seed + 1000 * fold + epoch)  # a resumed epoch draws what it would have drawn
            train_ds.set_epoch(epoch)
            losses = []
            bar = tqdm(train_dl, desc=f"fold {fold} epoch {epoch}", disable=not (progress and ranks.main), leave=False)
            for image, mask in bar:
                image = image.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                mask = mask.to(device, non_blocking=True)
                image, mask = _mix(image, mask, cfg)
                with autocast(device, cfg.amp):
                    logits = net(image)
                losses.append(optimizer_step(loss_fn(logits.float(), mask), optim, scaler, sched,
                                             f"fold {fold} epoch {epoch} step {step}"))
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                step += 1
                if step >= total:
                    break
            loss_sum, loss_n = ranks.sum([sum(losses), len(losses)])
            train_loss = loss_sum / max(loss_n, 1)
            scores = evaluate(model, valid_dl, device, ranks=ranks, amp=cfg.amp)
            if log:
                log.writerow([epoch, step, f"{sched.get_last_lr()[0]:.2e}", f"{train_loss:.5f}",
                              f"{scores['dice']:.5f}", f"{scores['dice_per_tile']:.5f}", f"{time.time() - t0:.0f}"])
                log_file.flush()
            say(f"fold {fold} epoch {epoch}: loss {train_loss:.4f}  valid Dice {scores['dice']:.4f} "
                f"(per tile {scores['dice_per_tile']:.4f})  {time.time() - t0:.0f} s", flush=True)
            if scores["dice"] > best["dice"]:
                best = {**scores, "epoch": epoch, "train_loss": train_loss}
                if ranks.main:
                    zoo.save(model, _fold_card(cfg, fold, stats, scores, epoch, valid_tiles), out_dir, dtype="float16")
            if ranks.main:
                save_checkpoint(ckpt_path, cfg, parts, {"epoch": epoch + 1, "step": step, "best": best})
            ranks.barrier()
    finally:
        if log_file:
            log_file.close()
    summary = {"fold": fold, "valid_tiles": valid_tiles, "model": str(out_dir), **best}
    if ranks.main:
        record_done(cfg, fold, out_dir, summary)  # before the checkpoint goes: a kill between them skips
        ckpt_path.unlink(missing_ok=True)
    return summary


def run(cfg: TrainConfig, progress: bool = True, fresh: bool = False) -> list[dict]:
    """Train every fold in ``cfg.train_folds``; print and return their summaries.

    Under ``torchrun`` every process runs this; they train each fold together (`Ranks`), and rank
    0 alone prints and writes. A fold finished earlier with the same settings is skipped
    (`train_fold`; ``fresh`` trains it again). A ``classify`` config goes to
    `hubkit.training.classify.run_classify`.
    """
    if cfg.task == "classify":
        from hubkit.training.classify import run_classify

        return run_classify(cfg, progress)
    ranks = Ranks.start(cfg.device)
    try:
        results = [train_fold(cfg, fold, progress, ranks, fresh) for fold in cfg.train_folds]
    finally:
        ranks.close()
    dice = [r["dice"] for r in results]
    if progress and ranks.main:
        for r in results:
            print(f"fold {r['fold']}: best valid Dice {r['dice']:.4f} (epoch {r['epoch']}, {r['valid_tiles']} tiles) -> {r['model']}")
        print(f"mean CV Dice over {len(dice)} fold(s): {np.mean(dice):.4f}")
    return results


def summary_json(results: list[dict], path: Optional[str] = None) -> str:
    key = "dice" if results and "dice" in results[0] else "auc"  # segmenters' Dice, classifiers' ROC AUC
    text = json.dumps({"folds": results, f"mean_{key}": float(np.mean([r[key] for r in results]))}, indent=2)
    if path:
        Path(path).write_text(text)
    return text
