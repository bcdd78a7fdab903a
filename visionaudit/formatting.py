"""Numbers for people: short, stable renderings shared by the terminal, the step summary and the CLI."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence


def fmt(v: Any) -> str:
    if v is None:
        return "n/a"  # the report's null: NaN or undefined
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def fmt_values(values: list[Any]) -> str:
    """One value as it is; several numbers as their range; anything else as the first and how many more."""
    if len(values) == 1:
        return fmt(values[0])
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) == len(values):
        return f"{fmt(min(nums))}..{fmt(max(nums))}"
    if all(isinstance(v, str) for v in values):  # verdicts, modes: how many of each
        return ", ".join(f"{n} {v}" for v, n in Counter(values).most_common())
    return first_few([fmt(v) for v in values], 1, " ")  # one shown: "[0.33, 0.34, 0.33] and 17 more"


def first_few(items: Sequence[str], limit: int = 10, sep: str = "; ", total: int | None = None) -> str:
    """The first ``limit`` items and how many more (of ``total``, where ``items`` holds only the first of them): the
    one way a long list is cut for a person, so a refusal naming many problems stays readable."""
    shown = items[:limit]
    more = (len(items) if total is None else total) - len(shown)
    return sep.join(shown) + (f"{sep}and {more:,} more" if more > 0 else "")
