"""Inference: sliding windows over a slide, blended, ensembled, streamed into a format's sink.

`predict_slide` runs an `Ensemble` over one slide (tiling, tissue skipping, TTA, blending,
upsampling) and hands column strips to a `hubkit.formats.Sink`; `predict_folder` does that for a
whole competition folder into a submission; `predict_image` returns an in-memory image's
probabilities. `PredictConfig` holds every setting.
"""

from hubkit.inference.blend import BlendMode, ColumnMerger, importance_map
from hubkit.inference.config import PredictConfig, resolve_device
from hubkit.inference.engine import SlidePrediction, count_tiles, predict_image, predict_slide, probability_strips
from hubkit.inference.memory import MallocPolicy, keep_freed_memory
from hubkit.inference.runner import FolderResult, SlideOutcome, predict_folder
from hubkit.inference.tiling import grid_starts, iter_windows, tissue_fraction, tissue_mask
from hubkit.inference.tta import TTA, get_tta

__all__ = [
    "PredictConfig", "resolve_device", "BlendMode", "ColumnMerger", "importance_map", "SlidePrediction",
    "count_tiles", "predict_slide", "predict_image", "probability_strips", "predict_folder", "FolderResult", "SlideOutcome",
    "grid_starts", "iter_windows", "tissue_mask", "tissue_fraction", "TTA", "get_tta",
    "MallocPolicy", "keep_freed_memory",
]
