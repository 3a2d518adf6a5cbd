"""The FTU report of one slide: tables, a QuPath GeoJSON, and an HTML page with pictures.

Writes into a folder: ``glomeruli.csv`` (every predicted glomerulus), ``missed.csv`` (true ones no
prediction found, with the truth), ``glomeruli.geojson`` (QuPath: File > Import objects; each
object carries its measurements), ``overview.png`` (thumbnail, prediction green, truth red),
``review.png`` (the least confident glomeruli, for an expert's look), ``histograms.png`` (size and
confidence), with a glomerulus classifier ``sclerotic.png`` / ``non_sclerotic.png`` (the most and
least sclerotic-looking glomeruli), and ``report.html`` tying them together.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

import numpy as np

from hubkit._io import atomic_write, write_image
from hubkit.analysis.pictures import histogram_image, overlay, review_gallery
from hubkit.analysis.sclerosis import sclerosis_summary
from hubkit.analysis.slide import SlideAnalysis
from hubkit.annotations import save_geojson
from hubkit.slides.base import BaseSlide

__all__ = ["write_report"]


def _png(path: Path, rgb: np.ndarray) -> str:
    return write_image(path, rgb).name


def write_report(
    out_dir,
    slide: BaseSlide,
    analysis: SlideAnalysis,
    prediction: str,
    truth: Optional[str] = None,
    name: str = "",
    density: Optional[tuple[float, float]] = None,
    thumbnail_scale: Optional[int] = None,
) -> Path:
    """Write the report of one slide into ``out_dir``; returns the HTML page's path.

    ``thumbnail_scale`` defaults to the one that makes the overview about 1,600 px on its long side.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = analysis.predicted
    with atomic_write(out / "glomeruli.csv", newline="") as f:
        table.to_csv(f, index_label="glomerulus")
    if truth is not None:
        with atomic_write(out / "missed.csv", newline="") as f:
            analysis.missed.to_csv(f, index=False)
    save_geojson(out / "glomeruli.geojson", analysis.features)
    scale = thumbnail_scale or max(1, -(-max(slide.shape) // 1600))
    overview = _png(out / "overview.png", overlay(slide, truth or "", prediction, scale=scale))
    review = _png(out / "review.png", review_gallery(slide, prediction, table))
    size_col = "area_um2" if "area_um2" in table else "area_px"
    hists = np.concatenate([histogram_image(table[size_col], f"glomerulus {size_col}"),
                            histogram_image(table["confidence_max"], "confidence (max probability)")], axis=1)
    histograms = _png(out / "histograms.png", hists)
    facts = [("slide", name or slide.name), ("size (height x width)", f"{slide.shape[0]} x {slide.shape[1]} px"),
             ("predicted glomeruli", len(table))]
    if size_col in table and len(table):
        facts.append((f"median {size_col}", f"{table[size_col].median():.1f}"))
    if analysis.detection is not None:
        d = analysis.detection
        facts += [("true positives / false positives / missed", f"{d.tp} / {d.fp} / {d.fn}"),
                  ("precision / recall / F1", f"{d.precision:.3f} / {d.recall:.3f} / {d.f1:.3f}"),
                  ("detection score TP/(TP+FP+FN)", f"{d.detection_score:.3f}"), ("pixel Dice", f"{d.dice:.4f}")]
    if density is not None:
        facts += [("cortex area", f"{density[0]:.2f} mm^2"), ("glomeruli per mm^2 of cortex", f"{density[1]:.2f}")]
    sclerosis = ""
    if "p_sclerotic" in table:
        counts = sclerosis_summary(table)
        facts.append(("globally sclerotic (classifier)",
                      f"{counts['sclerotic']} of {counts['glomeruli']} ({counts['percent_sclerotic']:.1f}%)"))
        galleries = []
        for file, descending, title in (("sclerotic.png", True, "Most sclerotic-looking"),
                                        ("non_sclerotic.png", False, "Least sclerotic-looking")):
            picture = review_gallery(slide, prediction, table, count=8, by="p_sclerotic", ascending=not descending,
                                     caption=lambda row: f"p {row.p_sclerotic:.2f}")
            galleries.append(f'<h3>{title} glomeruli</h3><img src="{_png(out / file, picture)}">')
        sclerosis = ("<h2>Glomerulosclerosis</h2><p>p = the classifier's probability that a glomerulus is globally "
                     "sclerotic.</p>" + "".join(galleries))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>hubkit FTU report: {html.escape(name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:1em}}img{{max-width:100%}}</style></head>
<body><h1>Glomeruli in {html.escape(name or slide.name)}</h1><table>{rows}</table>
<h2>Overview</h2><p>Prediction outlined in green{', truth in red' if truth is not None else ''}.</p><img src="{overview}">
<h2>For review: least confident glomeruli</h2><img src="{review}">
<h2>Size and confidence</h2><img src="{histograms}">{sclerosis}
<p>Tables: <a href="glomeruli.csv">glomeruli.csv</a>{' and <a href="missed.csv">missed.csv</a>' if truth is not None else ''};
QuPath objects: <a href="glomeruli.geojson">glomeruli.geojson</a>.</p></body></html>"""
    path = out / "report.html"
    with atomic_write(path) as f:
        f.write(page)
    return path
