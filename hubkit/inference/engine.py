"""Ensembling sliding-window inference over a slide, in bounded memory.

Members of an `Ensemble` that share a scale, tile size and normalisation form a group: each tile is
read once for the group (at the group's scale, by reader threads ahead of the model), every member
predicts it under every TTA transform, and a `ColumnMerger` blends the tiles (Gaussian or constant
weights) at model scale, releasing finished column strips. The groups advance in lockstep, left to
right; their released columns are upsampled to full resolution one strip of ``strip_width`` columns
at a time, averaged over all models, and handed to a `Sink` (the competition format's, chosen at the
save stage). So neither the slide, nor a full-resolution probability map, nor a full-resolution
mask ever exists at once.

Tiles whose window is less than ``min_tissue`` tissue (HSV saturation on a thumbnail) are not
predicted and come out as background. Probabilities are ``(channels, height, width)``, one channel
per name in ``ensemble.class_names``; positions are ``(row, col)``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from hubkit.errors import ModelOutputError, SlideError
from hubkit.formats.base import CompetitionFormat, Sink
from hubkit.formats.hubmap2021 import HuBMAP2021
from hubkit.inference.blend import ColumnMerger, importance_map
from hubkit.inference.config import PredictConfig, autocast
from hubkit.inference.threads import ThreadGovernor
from hubkit.inference.tiling import grid_starts, tissue_fraction, tissue_mask
from hubkit.inference.tta import get_tta
from hubkit.models.ensemble import Ensemble, Member
from hubkit.slides.base import BaseSlide, InMemorySlide, scaled_size
from hubkit.window import Window

__all__ = ["SlidePrediction", "count_tiles", "resolve_threshold", "format_sink", "probability_strips", "predict_slide",
           "predict_image"]


@dataclass
class SlidePrediction:
    """What `predict_slide` returns.

    Attributes:
        output: what the sink finalized (for the 2021 format, ``{"predicted": rle}``).
        shape: the slide's ``(height, width)``.
        tiles_run: tile predictions made, summed over models (tiles with tissue).
        tiles_total: tile predictions a run without tissue skipping would make.
        seconds: wall time.
    """

    output: Any
    shape: tuple[int, int]
    tiles_run: int
    tiles_total: int
    seconds: float


class _Group:
    """Members sharing a scale, tile size and normalisation: one read per tile, one merger."""

    def __init__(self, slide: BaseSlide, members: Sequence[Member], channels: int, cfg: PredictConfig,
                 tissue: np.ndarray, pool, device, governor: Optional[ThreadGovernor] = None):
        card = members[0].card
        self.slide, self.members, self.cfg, self.tissue, self.pool, self.device = slide, members, cfg, tissue, pool, device
        self.governor = governor
        self.channels = channels
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
        """``(N, channels, tile, tile)`` probabilities, averaged over members and TTA."""
        n = len(tiles)
        batch = np.stack(tiles)
        if self.device.type == "cuda" and n < self.cfg.batch_size(self.device):
            # One batch shape: cudnn autotunes each new shape, which costs seconds per shape.
            batch = np.concatenate([batch, np.zeros((self.cfg.batch_size(self.device) - n, *batch.shape[1:]), batch.dtype)])
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        total = torch.zeros(x.shape[0], self.channels, self.tile, self.tile, device=self.device)
        transforms = get_tta(self.cfg.tta)
        finite = []  # one flag per (member, transform), read after the one device sync below
        for member in self.members:
            for t in transforms:
                with autocast(self.device, self.cfg.amp):
                    logits = member.model(t.forward(x))
                prob = torch.sigmoid(logits.float())
                finite.append(torch.isfinite(prob).all())
                total += t.inverse(prob)
        out = (total[:n] / (len(self.members) * len(transforms))).cpu().numpy()
        ok = torch.stack(finite).cpu()
        if not ok.all():
            k = int((~ok).nonzero()[0, 0])
            member, t = self.members[k // len(transforms)], transforms[k % len(transforms)]
            raise ModelOutputError(f"model {member.card.name!r} predicted NaN or infinite values "
                                   f"(TTA {t.name}) on {self.slide.name}")
        return out

    def columns(self, bar=None) -> Iterator[tuple[int, np.ndarray]]:
        """Released model-scale strips ``(first column, (channels, height, width) float32)``, left to right."""
        merger = ColumnMerger(self.shape, self.channels)
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
                if self.governor is not None:
                    self.governor.tick(len(probs))
                for win, prob in zip(wins[k : k + batch], probs):
                    merger.add(win, prob, self.weight)
            self.tiles_run += len(wins)
            if bar is not None:
                bar.update(len(self.rows))
            nxt_col = self.cols[j + 1] if j + 1 < len(self.cols) else self.shape[1]
            yield from merger.release(nxt_col)
        yield from merger.finish()


def _source_columns(x0: int, x1: int, full: int, small: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-interpolation taps (cv2's half-pixel convention) of full-res columns [x0, x1)."""
    u = (np.arange(x0, x1, dtype=np.float64) + 0.5) * (small / full) - 0.5
    u = np.clip(u, 0, small - 1)
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, small - 1)
    return i0, i1, (u - i0).astype(np.float32)


