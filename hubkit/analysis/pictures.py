"""Pictures of a slide's glomeruli: outlines on a thumbnail, a review gallery, histograms.

Every picture is ``(height, width, 3)`` uint8 RGB; outlines are drawn from encodings decoded strip by
strip or window by window, so no whole-slide mask is built.
"""

from __future__ import annotations

from typing import Callable, Optional

import cv2
import numpy as np

from hubkit.formats import rle
from hubkit.slides.base import BaseSlide, scaled_size

__all__ = ["overlay", "histogram_image", "review_gallery"]


def overlay(slide, truth: str, prediction: str, scale: int = 8) -> np.ndarray:
    """Thumbnail with the truth outlined in red and the prediction in green: ``(h, w, 3)`` uint8 RGB."""
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


def histogram_image(values: np.ndarray, title: str, bins: int = 20, size: tuple[int, int] = (240, 420)) -> np.ndarray:
    """A bar chart of ``values``: ``(height, width, 3)`` uint8 RGB, labelled with the range."""
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    cv2.putText(img, title, (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if values.size == 0:
        cv2.putText(img, "no values", (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (90, 90, 90), 1, cv2.LINE_AA)
        return img
    counts, edges = np.histogram(values, bins=bins)
    top, bottom, left, right = 35, h - 30, 10, w - 10
    bar = (right - left) / bins
    for i, n in enumerate(counts):
        y = bottom - int((bottom - top) * n / max(counts.max(), 1))
        cv2.rectangle(img, (int(left + i * bar) + 1, y), (int(left + (i + 1) * bar) - 1, bottom), (60, 120, 200), -1)
    for x, text in ((left, f"{edges[0]:.3g}"), (right - 60, f"{edges[-1]:.3g}")):
        cv2.putText(img, text, (x, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"n={values.size}, max count {counts.max()}", (w - 190, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
    return img


def review_gallery(slide: BaseSlide, prediction: str, table, count: int = 12, cell: int = 160,
                   by: Optional[str] = None, ascending: bool = True, caption: Optional[Callable] = None) -> np.ndarray:
    """Glomeruli of ``table`` outlined in a grid of ``cell``-px squares, 4 to a row.

    Args:
        slide, prediction: the slide and its predicted encoding (for the outlines).
        table: glomerulus records (`hubkit.analysis.glomeruli.glomeruli` columns).
        count: how many.
        by, ascending: the column that orders them; by default the least confident first (the
            smallest first without confidences).
        caption: ``caption(row) -> str`` written on each cell; by default its confidence.
    """
    if by is None:
        by = "confidence_max" if table["confidence_max"].notna().any() else "area_px"
    picks = table.sort_values(by, ascending=ascending, kind="stable").head(count)
    columns = 4
    rows = max(1, -(-len(picks) // columns))
    grid = np.full((rows * cell, columns * cell, 3), 255, np.uint8)
    runs = rle.parse(prediction, slide.shape)
    for k, row in enumerate(picks.itertuples(index=False)):
        side = int(1.5 * max(row.bbox_row1 - row.bbox_row0, row.bbox_col1 - row.bbox_col0)) + 16  # square: no stretching
        win = ((row.bbox_row0 + row.bbox_row1 - side) // 2, (row.bbox_col0 + row.bbox_col1 - side) // 2, side, side)
        crop = slide.read(win, fill=255).copy()
        contours, _ = cv2.findContours(rle.decode_window(runs, slide.shape, win), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(crop, contours, -1, (0, 200, 0), max(1, crop.shape[0] // 100))
        crop = cv2.resize(crop, (cell, cell), interpolation=cv2.INTER_AREA)
        if caption is not None:
            label = caption(row)
        else:
            label = "conf n/a" if np.isnan(row.confidence_max) else f"conf {row.confidence_max:.2f}"
        cv2.putText(crop, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        r, c = divmod(k, columns)
        grid[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = crop
    return grid
