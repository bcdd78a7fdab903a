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
    """One value as it is; several numbers as their range; anything else as the first and a count."""
    if len(values) == 1:
        return fmt(values[0])
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) == len(values):
        return f"{fmt(min(nums))}..{fmt(max(nums))}"
    if all(isinstance(v, str) for v in values):  # verdicts, modes: how many of each
        return ", ".join(f"{n} {v}" for v, n in Counter(values).most_common())
    return f"{fmt(values[0])} (+{len(values) - 1} more)"


def first_few(items: Sequence[str], limit: int = 10, sep: str = "; ") -> str:
    """The first ``limit`` items and how many more: a refusal naming many problems stays readable."""
    more = len(items) - limit
    return sep.join(items[:limit]) + (f"{sep}and {more:,} more" if more > 0 else "")