def _add_upsampled(total: np.ndarray, cols: np.ndarray, weight: float) -> None:
    """``total += weight * cols`` with ``(channels, h, w)`` cols stretched to ``total``'s height
    by linear interpolation (cv2's convention), one channel at a time (no stacked copy)."""
    height = total.shape[1]
    for c in range(cols.shape[0]):
        up = cols[c] if cols.shape[1] == height else cv2.resize(cols[c], (cols.shape[2], height), interpolation=cv2.INTER_LINEAR)
        total[c] += up * weight


def _grid_tiles(shape: tuple[int, int], card, overlap) -> int:
    h, w = shape
    return (len(grid_starts(scaled_size(h, card.scale), card.tile_size, overlap))
            * len(grid_starts(scaled_size(w, card.scale), card.tile_size, overlap)))


def count_tiles(shape: tuple[int, int], ensemble: Ensemble, overlap=0.25) -> int:
    """Tile predictions a run over a ``(height, width)`` slide makes without tissue skipping, summed
    over models: the `SlidePrediction.tiles_total` it will report, known before reading a pixel."""
    return sum(_grid_tiles(shape, members[0].card, overlap) * len(members) for members in ensemble.groups())


class _Run:
    """One pass of an ensemble over a slide: the groups, their strips, and the tile counts."""

    def __init__(self, slide: BaseSlide, ensemble: Ensemble, cfg: PredictConfig):
        if slide.colour == "grey":
            raise SlideError(f"{slide.name}: a single-band (greyscale) image; the models predict RGB brightfield "
                             "(PAS) slides, and no tile of a grey slide passes the tissue test")
        self.slide, self.ensemble, self.cfg = slide, ensemble, cfg
        self.device = cfg.torch_device()
        self.channels = len(ensemble.class_names)
        self.group_members = ensemble.groups()
        self.groups: list[_Group] = []

    def tiles_planned(self) -> int:
        """Tile reads of the whole grid (each group's tiles once, for the progress bar)."""
        return sum(_grid_tiles(self.slide.shape, m[0].card, self.cfg.overlap) for m in self.group_members)

    def strips(self, bar=None) -> Iterator[tuple[int, np.ndarray]]:
        cfg, device = self.cfg, self.device
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one tile size per group: autotune once
        tissue = tissue_mask(self.slide.thumbnail(cfg.thumb_scale, threads=cfg.readers(device)))
        # On a CPU, unless told a thread count: all cores while they are free, one while they are not.
        governor = ThreadGovernor() if device.type == "cpu" and cfg.torch_threads is None else None
        try:
            yield from self._strips(bar, tissue, governor)
        finally:
            if governor is not None:
                governor.restore()

    def _strips(self, bar, tissue: np.ndarray, governor: Optional[ThreadGovernor]) -> Iterator[tuple[int, np.ndarray]]:
        cfg, device = self.cfg, self.device
        h, w = self.slide.shape
        n_models = len(self.ensemble)
        with ThreadPoolExecutor(cfg.readers(device)) as pool:
            self.groups = [_Group(self.slide, m, self.channels, cfg, tissue, pool, device, governor)
                           for m in self.group_members]
            state = [{"gen": g.columns(bar), "buf": np.zeros((self.channels, g.shape[0], 0), np.float32), "start": 0}
                     for g in self.groups]
            x = 0
            while x < w:
                x1 = min(w, x + cfg.strip_width)
                total = np.zeros((self.channels, h, x1 - x), np.float32)
                for g, st in zip(self.groups, state):
                    i0, i1, f = _source_columns(x, x1, w, g.shape[1])
                    need = int(i1.max()) + 1
                    while st["start"] + st["buf"].shape[2] < need:
                        _, strip = next(st["gen"])
                        st["buf"] = np.concatenate([st["buf"], strip], axis=2)
                    buf, s0 = st["buf"], st["start"]
                    cols = buf[:, :, i0 - s0] * (1 - f) + buf[:, :, i1 - s0] * f  # (channels, model rows, strip columns)
                    _add_upsampled(total, cols, len(g.members) / n_models)
                    keep = int(i0.max()) - s0  # the last tap may serve the next strip too
                    st["buf"], st["start"] = buf[:, :, keep:].copy(), s0 + keep
                yield x, total
                x = x1
            for st in state:  # drain: release the merger's last columns
                for _ in st["gen"]:
                    pass

    def counts(self) -> tuple[int, int]:
        run = sum(g.tiles_run * len(g.members) for g in self.groups)
        total = sum(g.tiles_total * len(g.members) for g in self.groups)
        return run, total


