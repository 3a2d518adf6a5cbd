"""Ensembling sliding-window inference over a slide, in bounded memory.

Models that share a scale, tile size and normalisation form a group: each tile is read once for
the group (at the group's scale, by reader threads ahead of the GPU), every member predicts it
under every TTA transform, and a `ColumnMerger` blends the tiles (Gaussian or constant weights)
at model scale, releasing finished column strips. The groups advance in lockstep, left to right;
their released columns are upsampled to full resolution one strip of ``strip_width`` columns at a
time, averaged over all models, and thresholded into the streaming RLE encoder. So neither the
slide, nor a full-resolution probability map, nor a full-resolution mask ever exists at once.

Tiles whose window is less than ``min_tissue`` tissue (HSV saturation on a thumbnail) are not
predicted and come out as background. Shapes are ``(height, width)``, positions ``(row, col)``.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from hubkit import rle
from hubkit.blend import BLEND_MODES, ColumnMerger, importance_map
from hubkit.card import ModelCard
from hubkit.slide import BaseSlide, InMemorySlide, scaled_size
from hubkit.tiling import MIN_TISSUE_FRACTION, grid_starts, tissue_fraction, tissue_mask
from hubkit.tta import get_tta
from hubkit.window import Window

__all__ = ["PredictConfig", "predict_slide", "predict_image", "probability_strips"]


@dataclass
class PredictConfig:
    """How to run an ensemble over a slide (MONAI's sliding-window names where they exist).

    Attributes:
        overlap: tile overlap as a fraction of the tile (``roi_size`` is each card's tile size).
        mode: blending weights: ``"gaussian"`` or ``"constant"``.
        sigma_scale: width of the Gaussian relative to the tile.
        sw_batch_size: tiles per forward pass; None = 1 on CPU (fastest on 2 cores: a 60 Mpx slide
            took 17.2 s at 1, 20.5 s at 2, 23.3 s at 4) and 16 on CUDA.
        tta: a `hubkit.tta` set: ``"none"``, ``"flip"``, ``"flip2"``, ``"d4"``.
        threshold: probability cut; None = the mean of the cards' thresholds.
        min_tissue: tiles with less tissue than this are skipped (written as background).
        thumb_scale: downscale of the thumbnail the tissue test looks at.
        strip_width: full-resolution columns upsampled and encoded at a time.
        reader_threads: threads reading tiles ahead of the model; None = 2 on CPU (the model needs
            the cores), every core on CUDA (reading is then the bottleneck).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        amp: autocast (fp16 on CUDA, bf16 on CPU).
        progress: a tqdm bar and a timing line per slide.
    """

    overlap: float = 0.25
    mode: str = "gaussian"
    sigma_scale: float = 0.125
    sw_batch_size: Optional[int] = None
    tta: str = "flip"
    threshold: Optional[float] = None
    min_tissue: float = MIN_TISSUE_FRACTION
    thumb_scale: int = 32
    strip_width: int = 512
    reader_threads: Optional[int] = None
    device: str = "auto"
    amp: bool = True
    progress: bool = False

    def validate(self) -> "PredictConfig":
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.mode not in BLEND_MODES:
            raise ValueError(f"mode must be one of {BLEND_MODES}, got {self.mode!r}")
        get_tta(self.tta)
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if (self.sw_batch_size is not None and self.sw_batch_size < 1) or self.strip_width < 1:
            raise ValueError("sw_batch_size and strip_width must be >= 1")
        return self

    def batch_size(self, device: torch.device) -> int:
        return self.sw_batch_size or (16 if device.type == "cuda" else 1)

    def readers(self, device: torch.device) -> int:
        return self.reader_threads or (max(2, os.cpu_count() or 2) if device.type == "cuda" else 2)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def _glomerulus_probability(logits: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` logits -> ``(N, H, W)``; for 2-class heads, the likelier of the two."""
    prob = torch.sigmoid(logits.float())
    return prob[:, 0] if prob.shape[1] == 1 else prob.max(dim=1).values


class _Group:
    """Models sharing a scale, tile size and normalisation: one read per tile, one merger."""

    def __init__(self, slide: BaseSlide, members, cfg: PredictConfig, tissue: np.ndarray, pool, device):
        card: ModelCard = members[0][1]
        self.slide, self.members, self.cfg, self.tissue, self.pool, self.device = slide, members, cfg, tissue, pool, device
        self.scale, self.tile = float(card.scale), int(card.tile_size)
        h, w = slide.shape
        self.shape = (scaled_size(h, self.scale), scaled_size(w, self.scale))
        self.rows = grid_starts(self.shape[0], self.tile, cfg.overlap)
        self.cols = grid_starts(self.shape[1], self.tile, cfg.overlap)
        self.weight = importance_map(self.tile, cfg.mode, cfg.sigma_scale)
        self.mean = torch.tensor(card.mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(card.std, device=device).view(1, 3, 1, 1) * 255
        self.tiles_total = len(self.rows) * len(self.cols)
        self.tiles_run = 0

    def _full_res(self, win: Window) -> Window:
        s = self.scale
        return Window(int(round(win.row * s)), int(round(win.col * s)), int(round(win.height * s)), int(round(win.width * s)))

    def _read(self, win: Window) -> np.ndarray:
        tile = self.slide.read(self._full_res(win), scale=self.scale)
        if tile.shape[:2] != (self.tile, self.tile):  # non-integer scales may round one pixel off
            tile = cv2.resize(tile, (self.tile, self.tile), interpolation=cv2.INTER_AREA)
        return tile

    def _column_windows(self, c: int) -> list[Window]:
        wins = [Window(r, c, self.tile, self.tile) for r in self.rows]
        ts = self.cfg.thumb_scale
        return [w for w in wins if tissue_fraction(self.tissue, self._full_res(w), ts) >= self.cfg.min_tissue]

    @torch.inference_mode()
    def _predict(self, tiles: list[np.ndarray]) -> np.ndarray:
        n = len(tiles)
        batch = np.stack(tiles)
        if self.device.type == "cuda" and n < self.cfg.batch_size(self.device):
            # One batch shape: cudnn autotunes each new shape, which costs seconds per shape.
            batch = np.concatenate([batch, np.zeros((self.cfg.batch_size(self.device) - n, *batch.shape[1:]), batch.dtype)])
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        total = torch.zeros(x.shape[0], self.tile, self.tile, device=self.device)
        transforms = get_tta(self.cfg.tta)
        for model, _ in self.members:
            for t in transforms:
                with torch.autocast(self.device.type, dtype=amp_dtype, enabled=self.cfg.amp):
                    logits = model(t.forward(x))
                total += t.inverse(_glomerulus_probability(logits))
        return (total[:n] / (len(self.members) * len(transforms))).cpu().numpy()

    def columns(self, bar=None) -> Iterator[tuple[int, np.ndarray]]:
        """Released model-scale strips ``(first column, (height, width) float32)``, left to right."""
        merger = ColumnMerger(self.shape)
        batch = self.cfg.batch_size(self.device)
        pending = [self._column_windows(c) for c in self.cols[:1]]
        reads = [[self.pool.submit(self._read, w) for w in pending[0]]]
        for j in range(len(self.cols)):
            wins, futures = pending.pop(0), reads.pop(0)
            if j + 1 < len(self.cols):  # read the next column while this one runs
                nxt = self._column_windows(self.cols[j + 1])
                pending.append(nxt)
                reads.append([self.pool.submit(self._read, w) for w in nxt])
            for k in range(0, len(wins), batch):
                probs = self._predict([f.result() for f in futures[k : k + batch]])
                for win, prob in zip(wins[k : k + batch], probs):
                    merger.add(win, prob, self.weight)
            self.tiles_run += len(wins)
            if bar is not None:
                bar.update(len(self.rows))
            nxt_col = self.cols[j + 1] if j + 1 < len(self.cols) else self.shape[1]
            for first, strip in merger.release(nxt_col):
                yield first, strip[0]
        for first, strip in merger.finish():
            yield first, strip[0]


def _group_models(models) -> list[list]:
    groups: dict[tuple, list] = {}
    for model, card in models:
        key = (float(card.scale), int(card.tile_size), tuple(card.mean), tuple(card.std))
        groups.setdefault(key, []).append((model, card))
    return list(groups.values())


def _source_columns(x0: int, x1: int, full: int, small: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-interpolation taps (cv2's half-pixel convention) of full-res columns [x0, x1)."""
    u = (np.arange(x0, x1, dtype=np.float64) + 0.5) * (small / full) - 0.5
    u = np.clip(u, 0, small - 1)
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, small - 1)
    return i0, i1, (u - i0).astype(np.float32)


def probability_strips(slide: BaseSlide, models, cfg: PredictConfig, bar=None) -> Iterator[tuple[int, np.ndarray, list]]:
    """Full-resolution probability strips of the ensemble, left to right.

    Yields:
        ``(first column, (height, width) float32 strip, groups)``.
    """
    cfg.validate()
    if not models:
        raise ValueError("no models to predict with")
    device = cfg.torch_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one tile size per group: autotune once
    h, w = slide.shape
    tissue = tissue_mask(slide.thumbnail(cfg.thumb_scale, threads=cfg.readers(device)))
    n_models = len(models)
    with ThreadPoolExecutor(cfg.readers(device)) as pool:
        groups = [_Group(slide, members, cfg, tissue, pool, device) for members in _group_models(models)]
        state = []
        for g in groups:
            state.append({"gen": g.columns(bar), "buf": np.zeros((g.shape[0], 0), np.float32), "start": 0})
        x = 0
        while x < w:
            x1 = min(w, x + cfg.strip_width)
            total = np.zeros((h, x1 - x), np.float32)
            for g, st in zip(groups, state):
                i0, i1, f = _source_columns(x, x1, w, g.shape[1])
                need = int(i1.max()) + 1
                while st["start"] + st["buf"].shape[1] < need:
                    _, strip = next(st["gen"])
                    st["buf"] = np.concatenate([st["buf"], strip], axis=1)
                buf, s0 = st["buf"], st["start"]
                cols = buf[:, i0 - s0] * (1 - f) + buf[:, i1 - s0] * f  # (model rows, strip columns)
                up = cv2.resize(cols, (x1 - x, h), interpolation=cv2.INTER_LINEAR) if g.shape[0] != h else cols
                total += up * (len(g.members) / n_models)
                keep = int(i0.max()) - s0  # the last tap may serve the next strip too
                st["buf"], st["start"] = buf[:, keep:].copy(), s0 + keep
            yield x, total, groups
            x = x1
        for st in state:  # drain: release the merger's last columns
            for _ in st["gen"]:
                pass


def _threshold(models, cfg: PredictConfig) -> float:
    return cfg.threshold if cfg.threshold is not None else float(np.mean([card.threshold for _, card in models]))


def predict_slide(slide: BaseSlide, models, cfg: Optional[PredictConfig] = None, name: str = "",
                  stats: Optional[dict] = None) -> str:
    """Run the ensemble over a slide and return its RLE (the competition's encoding).

    Args:
        slide: an open slide (`hubkit.slide.open_slide`) or an `InMemorySlide`.
        models: ``[(model, card), ...]`` from `hubkit.zoo.load_zoo`, on the config's device.
        cfg: inference settings.
        name: slide id, for the progress bar and timing line.
        stats: if given, filled with ``tiles_run`` and ``tiles_total`` (tile predictions, summed over
            models) and ``seconds``.

    Returns:
        The encoding of the thresholded prediction (full resolution).
    """
    cfg = cfg or PredictConfig()
    threshold = _threshold(models, cfg)
    h, w = slide.shape
    t0 = time.perf_counter()
    encoder = rle.StripEncoder(h, w)
    bar = None
    if cfg.progress:
        cards = [members[0][1] for members in _group_models(models)]
        tiles = sum(len(grid_starts(scaled_size(h, c.scale), c.tile_size, cfg.overlap))
                    * len(grid_starts(scaled_size(w, c.scale), c.tile_size, cfg.overlap)) for c in cards)
        bar = tqdm(total=tiles, desc=name or slide.name, unit="tile", leave=False)
    groups = []
    for _, strip, groups in probability_strips(slide, models, cfg, bar):  # noqa: B007 - groups read below
        encoder.add(strip > threshold)
    encoding = encoder.finish()
    run = sum(g.tiles_run * len(g.members) for g in groups)
    total = sum(g.tiles_total * len(g.members) for g in groups)
    seconds = time.perf_counter() - t0
    if stats is not None:
        stats.update(tiles_run=run, tiles_total=total, seconds=seconds)
    if bar is not None:
        bar.close()
        print(f"{name or slide.name}: {h} x {w} px, {run} of {total} tile predictions had tissue, {seconds:.1f} s", flush=True)
    return encoding


def predict_image(models, rgb: np.ndarray, cfg: Optional[PredictConfig] = None) -> np.ndarray:
    """Probability map of an in-memory image: ``(H, W, 3)`` uint8 -> ``(H, W)`` float32 in [0, 1]."""
    cfg = cfg or PredictConfig()
    slide = InMemorySlide(rgb, name="<image>")
    return np.concatenate([strip for _, strip, _ in probability_strips(slide, models, cfg)], axis=1)


def place_models(models: Sequence, device: torch.device) -> list:
    """Move models to a device in eval mode, channels-last; returns ``[(model, card), ...]``."""
    return [(m.to(device).eval().to(memory_format=torch.channels_last), c) for m, c in models]
