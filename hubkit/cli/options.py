"""Command-line options built from the library's own dataclasses and registries (defaults live there)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from enum import Enum

__all__ = ["add_dataclass_options", "dataclass_from_args"]


def _type_of(f: dataclasses.Field, owner) -> type:
    hint = typing.get_type_hints(owner)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    hint = args[0] if args else hint
    return str if isinstance(hint, type) and issubclass(hint, Enum) else hint


def add_dataclass_options(parser: argparse.ArgumentParser, owner) -> None:
    """One option per field of ``owner`` whose metadata names a ``flag``; default and help from the field."""
    for f in owner.cli_fields():
        default = f.default.value if isinstance(f.default, Enum) else f.default
        kind = _type_of(f, owner)
        help_text = f.metadata["help"] + (f" (default: {default})" if default is not None else "")
        if kind is bool:
            parser.add_argument(f.metadata["flag"], dest=f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)
        else:
            parser.add_argument(f.metadata["flag"], dest=f.name, type=kind, default=default,
                                choices=f.metadata.get("choices"), help=help_text)


def dataclass_from_args(owner, args: argparse.Namespace, **extra):
    """An ``owner`` from the parsed options `add_dataclass_options` added (plus ``extra`` fields)."""
    values = {f.name: getattr(args, f.name) for f in owner.cli_fields()}
    return owner(**values, **extra)