def resolve_threshold(ensemble: Ensemble, cfg: PredictConfig) -> float:
    """The probability cut: the config's, else the ensemble's (the mean of its cards')."""
    return cfg.threshold if cfg.threshold is not None else ensemble.threshold


def format_sink(fmt: CompetitionFormat, shape: tuple[int, int], ensemble: Ensemble, cfg: PredictConfig) -> Sink:
    """A fresh sink of ``fmt`` for one slide of ``shape`` ``(height, width)``, with the run's
    threshold (`resolve_threshold`), ``min_area`` and ``seed_threshold``."""
    return fmt.sink(shape, ensemble.class_names, resolve_threshold(ensemble, cfg), cfg.min_area, cfg.seed_threshold)


def probability_strips(slide: BaseSlide, ensemble: Ensemble, cfg: Optional[PredictConfig] = None) -> Iterator[tuple[int, np.ndarray]]:
    """Full-resolution probability strips of the ensemble, left to right.

    Yields:
        ``(first column, (channels, height, width) float32 strip)``.
    """
    yield from _Run(slide, ensemble, cfg or PredictConfig()).strips()


def predict_slide(slide: BaseSlide, ensemble: Ensemble, cfg: Optional[PredictConfig] = None,
                  sink: Optional[Sink] = None, name: str = "") -> SlidePrediction:
    """Run the ensemble over a slide into a sink.

    Args:
        slide: an open slide (`hubkit.slides.open_slide`) or an `InMemorySlide`.
        ensemble: the models, on the config's device (`Ensemble.to`).
        cfg: inference settings.
        sink: where the probabilities go (a format's `CompetitionFormat.sink`); default: the 2021
            competition's RLE of the thresholded glomerulus probability.
        name: slide id, for the progress bar and timing line.

    Returns:
        The sink's output and the run's statistics.
    """
    cfg = cfg or PredictConfig()
    sink = sink or format_sink(HuBMAP2021(), slide.shape, ensemble, cfg)
    t0 = time.perf_counter()
    run = _Run(slide, ensemble, cfg)
    bar = tqdm(total=run.tiles_planned(), desc=name or slide.name, unit="tile", leave=False) if cfg.progress else None
    for first, strip in run.strips(bar):
        sink.aggregate(strip, first)
    output = sink.finalize()
    tiles_run, tiles_total = run.counts()
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
        h, w = slide.shape
        print(f"{name or slide.name}: {h} x {w} px, {tiles_run} of {tiles_total} tile predictions had tissue, "
              f"{seconds:.1f} s", flush=True)
    return SlidePrediction(output, slide.shape, tiles_run, tiles_total, seconds)


def predict_image(ensemble: Ensemble, rgb: np.ndarray, cfg: Optional[PredictConfig] = None) -> np.ndarray:
    """Class probabilities of an in-memory image: ``(H, W, 3)`` uint8 -> ``(channels, H, W)`` float32 in [0, 1]."""
    slide = InMemorySlide(rgb, name="<image>")
    return np.concatenate([strip for _, strip in probability_strips(slide, ensemble, cfg)], axis=2)
