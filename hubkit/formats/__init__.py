"""Competition formats: test-folder layout, submission files, mask encodings and metrics.

`get_format` returns a `CompetitionFormat` by name (``hubmap2021``, the default, or ``hubmap2023``);
each knows its test folder, its submission columns, the `Sink` that turns one slide's probabilities
into its row, and its scorer. `rle` is the 2021 run-length encoding, `coco` the 2023 instance-mask
text, `metrics` the Dice and Open Images AP.
"""

from hubkit.formats.base import CompetitionFormat, Score, Sink
from hubkit.formats.hubmap2021 import HuBMAP2021, glomerulus_probability
from hubkit.formats.hubmap2023 import CLASS_IDS, HuBMAP2023
from hubkit.formats.registry import DEFAULT_FORMAT, FORMATS, detect_format, format_names, get_format

__all__ = [
    "CompetitionFormat", "Score", "Sink", "HuBMAP2021", "HuBMAP2023", "CLASS_IDS", "glomerulus_probability",
    "FORMATS", "DEFAULT_FORMAT", "format_names", "get_format", "detect_format",
]
