"""The test bed: local competitions built from real tiles, and the demo.

`make_competition` lays real tiles with masks on slide glass into 2021-format slides with a
solution (synthetic drawings only for tests); `run_demo` builds one, predicts, scores, draws and
analyses it; `sample_tiles_dir` is the real tissue that ships with hubkit; `find_data_dir` finds
the shared real data.
"""

from hubkit.testbed.data import (
    SAMPLE_TILES,
    STARTER_HELD_OUT,
    VANDERBILT_TO_HUBMAP,
    default_tiles_dir,
    find_data_dir,
    sample_tiles_dir,
    tiles_in_range,
)
from hubkit.testbed.demo import DemoResult, run_demo
from hubkit.testbed.local import FULL, SMALL, SlideSpec, make_competition
from hubkit.testbed.mosaic import GLASS_RGB, mosaic_slide, synthetic_slide

__all__ = [
    "find_data_dir", "default_tiles_dir", "sample_tiles_dir", "SAMPLE_TILES", "STARTER_HELD_OUT", "tiles_in_range",
    "VANDERBILT_TO_HUBMAP", "run_demo", "DemoResult",
    "make_competition", "SlideSpec", "FULL", "SMALL", "GLASS_RGB", "mosaic_slide", "synthetic_slide",
]
