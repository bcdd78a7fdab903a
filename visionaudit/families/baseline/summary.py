"""The baseline family's lines in the run summary and the step summary: per model the verdict counts and its
lowest error-consistency kappa, then each change that is not ``unchanged`` with its interval."""

from __future__ import annotations

from collections import Counter
from typing import Any

from visionaudit.families.baseline.consistency import kappa_text
from visionaudit.families.baseline.statistics import VERDICTS
from visionaudit.formatting import first_few, fmt


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Per model: the verdict counts, then each change that is not ``unchanged`` with its interval."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for e in report["audits"]:
        if e["audit"] == "baseline" and "verdict" in e["metrics"]:
            by_model.setdefault(str(e["model"]), []).append(e)
    lines = []
    accepted = (report.get("run") or {}).get("baseline") or {}
    if by_model and accepted.get("accepted"):
        lines.append(f"baseline: {accepted.get('path')} has verdict {accepted.get('verdict')}, not pass; accepted "
                     "(--audit-accept-incomplete-baseline)")
    for model, entries in sorted(by_model.items()):
        m0 = entries[0]["metrics"]
        counts = Counter(e["metrics"]["verdict"] for e in entries)
        paired = ", UNPAIRED (two-proportion tests)" if any(e["metrics"].get("paired") is False for e in entries) else ""
        lines.append(f"baseline, {model} vs {m0.get('baseline_model')}{paired}: "
                     + ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: VERDICTS.index(kv[0])))
                     + _lowest_kappa(entries))
        for e in sorted(entries, key=lambda e: VERDICTS.index(e["metrics"]["verdict"])):
            m = e["metrics"]
            if m["verdict"] in ("regression", "warning", "improvement"):
                lines.append(f"  {e['params'].get('comparison')}: {_change_text(m)}: {m['verdict']}"
                             + ("; errors moved" if (m.get("error_consistency") or {}).get("below") else ""))
            not_compared = ((m.get("per_class") or {}).get("not_compared") or {}).get("count")
            if not_compared:
                lines.append(f"  {e['params'].get('comparison')}: {not_compared} classes not compared (fewer than "
                             f"{m['per_class']['min_images']} paired images)")
    return lines


def _lowest_kappa(entries: list[dict[str, Any]]) -> str:
    """``; error consistency: lowest judged kappa 0.62 [95% 0.55, 0.69] (clean_top1)`` over a model's comparisons,
    then the lowest recorded but not judged (a corruption condition's, a per-class comparison's) where it is lower:
    a bound names only what it judged (visionaudit/families/baseline/consistency.py)."""
    judged, recorded = [], []
    for e in entries:
        ec = e["metrics"].get("error_consistency") or {}
        if ec.get("kappa") is not None:
            # judge_consistency() writes "below" (a bound or None) into the comparisons it judged, and only those
            (judged if "below" in ec else recorded).append((ec, e["params"].get("comparison")))
    lowest = [min(group, key=lambda x: (x[0]["kappa"], str(x[1]))) if group else None for group in (judged, recorded)]
    text = f"; error consistency: lowest judged {kappa_text(lowest[0][0])} ({lowest[0][1]})" if lowest[0] else ""
    if lowest[1] and (lowest[0] is None or lowest[1][0]["kappa"] < lowest[0][0]["kappa"]):
        text += f"; lowest not judged {kappa_text(lowest[1][0])} ({lowest[1][1]})"
    return text


def _change_text(m: dict[str, Any]) -> str:
    """``0.879 -> 0.768, -0.111 [95% -0.13, -0.09], Holm p 1e-20`` (vectors: the largest change; per class: the
    classes significantly worse, worst first)."""
    per_class = m.get("per_class")
    if per_class is not None:
        worse = per_class.get("worse") or []
        if worse:
            return f"{len(worse)} of {per_class['compared']} classes significantly worse: " + first_few(
                [f"{w['class']} {fmt(w['baseline'])} -> {fmt(w['candidate'])}" for w in worse], 5, ", ")
        better = per_class.get("better") or []
        return f"{len(better)} of {per_class['compared']} classes significantly better: " + first_few(better, 5, ", ")
    if isinstance(m.get("delta"), list):
        return f"shares {fmt(m.get('baseline'))} -> {fmt(m.get('candidate'))}"
    ci = m.get("ci")
    delta = f"{m['delta']:+.4f}" if isinstance(m.get("delta"), (int, float)) else "n/a"
    # The interval is per comparison, the verdict Holm-adjusted: said, so that an interval excluding 0 beside a
    # "warning" does not read as a missed regression (hunt35 F10).
    interval = f"[95% {fmt(ci[0])}, {fmt(ci[1])}, unadjusted]" if ci else "(no interval)"  # balanced accuracy, small classes
    text = f"{fmt(m.get('baseline'))} -> {fmt(m.get('candidate'))}, {delta} {interval}"
    text += f", Holm p {m['p_value_holm']:.3g}" if isinstance(m.get("p_value_holm"), (int, float)) else ""
    return text + (f", {kappa_text(m['error_consistency'])}" if m.get("error_consistency") else "")
