"""Every exception hubkit raises on purpose. Each message names the file, field or item and the problem.

The command line catches `HubkitError` alone and prints it as one line; anything else is a bug
and keeps its traceback. Most classes also derive from the builtin a caller would expect
(``ValueError`` for bad values, ``FileNotFoundError`` for absent inputs, ``OSError`` for failed
writes), so ``except ValueError`` around a hubkit call keeps working.
"""

from __future__ import annotations

__all__ = [
    "HubkitError",
    "ConfigError",
    "SlideError",
    "AnnotationError",
    "EncodingError",
    "RLEError",
    "SubmissionError",
    "ScoreError",
    "CardError",
    "DataError",
    "ModelOutputError",
    "MissingInputError",
    "OutputError",
]


class HubkitError(Exception):
    """Base of every hubkit error."""


class ConfigError(HubkitError, ValueError):
    """An invalid setting: a prediction or training option, a config file, or a name no registry knows."""


class SlideError(HubkitError):
    """A slide that cannot be opened or read: corrupt, truncated, unsupported layout, bad window."""


class AnnotationError(HubkitError, ValueError):
    """An annotation file that cannot be read or rasterised."""


class EncodingError(HubkitError, ValueError):
    """A malformed mask encoding (a competition RLE or a COCO mask), or a mask that cannot be encoded."""


#: The 2021 competition's run-length encoding is the encoding most users meet; the same class.
RLEError = EncodingError


class SubmissionError(HubkitError, ValueError):
    """A submission, solution or sample CSV that is missing, malformed, or does not fit its format."""


#: A submission and a solution that cannot be scored against each other.
ScoreError = SubmissionError


class CardError(HubkitError, ValueError):
    """A missing, unreadable or invalid model card, or weights that do not match it."""


class DataError(HubkitError, ValueError):
    """A tile set, image or mask file that cannot be used (missing, unreadable, mismatched sizes)."""


class ModelOutputError(HubkitError, ValueError):
    """A model whose output cannot be used (NaN or infinite probabilities, wrong shape)."""


class MissingInputError(HubkitError, FileNotFoundError):
    """An input folder or file that hubkit looked for and did not find."""


class OutputError(HubkitError, OSError):
    """An output that could not be written (disk full, no permission); names the path."""
