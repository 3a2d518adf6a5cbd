"""Find what a Kaggle notebook was given: mount paths change over the years, contents do not.

`find_inputs` walks ``/kaggle/input`` (or ``$KAGGLE_INPUT``) for the competition folder, the wheel
folder and the model zoo by what they hold, in either mount layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hubkit.models.zoo import is_card_file, walk_once

__all__ = ["KaggleInputs", "find_inputs"]


@dataclass
class KaggleInputs:
    """What `find_inputs` found (None where nothing was)."""

    competition: Optional[Path]
    wheels: Optional[Path]
    zoo: Optional[Path]


def find_inputs(root=None) -> KaggleInputs:
    """Walk the input tree for the competition folder (``sample_submission.csv`` + ``test/``), a
    folder of ``hubkit-*.whl`` and the folder holding the model cards (``card.json`` or
    ``<name>.card.json``).

    Links are followed, each real folder once (a link back up the tree cannot loop).
    """
    root = Path(root or os.environ.get("KAGGLE_INPUT", "/kaggle/input"))
    competition = wheels = None
    cards = []
    for folder, files in walk_once(root):
        here = Path(folder)
        if competition is None and "sample_submission.csv" in files and (here / "test").is_dir():
            competition = here
        if wheels is None and any(f.startswith("hubkit-") and f.endswith(".whl") for f in files):
            wheels = here
        if any(is_card_file(f) for f in files):
            cards.append(here)
    zoo = Path(os.path.commonpath(cards)) if cards else None
    return KaggleInputs(competition, wheels, zoo)
