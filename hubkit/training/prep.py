"""Cut training tiles at model scale, with an index whose ``group`` column keeps folds honest.

Two sources:

* folders of tile images with masks (``images/`` + ``masks/``, e.g. the shared Vanderbilt and
  AIDPATH sets), each with its own downscale factor, because sources differ in magnification;
* competition slides (``train.csv`` RLE + ``train/<id>.tiff``): tiles around glomeruli and a share
  of random tissue tiles, decoded window by window (no whole-slide mask).

Every tile is written at model scale (JPEG image, PNG 0/255 mask) and listed in ``index.csv``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from hubkit._io import atomic_write, read_json, write_image
from hubkit.annotations import load_features, rasterize
from hubkit.errors import ConfigError, DataError
from hubkit.formats import rle
from hubkit.inference.tiling import MIN_TISSUE_FRACTION, iter_windows, tissue_fraction, tissue_mask
from hubkit.slides.base import scaled_size
from hubkit.slides.images import find_tile_pairs, label_mask_values, read_image, read_label_mask
from hubkit.slides.reader import open_slide

__all__ = ["INDEX_COLUMNS", "tile_stem", "prepare_tile_folder", "prepare_slides", "write_index", "read_index",
           "folds_by_group", "split_fold", "tile_set_stats"]

INDEX_COLUMNS = ["image", "mask", "source", "group", "scale", "height", "width", "glomerulus_fraction"]


def tile_stem(source: str, stem: str) -> str:
    """The file stem a tile set gives a tile of a tile folder: its source, then its stem there."""
    return f"{source}_{stem}"


def _shrink(image: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Shrink an image and its label mask: a pixel is glomerulus where half its area was, of the
    class that covered most of it."""
    if scale == 1:
        return image, mask
    size = (scaled_size(image.shape[1], scale), scaled_size(image.shape[0], scale))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    soft = cv2.resize((mask > 0).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    labels = (soft >= 0.5).astype(np.uint8)
    top = int(mask.max(initial=0))
    if top > 1:
        shares = [cv2.resize((mask == k).astype(np.float32), size, interpolation=cv2.INTER_AREA)
                  for k in range(1, top + 1)]
        labels *= (np.argmax(np.stack(shares), axis=0) + 1).astype(np.uint8)
    return small, labels


def _write(out_dir: Path, name: str, image: np.ndarray, mask: np.ndarray) -> tuple[str, str]:
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    img_rel, mask_rel = f"images/{name}.jpg", f"masks/{name}.png"
    write_image(out_dir / img_rel, image, quality=95)
    write_image(out_dir / mask_rel, label_mask_values(mask))
    return img_rel, mask_rel


def _region(stem: str, group_size: int) -> str:
    """Neighbouring tiles share a region: the tile number's block of ``group_size``."""
    numbers = re.findall(r"\d+", stem)
    return str(int(numbers[-1]) // group_size) if numbers else stem


def prepare_tile_folder(folder, out_dir, source: str, scale: float, group_size: int = 40,
                        classes: int = 1) -> list[dict]:
    """Shrink every image/mask pair of a folder by ``scale`` and write it as a training tile.

    Args:
        folder: holds ``images/`` and ``masks/`` with matching stems.
        out_dir: the tile set folder.
        source: a short name for the source (goes into tile names and groups).
        scale: this source's downscale factor to reach model scale.
        group_size: tiles whose numbers fall in the same block of this size form one group
            (tiles cut from one slide on a grid are numbered along it; neighbours must share a fold).
        classes: 1 (0/255 masks), or 2 for masks labelled 1 healthy / 2 sclerotic (kept as labels).

    Returns:
        Index rows (see `INDEX_COLUMNS`).
    """
    out_dir = Path(out_dir)
    rows = []
    pairs = find_tile_pairs(folder)
    if not pairs:
        raise DataError(f"{folder}: no images/ and masks/ with matching names")
    for img_path, mask_path in pairs:
        image, mask = read_image(img_path), read_label_mask(mask_path, classes)
        if image.shape[:2] != mask.shape:
            raise DataError(f"{img_path}: image {image.shape[:2]} and mask {mask.shape} differ in size")
        image, mask = _shrink(image, mask, scale)
        img_rel, mask_rel = _write(out_dir, tile_stem(source, img_path.stem), image, mask)
        rows.append(dict(image=img_rel, mask=mask_rel, source=source, group=f"{source}:{_region(img_path.stem, group_size)}",
                         scale=scale, height=image.shape[0], width=image.shape[1],
                         glomerulus_fraction=float((mask > 0).mean())))
    return rows


def _training_slides(competition_dir: Path):
    """``(slide id, RLE or None, polygons or None)``: RLE where ``train.csv`` has the slide, else
    its ``train/<id>.json`` glomerulus polygons."""
    train = competition_dir / "train.csv"
    table = pd.read_csv(train, dtype=str, keep_default_na=False) if train.is_file() else pd.DataFrame(columns=["id", "encoding"])
    encodings = dict(zip(table["id"], table["encoding"]))
    polygons = {p.stem for p in (competition_dir / "train").glob("*.json") if not p.stem.endswith("-anatomical-structure")}
    for slide_id in sorted(set(encodings) | polygons):
        if slide_id in encodings:
            yield slide_id, encodings[slide_id], None
        else:
            yield slide_id, None, load_features(competition_dir / "train" / f"{slide_id}.json")


def prepare_slides(
    competition_dir,
    out_dir,
    scale: float,
    tile: int = 512,
    random_share: float = 0.2,
    seed: int = 0,
    engine: str = "local",
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> list[dict]:
    """Cut tiles from competition training slides: every tile touching a glomerulus, plus random tissue.

    Args:
        competition_dir: holds ``train/<id>.tiff`` with ``train.csv`` (``id,encoding``) rows or
            ``train/<id>.json`` glomerulus polygons.
        out_dir: the tile set folder.
        scale: downscale factor to model scale.
        tile: tile side at model scale.
        random_share: chance to keep each tissue tile without glomeruli.
        seed: seeds each slide's random draws (with the slide's id), so the tiles do not depend
            on the engine or the order slides finish in.
        engine: ``"local"`` (one slide after another) or ``"dask"`` (one task per slide,
            `hubkit.inference.cluster.map_tasks`; ``workers``/``scheduler`` as there).

    Returns:
        Index rows, slide after slide in the competition's order; the group is the slide id.

    Raises:
        DataError: a slide that could not be cut (on a Dask worker).
    """
    competition_dir, out_dir = Path(competition_dir), Path(out_dir)
    jobs = [_CutJob(competition_dir, out_dir, slide_id, encoding, features, scale, tile, random_share, seed)
            for slide_id, encoding, features in _training_slides(competition_dir)]
    if engine == "local":
        return [row for job in jobs for row in _cut_slide(job)]
    if engine != "dask":
        raise ConfigError(f"engine {engine!r} is not one of local, dask")
    from hubkit.inference.cluster import map_tasks

    rows: dict[int, list[dict]] = {}
    for k, result, error in map_tasks(_cut_slide, jobs, [j.slide_id for j in jobs], workers=workers, scheduler=scheduler):
        if error is not None:
            raise DataError(f"{competition_dir / 'train' / jobs[k].slide_id}.tiff: cutting tiles failed on a worker ({error})")
        rows[k] = result
    return [row for k in range(len(jobs)) for row in rows[k]]


@dataclass(frozen=True)
class _CutJob:
    """One training slide to cut into tiles (small enough to send to a worker)."""

    competition_dir: Path
    out_dir: Path
    slide_id: str
    encoding: Optional[str]
    features: Optional[list]
    scale: float
    tile: int
    random_share: float
    seed: int


def _cut_slide(job: _CutJob) -> list[dict]:
    """Write one slide's tiles; returns their index rows."""
    rng = np.random.default_rng([job.seed, *job.slide_id.encode()])
    rows = []
    size = int(round(job.tile * job.scale))
    with open_slide(job.competition_dir / "train" / f"{job.slide_id}.tiff") as slide:
        if job.encoding is not None:
            runs = rle.parse(job.encoding, slide.shape, name=job.slide_id)

            def mask_of(win, runs=runs, shape=slide.shape):
                return rle.decode_window(runs, shape, win)
        else:
            def mask_of(win, features=job.features, shape=slide.shape):
                return rasterize(features, shape, win, labels=["glomerulus"])
        thumb_scale = 32
        tissue = tissue_mask(slide.thumbnail(thumb_scale))
        for win in iter_windows(slide.shape, size, overlap=0.25):
            if tissue_fraction(tissue, win, thumb_scale) < MIN_TISSUE_FRACTION:
                continue
            mask = mask_of(win)
            if not mask.any() and rng.random() >= job.random_share:
                continue
            image, small = _shrink(slide.read(win), mask, job.scale)
            img_rel, mask_rel = _write(job.out_dir, f"{job.slide_id}_{win.row}_{win.col}", image, small)
            rows.append(dict(image=img_rel, mask=mask_rel, source="competition", group=job.slide_id, scale=job.scale,
                             height=image.shape[0], width=image.shape[1], glomerulus_fraction=float(small.mean())))
    return rows


def write_index(out_dir, rows: list[dict]) -> pd.DataFrame:
    """Write ``index.csv`` and ``stats.json`` (per-channel mean/std of the tiles, 0-1 scale)."""
    out_dir = Path(out_dir)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    with atomic_write(out_dir / "index.csv", newline="") as f:
        index.to_csv(f, index=False)
    total, sq, count = np.zeros(3), np.zeros(3), 0
    for rel in index["image"]:
        px = read_image(out_dir / rel).reshape(-1, 3).astype(np.float64) / 255
        total += px.sum(0)
        sq += (px**2).sum(0)
        count += len(px)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(sq / max(count, 1) - mean**2, 1e-12))
    stats = {"mean": mean.round(4).tolist(), "std": std.round(4).tolist(), "tiles": len(index),
             "sources": {s: int(n) for s, n in index["source"].value_counts().items()}}
    with atomic_write(out_dir / "stats.json") as f:
        f.write(json.dumps(stats, indent=2))
    return index


def read_index(root) -> tuple[pd.DataFrame, Path]:
    """Read ``index.csv`` of a tile set and check every tile it lists before training starts.

    Paths in the index are relative to ``root`` and must stay inside it; every image and mask must
    exist, and each mask must have its image's size (read from the file headers, not decoded), so
    a broken tile set fails here, naming the file, rather than mid-epoch or on misaligned crops.

    Raises:
        DataError: a missing or unreadable index, a missing column, a path outside ``root``, a
            missing or unreadable tile, or a mask whose size differs from its image's.
    """
    root = Path(root)
    path = root / "index.csv"
    if not path.is_file():
        raise DataError(f"{path}: tile index not found (make one with data_prep/make_tiles.py)")
    try:
        index = pd.read_csv(path, dtype={"image": str, "mask": str, "source": str, "group": str})
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{path}: not a readable tile index ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    if index.empty:
        raise DataError(f"{path}: lists no tiles")
    inside = root.resolve()
    for line, (image, mask) in enumerate(zip(index["image"], index["mask"]), start=2):
        sizes = [_tile_size(path, line, inside, rel) for rel in (image, mask)]
        if sizes[0] != sizes[1]:
            raise DataError(f"{path}, line {line}: mask {mask} is {sizes[1][0]} x {sizes[1][1]} px but its image "
                            f"{image} is {sizes[0][0]} x {sizes[0][1]} px (height x width)")
    return index, root


def _tile_size(index_path: Path, line: int, root: Path, rel) -> tuple[int, int]:
    """``(height, width)`` of a tile file from its header, checked to lie inside ``root``."""
    if not isinstance(rel, str) or not rel:
        raise DataError(f"{index_path}, line {line}: an empty tile path")
    file = (root / rel).resolve()
    if not file.is_relative_to(root):
        raise DataError(f"{index_path}, line {line}: tile path {rel!r} points outside the tile set {root}")
    try:
        with Image.open(file) as im:
            width, height = im.size
    except FileNotFoundError:
        raise DataError(f"{index_path}, line {line}: tile {rel} not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{index_path}, line {line}: tile {rel} is not a readable image ({err})") from None
    return height, width


def folds_by_group(groups, n_folds: int, seed: int = 0) -> np.ndarray:
    """Assign a fold to every row so that no group is split, balancing rows per fold.

    Returns:
        int array of fold numbers, one per row.
    """
    groups = pd.Series(list(groups))
    sizes = groups.value_counts()
    order = sizes.sample(frac=1, random_state=seed).sort_values(ascending=False, kind="stable")
    load, fold_of = np.zeros(n_folds, int), {}
    for group, n in order.items():
        f = int(np.argmin(load))
        fold_of[group] = f
        load[f] += n
    return groups.map(fold_of).to_numpy()


def split_fold(index: pd.DataFrame, n_folds: int, seed: int, fold: int,
               sources_train: Optional[list] = None,
               sources_valid: Optional[list] = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tile index split into the rows that train fold ``fold`` and the rows held out for it.

    The one rule every user of a split follows (the trainer, ``hubkit validate``, the benches), so a
    score on "held-out" rows is a score on tiles the fold's model never trained on.

    Args:
        index: a tile index (``read_index``), with its ``group`` and ``source`` columns.
        n_folds: folds of the split (``folds_by_group``).
        seed: the split's seed.
        fold: the held-out fold, 0 to ``n_folds - 1``.
        sources_train: keep only training rows of these sources (None: all).
        sources_valid: keep only held-out rows of these sources (None: all).

    Returns:
        ``(train, held_out)``: row subsets of ``index``, in its order.
    """
    fold_of = folds_by_group(index["group"], n_folds, seed)
    train, held_out = index[fold_of != fold], index[fold_of == fold]
    if sources_train:
        train = train[train["source"].isin(sources_train)]
    if sources_valid:
        held_out = held_out[held_out["source"].isin(sources_valid)]
    return train, held_out


def tile_set_stats(root) -> Optional[dict]:
    """The tile set's ``stats.json`` (``mean`` and ``std``: 3 numbers each, 0-1 scale), or None.

    Raises:
        DataError: unreadable JSON, or a mean/std that is not 3 finite numbers (std > 0).
    """
    path = Path(root) / "stats.json"
    if not path.is_file():
        return None
    stats = read_json(path, DataError, "tile set statistics")
    for key, low in (("mean", 0.0), ("std", 1e-6)):
        values = stats.get(key) if isinstance(stats, dict) else None
        if not (isinstance(values, list) and len(values) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= 1 for v in values)):
            raise DataError(f"{path}: {key} must be 3 numbers in [{low:g}, 1], got {values!r}")
    return stats
