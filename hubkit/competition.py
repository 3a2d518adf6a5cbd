"""Build a local HuBMAP-format competition from real tiles with masks: the end-to-end test bed.

Tiles are laid on slide glass into slides of several thousand pixels a side (and one wide slide of
20,000+ px), written as TIFFs in both band layouts, with ``sample_submission.csv`` and a
``solution.csv`` (``id,encoding``) to score against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from hubkit import rle
from hubkit.errors import HubkitError
from hubkit.sample import find_tile_pairs, mosaic_slide, synthetic_slide
from hubkit.slide import scaled_size
from hubkit.tiffwrite import write_slide

__all__ = ["SlideSpec", "FULL", "SMALL", "make_competition", "default_tiles_dir", "overlay"]

#: The shipped starter model (fold 3) never trained on Vanderbilt tiles 080-239 (its validation
#: groups), so a demo built from them scores the model on tissue it has not seen.
STARTER_HELD_OUT_FIRST = "train_080"
#: Vanderbilt tiles are at about 200/237 of HuBMAP's magnification (median glomerulus diameter).
VANDERBILT_TO_HUBMAP = 1.185


@dataclass(frozen=True)
class SlideSpec:
    """One slide: how many tiles, in how many columns, in which TIFF layout."""

    tiles: int
    columns: int
    layout: str = "bands"


#: Three slides from 43 tiles: 4x3 and 3x3 tiles (about 5k x 9k px), and 11x2 (about 3.6k x 24k px).
FULL = (SlideSpec(12, 4, "bands"), SlideSpec(9, 3, "pages"), SlideSpec(22, 11, "bands"))
#: Two small slides from 5 tiles, for quick runs on a CPU.
SMALL = (SlideSpec(3, 3, "bands"), SlideSpec(2, 2, "pages"))


def make_competition(
    out_dir,
    tiles_dir=None,
    slides: Sequence[SlideSpec] = FULL,
    tile_scale: float = VANDERBILT_TO_HUBMAP,
    prefix: str = "local",
    seed: int = 0,
    first_tile: Optional[str] = None,
) -> pd.DataFrame:
    """Write a competition folder: ``test/<id>.tiff``, ``sample_submission.csv``, ``solution.csv``.

    Args:
        out_dir: the folder to create.
        tiles_dir: ``images/`` + ``masks/`` of real tiles; None draws labelled synthetic slides.
        slides: the slides to build; tiles are used in sorted order, each once.
        tile_scale: resize factor bringing the tiles to HuBMAP magnification.
        prefix: slide ids are ``<prefix>-<n>``.
        first_tile: start at the first tile whose file stem sorts at or after this one.

    Returns:
        The solution table (``id, encoding, height, width, layout, source``).

    Raises:
        HubkitError: fewer tiles than the slides need.
    """
    out_dir = Path(out_dir)
    (out_dir / "test").mkdir(parents=True, exist_ok=True)
    pairs = find_tile_pairs(tiles_dir) if tiles_dir is not None else []
    if first_tile is not None:
        pairs = [p for p in pairs if p[0].stem >= first_tile]
    need = sum(s.tiles for s in slides)
    if tiles_dir is not None and len(pairs) < need:
        raise HubkitError(f"{tiles_dir}: {len(pairs)} tile pairs (images/ + masks/), the slides need {need}")
    rows, used = [], 0
    for n, spec in enumerate(slides):
        slide_id = f"{prefix}-{n}"
        if pairs:
            rgb, mask = mosaic_slide(pairs[used : used + spec.tiles], spec.columns, tile_scale=tile_scale)
            source = f"real tiles {pairs[used][0].name}..{pairs[used + spec.tiles - 1][0].name} from {tiles_dir}"
            used += spec.tiles
        else:
            rows_n = -(-spec.tiles // spec.columns)
            rgb, mask = synthetic_slide((1536 * rows_n, 1536 * spec.columns), seed=seed + n)
            source = "SYNTHETIC drawing"
        write_slide(out_dir / "test" / f"{slide_id}.tiff", rgb, layout=spec.layout)
        rows.append(dict(id=slide_id, encoding=rle.encode(mask), height=mask.shape[0], width=mask.shape[1],
                         layout=spec.layout, source=source))
    solution = pd.DataFrame(rows)
    solution[["id", "encoding"]].to_csv(out_dir / "solution.csv", index=False)
    pd.DataFrame({"id": solution["id"], "predicted": ""}).to_csv(out_dir / "sample_submission.csv", index=False)
    solution.drop(columns="encoding").to_csv(out_dir / "slides.csv", index=False)
    return solution


def default_tiles_dir() -> Optional[Path]:
    """The shared Vanderbilt HuBMAP tiles, when the real data is beside the checkout."""
    from hubkit.sample import find_data_dir

    data = find_data_dir()
    folder = data / "hubmap-vanderbilt-pas-glomeruli-1600x1200" if data else None
    return folder if folder is not None and find_tile_pairs(folder) else None


def overlay(slide, truth: str, prediction: str, scale: int = 8) -> np.ndarray:
    """Thumbnail with the truth outlined in red and the prediction in green: ``(h, w, 3)`` uint8 RGB."""
    import cv2

    thumb = slide.thumbnail(scale)
    h, w = slide.shape
    for encoding, colour in ((truth, (255, 0, 0)), (prediction, (0, 200, 0))):
        runs = rle.parse(encoding, (h, w))
        small = np.zeros(thumb.shape[:2], np.uint8)
        step = 4096 // scale * scale
        for c in range(0, w, step):  # decode strip by strip, shrinking as we go
            part = rle.decode_window(runs, (h, w), (0, c, h, min(step, w - c)))
            cols = min(small.shape[1] - c // scale, scaled_size(part.shape[1], scale))
            shrunk = cv2.resize(part, (cols, small.shape[0]), interpolation=cv2.INTER_AREA)
            small[:, c // scale : c // scale + shrunk.shape[1]] = shrunk
        contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(thumb, contours, -1, colour, 2)
    return thumb
