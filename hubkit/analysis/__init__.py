"""Analysis: one record per glomerulus, detection metrics against the truth, density, reports.

`glomeruli` lists a mask's glomeruli; `analyze_slide` does it over a whole slide in bounded memory
with matching against the truth; `write_report` writes the per-slide tables, QuPath GeoJSON and
HTML page; `analyze` runs all of it over a slide or a folder. `GlomerulusClassifier` scores each
glomerulus globally sclerotic or not (`hubkit.analysis.sclerosis`). `dice_breakdown` splits the
Dice a prediction loses into missed glomeruli, extra ones and outlines.
"""

from hubkit.analysis.glomeruli import (
    Detection,
    DiceBreakdown,
    components,
    detection_metrics,
    dice_breakdown,
    glomeruli,
    match,
    match_labels,
)
from hubkit.analysis.pictures import histogram_image, overlay, review_gallery
from hubkit.analysis.report import write_report
from hubkit.analysis.run import analyze, find_slide, read_slide_encodings
from hubkit.analysis.sclerosis import GlomerulusClassifier, sclerosis_summary, score_crop_folder
from hubkit.analysis.slide import SlideAnalysis, analyze_slide, cortex_density

__all__ = [
    "Detection", "DiceBreakdown", "dice_breakdown", "components", "detection_metrics", "glomeruli", "match",
    "match_labels", "overlay", "histogram_image", "review_gallery", "write_report", "analyze", "find_slide",
    "read_slide_encodings", "SlideAnalysis", "analyze_slide", "cortex_density", "GlomerulusClassifier",
    "sclerosis_summary", "score_crop_folder",
]
