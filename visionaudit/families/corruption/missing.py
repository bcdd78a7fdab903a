"""Why a model's corruption summary (``aggregates.corruption``) lacks a benchmark corruption: not scored at all
(deselected, not configured, its tests ended without a score), or scored at some of the run's severities only (a
condition crashed, timed out or was deselected: a hole, which the mCE cannot average over)."""

from __future__ import annotations

from typing import Any

from visionaudit.families.corruption.imagenet_c import BENCHMARK

NOT_CONFIGURED = "not in the configured corruptions"  # summarize()'s reason for a corruption nobody gave


def not_scored(model: str, entries: list[dict[str, Any]], errors: dict[str, Any], mce: dict[str, Any] | None) -> dict[str, str]:
    """Why each benchmark corruption has no scored condition of ``model`` in this report.

    The mCE test scores every configured corruption itself, so its reasons hold where it ran (not available, not
    configured); a corruption whose condition tests are not in the report at all was deselected (``-k``, a test
    path); one whose tests are there but scored nothing says how they ended."""
    outcomes: dict[str, set[str]] = {}
    messages: dict[str, list[str]] = {}
    for e in entries:
        if e["model"] == model and "corruption" in e["params"]:
            outcomes.setdefault(e["params"]["corruption"], set()).add(e.get("outcome", "passed"))
            messages.setdefault(e["params"]["corruption"], []).append(e.get("message") or "")
    mce_missing = (mce or {}).get("missing") or {}
    why = {}
    for c in BENCHMARK:
        if c in errors:
            continue
        if c in mce_missing and (mce_missing[c] != NOT_CONFIGURED or c not in outcomes):
            why[c] = mce_missing[c]
        elif c not in outcomes:
            why[c] = ("deselected: its tests were not collected in this run (-k, or the test paths given)" if mce is not None
                      else "not in this run's tests (deselected, e.g. by -k, or configured for no model)")
        elif outcomes[c] == {"skipped"} and all("is not configured for" in m for m in messages[c]):
            why[c] = f"not configured for {model}"
        else:
            why[c] = f"not measured (its tests ended {', '.join(sorted(outcomes[c]))})"
    return why


def holes(model: str, entries: list[dict[str, Any]], errors: dict[str, dict[int, float]]) -> dict[str, str]:
    """Benchmark corruptions of ``model`` scored at some of the run's severities but not all, with why: a condition
    whose test crashed, timed out or was deselected is a hole in that corruption, not a different severity set."""
    ran: dict[tuple[str, int], str] = {}  # (corruption, severity) -> how its test ended, for every collected condition
    for e in entries:
        if e["model"] == model and "corruption" in e["params"] and e["params"].get("severity") is not None:
            ran[(e["params"]["corruption"], int(e["params"]["severity"]))] = e.get("outcome", "passed")
    # A skipped condition is not configured (for this model): no hole.
    expected = {s for c in BENCHMARK if c in errors for s in errors[c]} | {
        s for (c, s), outcome in ran.items() if c in BENCHMARK and outcome != "skipped"}
    why = {}
    for c in BENCHMARK:
        lost = sorted(expected - set(errors.get(c) or {}))
        if not errors.get(c) or not lost:
            continue  # whole (or not scored at all: not_scored says why)
        said = [f"severity {s} not measured (its test ended {ran[(c, s)]})" if (c, s) in ran
                else f"severity {s} deselected (its test was not collected in this run)" for s in lost]
        why[c] = ", ".join(said)
    return why


def scope_differs(summary: dict[str, Any], gate: dict[str, Any] | None) -> bool:
    """Whether the summary (``aggregates.corruption``) and the gate (the mCE test, which scores every configured
    corruption itself) average different corruptions: a hole, or a corruption none of whose condition tests scored
    (crashed, timed out, deselected by ``-k``) while the mCE test scored it. Then their values, and the gate's
    intervals, belong to different sets under one name."""
    gated = ((gate or {}).get("metrics") or {}).get("corruptions")
    return gated is not None and set(summary.get("corruptions") or ()) != set(gated)


def summary_scope(key: str, summary: dict[str, Any], gaps: dict[str, str], gate: dict[str, Any] | None) -> str | None:
    """Where the summary left out a corruption the gate (the mCE test) averaged (:func:`scope_differs`): the two values
    of ``key`` (``mce``, or ``mean_error``) differ, under one name. This says which is which, beside the summary's; None
    where they average the same corruptions. ``gaps``: the corruptions with a hole (:func:`holes`)."""
    ours, gated = summary.get(key), ((gate or {}).get("metrics") or {}).get(key)
    if not scope_differs(summary, gate) or not isinstance(ours, (int, float)) or not isinstance(gated, (int, float)):
        return None
    scored = set(gate["metrics"]["corruptions"])
    left = sorted(scored - set(summary.get("corruptions") or ()))
    extra = sorted(set(summary.get("corruptions") or ()) - scored)  # defensive: no run is known to give one
    said = [f"{', '.join(cs)} {why}" for cs, why in (
        ([c for c in left if c in gaps], "left out: a hole"),
        ([c for c in left if c not in gaps], "left out: none of its condition tests scored"),
        (extra, "in it, not scored by the gate")) if cs]
    return (f"the summary's {key} {ours:.4g} averages the {len(summary.get('corruptions') or ())} corruption(s) whose "
            f"condition tests scored every severity ({'; '.join(said)}); the gated {key} is "
            f"{gate.get('nodeid') or 'the mCE test'}'s {gated:.4g}, over the {len(scored)} that test scored itself")
