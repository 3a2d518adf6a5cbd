"""Limits on what a slide file may declare, checked before a pixel is read.

A TIFF header is a promise the file need not keep: a 700 KB file can declare 10^6 x 10^6 pixels
in sparse tiles, and every whole-slide pass over it (the tissue thumbnail first) would then read
60,000 empty blocks for hours. `check_declared` refuses such files at `hubkit.slides.open_slide`
time with a clear error that says how to lift the limit.

Two limits, both overridable:

* ``max_pixels``: full-resolution pixels (height x width). The default, 2^35 (about 34 Gpx, a
  185,000 x 185,000 slide), is 17 times HuBMAP's largest slide and above any scanner's output.
* ``max_expansion``: declared RGB bytes per byte of file. Real slides stay far below 1,000
  (deflate cannot beat about 1,032 to 1; JPEG background tiles stay under ~200 to 1); only sparse
  or forged files reach the default 10,000.

Environment variables override the defaults for the command line and the Kaggle kernels:
``HUBKIT_MAX_SLIDE_PIXELS`` and ``HUBKIT_MAX_SLIDE_EXPANSION``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping, Optional

from hubkit.errors import ConfigError, SlideError

__all__ = ["SlideLimits", "check_declared", "ENV_MAX_PIXELS", "ENV_MAX_EXPANSION"]

ENV_MAX_PIXELS = "HUBKIT_MAX_SLIDE_PIXELS"
ENV_MAX_EXPANSION = "HUBKIT_MAX_SLIDE_EXPANSION"


@dataclass(frozen=True)
class SlideLimits:
    """How large a slide may claim to be.

    Attributes:
        max_pixels: most full-resolution pixels (height x width) a slide may declare.
        max_expansion: most declared bytes (height x width x 3) per byte of the file.
    """

    max_pixels: int = 1 << 35
    max_expansion: float = 10_000.0

    def __post_init__(self) -> None:
        if not (isinstance(self.max_pixels, int) and not isinstance(self.max_pixels, bool) and self.max_pixels > 0):
            raise ConfigError(f"max_pixels must be a whole number > 0, got {self.max_pixels!r}")
        if not (isinstance(self.max_expansion, (int, float)) and not isinstance(self.max_expansion, bool)
                and self.max_expansion > 0 and not math.isnan(self.max_expansion)):
            raise ConfigError(f"max_expansion must be a number > 0, got {self.max_expansion!r}")

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "SlideLimits":
        """The defaults, with ``HUBKIT_MAX_SLIDE_PIXELS`` / ``HUBKIT_MAX_SLIDE_EXPANSION`` applied.

        Raises:
            ConfigError: a variable that is not a positive number; names the variable.
        """
        env = os.environ if environ is None else environ
        values: dict = {}
        for var, key, kind in ((ENV_MAX_PIXELS, "max_pixels", int), (ENV_MAX_EXPANSION, "max_expansion", float)):
            text = env.get(var, "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{var}={text!r}: not a number") from None
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{var}={text!r}: must be a finite number > 0")
            values[key] = kind(value)
        return cls(**values)


def check_declared(name: str, shape: tuple[int, int], file_bytes: int, limits: Optional[SlideLimits] = None) -> None:
    """Refuse a slide whose declared size breaks a limit.

    Args:
        name: the file, quoted in the error.
        shape: declared ``(height, width)`` of full resolution.
        file_bytes: the file's size on disk.
        limits: the limits (default: `SlideLimits.from_env`).

    Raises:
        SlideError: too many pixels, or far more pixels than the file could hold; the message says
            how to lift the limit.
    """
    limits = limits or SlideLimits.from_env()
    h, w = (int(v) for v in shape)
    pixels = h * w
    if pixels > limits.max_pixels:
        raise SlideError(
            f"{name}: declares {h} x {w} = {pixels:,} pixels, over the limit of {limits.max_pixels:,}; "
            f"if the slide is real, raise it with {ENV_MAX_PIXELS} or open_slide(limits=SlideLimits(max_pixels=...))"
        )
    expansion = 3 * pixels / max(1, file_bytes)
    if expansion > limits.max_expansion:
        raise SlideError(
            f"{name}: declares {h} x {w} pixels ({3 * pixels:,} bytes of RGB) in a file of {file_bytes:,} bytes, "
            f"{expansion:,.0f} times more than it holds (limit {limits.max_expansion:,.0f}); the file is sparse or "
            f"forged. If it is real, raise the limit with {ENV_MAX_EXPANSION}"
        )
