"""Threshold fields: the type, range, allowed values and default of one key of an audit.toml table.

A family declares its bounds as ``{key: Field}`` (see :mod:`visionaudit.families`); the config check
reads them, so a typo in a key, a nested key (a transform or deployment form) or an enumerated value is
an error naming the closest allowed one instead of a silently looser gate. A field's ``default`` is the
bound that applies when audit.toml does not set the key: the family's defaults live beside its schema,
and audit.toml holds only overrides.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

from visionaudit.errors import closest, unknown_name

# A family's bounds for a model (canonical spec): how the core's checks take visionaudit.config.AuditConfig.thresholds.
Bounds = Callable[[str, str], Mapping[str, Any]]

KINDS = ("number", "int", "str", "bool", "list[str]", "list[number]", "list[int]", "map[number]", "map[str]")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Field:
    """One threshold key. ``choices``: the allowed values of a str, the allowed items of a list[str],
    the allowed keys of a map[number], or the words an int also takes ("auto"). Ranges apply to numbers, list
    items and map values; a list[str]'s ``minimum`` is its least length, a str's a least length of 1 (not blank).
    ``default``: the value when audit.toml does not set the key (None: none, the key must be set).
    ``changes_no_result``: a setting of how fast, not of what is measured or judged (no pixel, number or outcome
    moves with it), so shards run with different values of it are one run (``visionaudit merge``)."""

    kind: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str, ...] | None = None
    default: Any = None
    changes_no_result: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.default is not None and (problem := self.problem(self.default)):
            raise ValueError(f"default {self.default!r} {problem}")

    @property
    def has_default(self) -> bool:
        return self.default is not None

    def default_value(self) -> Any:
        """A copy of the default: a table or list handed out must not change the schema's."""
        return copy.deepcopy(self.default)

    def with_default(self, default: Any) -> "Field":
        """This field with ``default`` (checked against the field's type and range)."""
        return replace(self, default=default)

    @property
    def range_text(self) -> str:
        if self.minimum is None and self.maximum is None:
            return ""
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        return (f"{'(' if self.exclusive_minimum or self.minimum is None else '['}{lo}, "
                f"{hi}{')' if self.exclusive_maximum or self.maximum is None else ']'}")

    def describe(self) -> str:
        text = self.kind
        if self.kind in ("str", "list[str]"):  # a minimum is a least length here: not blank, not empty
            text += ", not empty" if self.minimum else ""
        elif self.range_text:
            text += f" in {self.range_text}"
        if self.choices is not None:
            said = {"map[number]": "keys", "map[str]": "values", "int": "or"}.get(self.kind, "one of")
            text += f" ({said}: {', '.join(self.choices)})"
        return text

    def _in_range(self, v: float) -> bool:
        if self.minimum is not None and (v < self.minimum or (self.exclusive_minimum and v == self.minimum)):
            return False
        if self.maximum is not None and (v > self.maximum or (self.exclusive_maximum and v == self.maximum)):
            return False
        return True

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this field, in words, or None when it is fine."""
        wrong_type = f"has the wrong type; it must be {self.describe()}"
        if self.kind == "int" and self.choices is not None and isinstance(value, str):  # a word it also takes
            if value in self.choices:
                return None
            near = closest(value, self.choices)
            return (f"is neither a whole number in {self.range_text} nor {' nor '.join(repr(c) for c in self.choices)}"
                    + (f"; did you mean {near!r}?" if near else ""))
        if self.kind in ("number", "int"):
            if not _is_number(value) or (self.kind == "int" and not isinstance(value, int)):
                return wrong_type
            words = "".join(f" or {c!r}" for c in self.choices or ())  # an int's words ("auto")
            return None if self._in_range(value) else f"is out of range; it must be in {self.range_text}{words}"
        if self.kind == "str":
            if not isinstance(value, str):
                return wrong_type
            if self.choices is not None and value not in self.choices:
                return unknown_name("value", value, self.choices)
            # [run]'s texts (a path, a size) left empty would read as not given: the default, without a word.
            return "is empty; give a value or leave the key out" if self.minimum and not value.strip() else None
        if self.kind == "bool":
            return None if isinstance(value, bool) else wrong_type
        if self.kind == "list[str]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return wrong_type
            if self.minimum is not None and len(value) < self.minimum:  # [run] models = []: the default model, unsaid
                return "is empty; give at least one or leave the key out" if not value else f"holds fewer than {self.minimum:g}"
            bad = [v for v in value if self.choices is not None and v not in self.choices]
            return unknown_name("item", bad[0], self.choices or ()) if bad else None
        if self.kind in ("list[number]", "list[int]"):
            if not isinstance(value, list) or not all(_is_number(v) for v in value):
                return wrong_type
            if not value:
                return "is empty; give at least one value"
            # list[int]: 3.0 is the level 3 (as TOML may spell it); 2.5 is no level, refused here rather than at collection
            fractional = [v for v in value if self.kind == "list[int]" and not float(v).is_integer()]
            if fractional:
                return f"holds {fractional[0]!r}, not a whole number; each must be a whole number in {self.range_text}"
            bad = [v for v in value if not self._in_range(v)]
            return f"holds {bad[0]!r}, out of range; each must be in {self.range_text}" if bad else None
        if not isinstance(value, dict):
            return wrong_type
        if self.kind == "map[str]":
            for key, v in value.items():
                if not isinstance(v, str):
                    return f"has {key} = {v!r}; values must be strings"
                if self.choices is not None and v not in self.choices:
                    return f"has {key} = " + unknown_name("value", v, self.choices)
            return None
        # map[number]
        for key, v in value.items():
            if self.choices is not None and key not in self.choices:
                return unknown_name("key", key, self.choices)
            if not _is_number(v):
                return f"has {key} = {v!r}; values must be numbers"
            if not self._in_range(v):
                return f"has {key} = {v!r}, out of range; values must be in {self.range_text}"
        return None


# -- the shapes families use ----------------------------------------------------------------------


def number(help: str = "", minimum: float | None = None, maximum: float | None = None, default: Any = None) -> Field:
    return Field("number", help, minimum, maximum, default=default)


def fraction(help: str = "", default: Any = None) -> Field:
    """A proportion: accuracies, drops, shares, agreements, in [0, 1]."""
    return Field("number", help, 0.0, 1.0, default=default)


def signed_fraction(help: str = "", default: Any = None) -> Field:
    """A difference of proportions, in [-1, 1] (a drop bound may allow improvements)."""
    return Field("number", help, -1.0, 1.0, default=default)


def level(help: str = "", default: Any = None) -> Field:
    """A significance level alpha, in the open interval (0, 1)."""
    return Field("number", help, 0.0, 1.0, exclusive_minimum=True, exclusive_maximum=True, default=default)


def nonnegative(help: str = "", default: Any = None) -> Field:
    return Field("number", help, 0.0, None, default=default)


def whole(help: str = "", default: Any = None) -> Field:
    """A whole number that may be 0 (extra random inputs, say)."""
    return Field("int", help, 0, None, default=default)


def count(help: str = "", default: Any = None) -> Field:
    """A whole number of images, resamples, ...: at least 1."""
    return Field("int", help, 1, None, default=default)


def whole_or(words: Iterable[str], help: str = "", minimum: int = 0, maximum: int | None = None, default: Any = None,
             changes_no_result: bool = False) -> Field:
    """A whole number in [minimum, maximum], or one of ``words`` (``"auto"``: the code's own choice)."""
    return Field("int", help, minimum, maximum, choices=tuple(words), default=default, changes_no_result=changes_no_result)


def min_images(what: str = "images", default: Any = None) -> Field:
    """The smallest sample a gate is judged on; fewer and the test ends as not_judged."""
    return Field("int", f"fewer {what} than this and the gate is not judged (outcome not_judged): a handful says nothing", 1,
                 None,
                 default=default)


def choice(choices: Iterable[str], help: str = "", default: Any = None) -> Field:
    return Field("str", help, choices=tuple(choices), default=default)


def names(choices: Iterable[str], help: str = "", default: Any = None) -> Field:
    """A list of names, each one of ``choices`` (transforms, deployment forms)."""
    return Field("list[str]", help, choices=tuple(choices), default=default)


def per_name(choices: Iterable[str], value: Field, help: str = "", default: Any = None) -> Field:
    """A table ``{name: number}`` whose keys are ``choices`` and whose values obey ``value``'s range."""
    return Field("map[number]", help, value.minimum, value.maximum, value.exclusive_minimum, value.exclusive_maximum,
                 tuple(choices), default)


def numbers(help: str = "", minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False,
            default: Any = None) -> Field:
    return Field("list[number]", help, minimum, maximum, exclusive_minimum, default=default)


def wholes(help: str = "", minimum: int | None = None, maximum: int | None = None, default: Any = None) -> Field:
    """A list of whole numbers in [minimum, maximum] (levels: ImageNet-C's severities)."""
    return Field("list[int]", help, minimum, maximum, default=default)


def flag(help: str = "", default: Any = None) -> Field:
    """True or false."""
    return Field("bool", help, default=default)


def text_map(choices: Iterable[str], help: str = "", default: Any = None) -> Field:
    """A table ``{name: text}`` whose keys are free (class names) and whose values are ``choices``."""
    return Field("map[str]", help, choices=tuple(choices), default=default)
