"""Output files written whole or not at all, with errors that name the path.

`atomic_write` writes a unique temporary file beside the target and renames it over the target:
a reader only ever sees a whole file, two runs writing one path never share a temporary name,
and a failed write (disk full, no permission, an exception in the writer, Ctrl-C) leaves the
previous file as it was and no temporary file behind. `write_image` does the same for PNG/JPEG
pictures, where ``cv2.imwrite`` would only return False.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Optional

import cv2
import numpy as np

from hubkit.errors import HubkitError, OutputError

__all__ = ["atomic_write", "write_image", "sha256_file", "read_json"]


def _failed(path: Path, err: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({err.strerror or err})")


@contextmanager
def atomic_write(path, mode: str = "w", newline: str | None = None) -> Iterator[IO]:
    """A file object whose content replaces ``path`` when the block ends without an error.

    Args:
        path: the file to (re)write; its folder is made if missing.
        mode: ``"w"`` (UTF-8 text) or ``"wb"``.
        newline: as `open` (``""`` for the csv module).

    Raises:
        OutputError: the folder or file cannot be written; names ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _failed(path, err) from None
    try:
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, mode, **text) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _failed(path, err) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_image(path, rgb: np.ndarray, quality: int = 95) -> Path:
    """Write an ``(height, width, 3)`` RGB (or ``(height, width)`` grey) uint8 picture, PNG or JPEG by suffix.

    ``quality`` (0-100) applies to JPEG only.

    Raises:
        OutputError: an unknown suffix or a failed write; names ``path``.
    """
    path = Path(path)
    pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    try:
        jpeg = path.suffix.lower() in (".jpg", ".jpeg")
        ok, data = cv2.imencode(path.suffix, pixels, [cv2.IMWRITE_JPEG_QUALITY, quality] if jpeg else [])
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"{path}: cannot encode a picture as {path.suffix or 'a file without suffix'}")
    with atomic_write(path, "wb") as f:
        f.write(data.tobytes())
    return path


def sha256_file(path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path, error: type[HubkitError], what: str, missing: Optional[str] = None, hint: str = "") -> Any:
    """The parsed JSON of a file from outside, or ``error`` naming the file and what is wrong with it.

    Args:
        path: the file.
        error: the `HubkitError` subclass to raise (the reader's room: `CardError`, `DataError`, ...).
        what: the file's role in the message (``"model card"``: "<path>: unreadable model card: ...").
        missing: the whole message after "<path>: " for a file that does not exist, if it differs.
        hint: appended to every message (what the user can do).

    Raises:
        error: a missing or unreadable file, bytes that are not UTF-8, text that is not JSON, or JSON
            nested too deeply to parse.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = missing or f"unreadable {what}: no such file"
    except RecursionError:
        problem = f"unreadable {what}: JSON nested too deeply"
    except UnicodeDecodeError:
        problem = f"unreadable {what}: not UTF-8 text"
    except json.JSONDecodeError as err:
        problem = f"unreadable {what}: not JSON ({err})"
    except OSError as err:
        problem = f"unreadable {what}: {err.strerror or err}"
    raise error(f"{path}: {problem}{hint}") from None
