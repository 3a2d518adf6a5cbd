"""Where the shared real data lives, and which of its tiles the shipped starter model never saw."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from hubkit.slides.images import find_tile_pairs

__all__ = ["find_data_dir", "default_tiles_dir", "STARTER_HELD_OUT_FIRST", "VANDERBILT_TO_HUBMAP"]

#: The shipped starter model (fold 3) never trained on Vanderbilt tiles 080-239 (its validation
#: groups), so a demo built from them scores the model on tissue it has not seen.
STARTER_HELD_OUT_FIRST = "train_080"
#: Vanderbilt tiles are at about 200/237 of HuBMAP's magnification (median glomerulus diameter).
VANDERBILT_TO_HUBMAP = 1.185
VANDERBILT = "hubmap-vanderbilt-pas-glomeruli-1600x1200"
VASCULATURE_2023 = "hubmap-2023-vasculature-samples"


def find_data_dir() -> Optional[Path]:
    """The shared real-data folder: ``$HUBKIT_DATA``, else ``../shared/data`` beside the checkout."""
    candidates = [os.environ.get("HUBKIT_DATA")]
    candidates += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def default_tiles_dir() -> Optional[Path]:
    """The shared Vanderbilt HuBMAP tiles, when the real data is beside the checkout."""
    data = find_data_dir()
    folder = data / VANDERBILT if data else None
    return folder if folder is not None and find_tile_pairs(folder) else None
