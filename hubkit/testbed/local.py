"""Local 2021-format competitions built from real tiles with masks: the end-to-end test bed.

Tiles are laid on slide glass into slides of several thousand pixels a side (and one wide slide of
20,000+ px), written as TIFFs in both band layouts, with ``sample_submission.csv`` and a
``solution.csv`` (``id,encoding``) to score against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from hubkit.errors import DataError
from hubkit.formats import rle
from hubkit.formats.hubmap2021 import HuBMAP2021
from hubkit.slides.images import find_tile_pairs
from hubkit.slides.write import write_slide
from hubkit.testbed.data import VANDERBILT_TO_HUBMAP, tiles_in_range
from hubkit.testbed.mosaic import mosaic_slide, synthetic_slide

__all__ = ["SlideSpec", "FULL", "SMALL", "make_competition"]


@dataclass(frozen=True)
class SlideSpec:
    """One slide: how many tiles, in how many columns, in which TIFF layout."""

    tiles: int
    columns: int
    layout: str = "bands"


#: Three slides from 32 tiles (as many as the shipped models held out, `hubkit.testbed.STARTER_HELD_OUT`):
#: 4x3 and 3x3 tiles (5.3k x 8.9k and 5.3k x 6.7k px with their glass), and 11x1 (1.9k x 24k px).
FULL = (SlideSpec(12, 4, "bands"), SlideSpec(9, 3, "pages"), SlideSpec(11, 11, "bands"))
#: Two small slides from 5 tiles, for quick runs on a CPU.
SMALL = (SlideSpec(3, 3, "bands"), SlideSpec(2, 2, "pages"))


def make_competition(
    out_dir,
    tiles_dir=None,
    slides: Sequence[SlideSpec] = FULL,
    tile_scale: float = VANDERBILT_TO_HUBMAP,
    prefix: str = "local",
    seed: int = 0,
    tile_range: Optional[tuple[str, str]] = None,
) -> pd.DataFrame:
    """Write a competition folder: ``test/<id>.tiff``, ``sample_submission.csv``, ``solution.csv``.

    Args:
        out_dir: the folder to create.
        tiles_dir: ``images/`` + ``masks/`` of real tiles; None draws labelled synthetic slides.
        slides: the slides to build; tiles are used in sorted order, each once.
        tile_scale: resize factor bringing the tiles to HuBMAP magnification.
        prefix: slide ids are ``<prefix>-<n>``.
        tile_range: ``(first, last)`` file stems: use only the tiles whose stem sorts between them,
            both included (e.g. `hubkit.testbed.STARTER_HELD_OUT`, the tiles the shipped models never saw).

    Returns:
        The solution table (``id, encoding, height, width, layout, source``).

    Raises:
        DataError: fewer tiles than the slides need.
    """
    out_dir = Path(out_dir)
    (out_dir / "test").mkdir(parents=True, exist_ok=True)
    pairs = find_tile_pairs(tiles_dir) if tiles_dir is not None else []
    if tile_range is not None:
        pairs = tiles_in_range(pairs, tile_range)
    need = sum(s.tiles for s in slides)
    if tiles_dir is not None and len(pairs) < need:
        kept = f" from {tile_range[0]} to {tile_range[1]}" if tile_range is not None else ""
        raise DataError(f"{tiles_dir}: {len(pairs)} tile pairs (images/ + masks/){kept}, the slides need {need}")
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
    HuBMAP2021.write_solution(out_dir / "solution.csv", dict(zip(solution["id"], solution["encoding"])))
    pd.DataFrame({"id": solution["id"], "predicted": ""}).to_csv(out_dir / "sample_submission.csv", index=False)
    solution.drop(columns="encoding").to_csv(out_dir / "slides.csv", index=False)
    return solution
