"""Competition formats by name: the one place ``--format`` choices come from."""

from __future__ import annotations

from hubkit.errors import ConfigError
from hubkit.formats.base import CompetitionFormat
from hubkit.formats.hubmap2021 import HuBMAP2021
from hubkit.formats.hubmap2023 import HuBMAP2023
from hubkit.formats.table import csv_columns

__all__ = ["FORMATS", "DEFAULT_FORMAT", "format_names", "get_format", "detect_format"]

#: Every format, by the name used on the command line.
FORMATS: dict[str, type[CompetitionFormat]] = {f.name: f for f in (HuBMAP2021, HuBMAP2023)}
DEFAULT_FORMAT = HuBMAP2021.name


def format_names() -> list[str]:
    return list(FORMATS)


def get_format(name: str = DEFAULT_FORMAT, **options) -> CompetitionFormat:
    """A format by name, with its options (e.g. ``scored_class`` for ``hubmap2023``).

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or option.
    """
    if isinstance(name, CompetitionFormat):
        return name
    if name not in FORMATS:
        raise ConfigError(f"unknown format {name!r}; valid names: {', '.join(FORMATS)}")
    try:
        return FORMATS[name](**options)
    except TypeError as err:
        raise ConfigError(f"format {name}: {err}") from None


def detect_format(csv_path) -> CompetitionFormat:
    """The format whose submission or solution columns a CSV's header holds.

    Raises:
        SubmissionError: an unreadable file; ConfigError: columns of no known format.
    """
    columns = set(csv_columns(csv_path))
    for fmt in FORMATS.values():
        if set(fmt.columns) <= columns or set(fmt.solution_columns) <= columns:
            return fmt()
    known = "; ".join(f"{n}: {','.join(f.columns)}" for n, f in FORMATS.items())
    raise ConfigError(f"{csv_path}: columns {sorted(columns)} fit no format ({known}); pass --format")
