"""The ``hubkit`` command line: a thin layer whose commands call library functions.

`main` parses and dispatches (`hubkit.cli.main`); each command lives in `hubkit.cli.commands`.
"""

from hubkit.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
