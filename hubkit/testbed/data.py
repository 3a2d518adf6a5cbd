"""Real tissue for the test bed: the tiles that ship with hubkit, and the shared real data beside a checkout.

`sample_tiles_dir` is the package's own 5 HuBMAP Vanderbilt PAS tiles with their glomerulus masks
(``sample_tiles/SOURCE.md``: source, licence, attribution), checked against their sha256 before use;
`find_data_dir` / `default_tiles_dir` find the larger shared data set when it is present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from hubkit._io import sha256_file
from hubkit.errors import MissingInputError
from hubkit.slides.images import find_tile_pairs

__all__ = ["find_data_dir", "default_tiles_dir", "sample_tiles_dir", "SAMPLE_TILES", "STARTER_HELD_OUT",
           "tiles_in_range", "VANDERBILT_TO_HUBMAP"]

#: The real tiles inside the package: HuBMAP Vanderbilt PAS tiles 080, 081, 092, 093 and 094 (1600 x 1200
#: JPEG) with 0/255 glomerulus masks, all from the starter model's held-out range.
SAMPLE_TILES = Path(__file__).resolve().parent / "sample_tiles"
_SAMPLE_SUMS = "SHA256SUMS.csv"

#: The first and last tile stems (inclusive) of the Vanderbilt tiles the shipped models (fold 3) never
#: trained on: their validation groups, all 32 tiles from 080 to 239. Tiles after 239 are in folds 0 and
#: 1, which they did train on, so a score on tissue they have not seen stays inside this range.
STARTER_HELD_OUT = ("train_080", "train_239")
#: Vanderbilt tiles are at about 200/237 of HuBMAP's magnification (median glomerulus diameter).
VANDERBILT_TO_HUBMAP = 1.185
VANDERBILT = "hubmap-vanderbilt-pas-glomeruli-1600x1200"
VASCULATURE_2023 = "hubmap-2023-vasculature-samples"


def tiles_in_range(pairs: list[tuple[Path, Path]],
                   tile_range: tuple[str, str] = STARTER_HELD_OUT) -> list[tuple[Path, Path]]:
    """The ``(image, mask)`` pairs whose image file stem sorts between ``tile_range``'s first and last
    stems, both included, in their order (default: the tiles the shipped models never trained on)."""
    first, last = tile_range
    return [pair for pair in pairs if first <= pair[0].stem <= last]


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


def sample_tiles_dir(folder=SAMPLE_TILES) -> Path:
    """The real tiles that ship with hubkit, after checking every file against ``SHA256SUMS.csv``.

    Args:
        folder: the sample folder (``images/``, ``masks/``, ``SHA256SUMS.csv``); default: the package's.

    Returns:
        ``folder``, ready for `hubkit.testbed.make_competition`.

    Raises:
        MissingInputError: the checksum list or a file it names is missing or changed (a broken
            install), naming the file.
    """
    folder = Path(folder)
    sums = folder / _SAMPLE_SUMS
    if not sums.is_file():
        raise MissingInputError(f"{sums}: missing: the real sample tiles are not installed (reinstall hubkit)")
    lines = sums.read_text().split()[1:]
    for line in lines:
        name, _, expected = line.partition(",")
        path = folder / name
        parts = Path(name).parts
        if len(parts) != 2 or parts[0] not in ("images", "masks") or parts[1] in ("", "..") or not path.is_file():
            raise MissingInputError(f"{path}: missing sample tile file listed in {sums} (reinstall hubkit)")
        if sha256_file(path) != expected:
            raise MissingInputError(f"{path}: sha256 differs from {sums}: the file is damaged (reinstall hubkit)")
    return folder
