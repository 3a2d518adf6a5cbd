"""Typed, range-checked dataclass fields: the schema behind model cards and training configs.

A field declares its type with its annotation and its range with `spec`::

    @dataclass
    class Card:
        scale: float = spec(1.0, low=1, high=64)
        mean: tuple[float, float, float] = spec((0.5, 0.5, 0.5), low=0, high=1)

`problems` checks an instance against both and returns one sentence per bad field, naming the
field and what it takes (``"scale must be a finite number, got '2'"``), so the caller can prefix
the file. Types are strict, as JSON and YAML give them: no string is read as a number, no bool as
an integer, and NaN or infinity is not a number; a list passes for a tuple (JSON has no tuples).
Number rules of a sequence apply to each item.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Iterable, Optional, Union

__all__ = ["Spec", "spec", "problems", "fingerprint", "PLAIN_NAME"]

#: Rules of a field that becomes a file name: one path component (no separator, not ``.`` or
#: ``..``, no control characters), so untrusted cards and configs cannot point outside a folder.
PLAIN_NAME = {"pattern": r"(?!\.\.?\Z)[^/\\\x00-\x1f]*",
              "pattern_help": "a plain file name (no folders, no '..', no control characters)"}


@dataclass(frozen=True)
class Spec:
    """The range of one field (see `spec`)."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    multiple_of: Optional[int] = None
    choices: tuple = ()
    pattern: Optional[str] = None
    pattern_help: str = ""
    nonempty: bool = False


def spec(default: Any = MISSING, *, default_factory: Any = MISSING, help: str = "", **rules: Any) -> Any:
    """A dataclass field with a `Spec`.

    Args:
        default, default_factory: as `dataclasses.field`.
        help: what the field is (kept in the field's metadata).
        rules: `Spec` attributes: ``low``/``high`` (inclusive unless ``low_open``/``high_open``),
            ``multiple_of``, ``choices``, ``pattern`` (a full-match regex for strings, described
            by ``pattern_help``), ``nonempty``.
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"spec": Spec(**rules), "help": help})


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + (" or null" if len(inner) < len(args) else "")
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {_plural(args[0])}" if args else "a list"
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string",
            dict: "a mapping of names to values"}.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp: Any) -> str:
    return {int: "whole numbers", float: "finite numbers", str: "strings"}.get(tp, _describe(tp))


def _type_ok(value: Any, tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if tp is type(None):
        return value is None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args))
        return not args or all(_type_ok(v, args[0]) for v in value)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is dict or origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return isinstance(value, tp)


def _range_problem(value: Any, rule: Spec) -> Optional[str]:
    """What is wrong with a well-typed value (each item of a sequence), or None."""
    if isinstance(value, (list, tuple)):
        return next((p for p in (_range_problem(v, rule) for v in value) if p), None)
    if isinstance(value, str):
        if rule.nonempty and not value:
            return "must not be empty"
        if rule.choices and value not in rule.choices:
            return f"must be one of {', '.join(map(str, rule.choices))}"
        if rule.pattern is not None and not re.fullmatch(rule.pattern, value):
            return f"must be {rule.pattern_help or 'of the form ' + rule.pattern}"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    low_bad = rule.low is not None and (value <= rule.low if rule.low_open else value < rule.low)
    high_bad = rule.high is not None and (value >= rule.high if rule.high_open else value > rule.high)
    if low_bad or high_bad:
        lo = "-inf" if rule.low is None else f"{rule.low:g}"
        hi = "inf" if rule.high is None else f"{rule.high:g}"
        return f"must be in {'(' if rule.low_open else '['}{lo}, {hi}{')' if rule.high_open else ']'}"
    if rule.multiple_of and value % rule.multiple_of:
        return f"must be a multiple of {rule.multiple_of}"
    return None


def problems(obj: Any) -> list[str]:
    """One sentence per field of dataclass ``obj`` whose value breaks its type or `Spec`."""
    hints = typing.get_type_hints(type(obj))
    found = []
    for f in dataclasses.fields(obj):
        value, tp = getattr(obj, f.name), hints[f.name]
        if not _type_ok(value, tp):
            found.append(f"{f.name} must be {_describe(tp)}, got {_show(value)}")
            continue
        rule = f.metadata.get("spec")
        problem = rule and _range_problem(value, rule)
        if problem:
            found.append(f"{f.name} {problem}, got {_show(value)}")
    return found


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fingerprint(obj: Any, skip: Iterable[str] = ()) -> str:
    """sha256 of a dataclass's fields but ``skip`` (those that do not change a result: where or
    how fast it runs), to tell whether two runs' settings agree."""
    doc = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in set(skip)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
