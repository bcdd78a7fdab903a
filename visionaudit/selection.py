"""A run of a subset of the collected tests (``-k``, ``-m``, ``--lf``, ``--deselect``, ``--sw``): the report's
``run.selection`` (how many tests were selected, how many deselected, by what), and the one sentence every reader of a
verdict shows beside it (the terminal's verdict line, the step summary, the HTML header, ``compare``).

A subset's verdict may be pass: it judged what it ran, and nothing passes on nothing (a model that the selection left no
test is not a pass: assembly.unselected_models). But it judged those tests only, so it says so wherever the verdict is
read: "3 passed" out of 412 must not read as the whole gate. Deselections the suite makes itself (the baseline tests
without ``--audit-baseline``, shards 2..N's tests that run whole in shard 1) are not the user's selection: not counted.
"""

from __future__ import annotations

import shlex
from typing import Any, Mapping, Sequence


def selection_record(selected: int, deselected: int, by: Sequence[str], last_failed: int = 0,
                     by_path: bool = False) -> dict[str, Any]:
    """``run.selection``: ``selected`` tests ran (were collected and kept), ``deselected`` were dropped by ``by`` (the
    options given, as typed); ``last_failed``: the last run's failures ``--lf`` reran (pytest leaves the tests that passed
    then uncollected, mostly without a deselection: how many there were is not known); ``by_path``: ``by`` also names
    paths inside audits/ or node ids (``audits/test_accuracy.py``), which narrow what is collected: no whole is known."""
    return {"selected": int(selected), "deselected": int(deselected), "by": list(by),
            **({"last_failed": int(last_failed)} if last_failed else {}), **({"by_path": True} if by_path else {})}


def selection_options(option: Any) -> list[str]:
    """What selected the tests, from pytest's ``config.option``, as a person types it: ``-k zoom``, ``-m 'not slow'``,
    ``--lf``, ``--deselect ID``, ``--sw``."""
    by = []
    if getattr(option, "keyword", ""):
        by.append(f"-k {shlex.quote(option.keyword)}")
    if getattr(option, "markexpr", ""):
        by.append(f"-m {shlex.quote(option.markexpr)}")
    if getattr(option, "lf", False):
        by.append("--lf")
    by += [f"--deselect {shlex.quote(str(d))}" for d in getattr(option, "deselect", None) or ()]
    if getattr(option, "stepwise", False):
        by.append("--sw")
    return by


def is_subset(selection: Mapping[str, Any] | None) -> bool:
    return bool(selection) and bool(selection.get("deselected") or selection.get("last_failed")
                                    or selection.get("by_path"))


def selected_text(selection: Mapping[str, Any] | None) -> str | None:
    """"3 of 412 tests selected by -k zoom" (the HTML header's "Selection"), or None for a run of every collected test
    (or a report from before schema 8, which does not say)."""
    if not is_subset(selection):
        return None
    n, m = int(selection.get("selected") or 0), int(selection.get("deselected") or 0)
    paths = bool(selection.get("by_path"))
    by = ", ".join(b if b.startswith("-") or not paths else f"the path {b}" for b in selection.get("by") or []) \
        or "a plugin's deselection"
    if selection.get("last_failed"):  # the tests --lf left uncollected are not counted: no "of N" to give
        return (f"{n} test(s) selected by {by} (the last run's {selection['last_failed']} failure(s); the tests that "
                "passed then were not collected)")
    if paths:  # the other files were never collected: no "of N" to give
        return f"{n} test(s) selected by {by} (the other audit files were not collected)"
    return f"{n} of {n + m} tests selected by {by}"


def subset_text(selection: Mapping[str, Any] | None) -> str | None:
    """"a subset: 3 of 412 tests selected by -k zoom", or None for a run of every collected test."""
    said = selected_text(selection)
    return f"a subset: {said}" if said else None


def run_subset_text(report: Mapping[str, Any]) -> str | None:
    return subset_text((report.get("run") or {}).get("selection"))


def merged_selection(runs: Sequence[Mapping[str, Any]], names: Sequence[str], selected: int) -> tuple[dict | None, list[str]]:
    """The merged report's selection: ``selected`` tests (the merge's entries) of shard 1's total (shard 1 collects every
    test; shards 2..N deselect the whole-run tests themselves, not counted), by every part's options; and a note when the
    parts were selected differently (merge already refuses a split test some shard lacks). None: shard 1 recorded none
    (a report before schema 8), so the whole is not known."""
    selections = [r.get("selection") for r in runs]
    if all(s is None for s in selections):
        return None, []
    said = {n: "not recorded" if s is None else ", ".join(s.get("by") or []) or "none" for s, n in zip(selections, names)}
    first = selections[0]
    if first is None:  # no total to count against: a merge that claimed "deselected 0" would read as the whole gate
        return None, [f"shard 1 ({names[0]}) does not record its selection (a report before schema 8): whether the merge "
                      "is a subset is not known (" + "; ".join(f"{n}: {b}" for n, b in said.items()) + ")"]
    total = int(first.get("selected") or 0) + int(first.get("deselected") or 0)
    by = list(dict.fromkeys(b for s in selections if s for b in s.get("by") or []))
    record = selection_record(selected, max(0, total - selected), by,
                              max(int((s or {}).get("last_failed") or 0) for s in selections),
                              any((s or {}).get("by_path") for s in selections))
    notes = []
    if len(set(said.values())) > 1:
        notes.append("the parts were selected differently (" + "; ".join(f"{n}: {b}" for n, b in said.items())
                     + "); run.selection counts the merged tests against shard 1's")
    return record, notes
