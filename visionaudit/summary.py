"""A report for people: one row per model and family (key metric, bound, verdict), then each
family's summary lines. The terminal and the GitHub step summary render the same rows."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .families import families
from .formatting import fmt_values
from .report import OUTCOME_RANK

VERDICTS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}
COLUMNS = ["model", "audit", "metric", "bound", "verdict", "tests"]


def summary_rows(audits: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per (model, family): verdict, the key metric over its tests, and the bounds it was held to."""
    known = families()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in audits:
        groups[(str(e["model"]), e["audit"])].append(e)
    rows = []
    for (model, audit), entries in sorted(groups.items()):
        worst = max(entries, key=lambda e: OUTCOME_RANK[e["outcome"]])["outcome"]
        key = known[audit].key_metric if audit in known else None
        values = [e["metrics"][key] for e in entries if key and key in e["metrics"]]
        # The bounds the key metric was held to (other tests of the family hold other metrics).
        keyed = [e for e in entries if key and key in e["metrics"]] or entries
        bounds: dict[str, list[Any]] = defaultdict(list)
        for e in keyed:
            for k, v in e["thresholds"].items():
                if v not in bounds[k]:
                    bounds[k].append(v)
        passed = sum(e["outcome"] == "passed" for e in entries)
        rows.append({
            "model": model,
            "audit": audit,
            "metric": f"{key}={fmt_values(values)}" if values else "-",
            "bound": ", ".join(f"{k}={fmt_values(v)}" for k, v in sorted(bounds.items())) or "-",
            "verdict": VERDICTS[worst],
            "tests": f"{passed}/{len(entries)} passed",
        })
    return rows


def text_table(rows: list[dict[str, str]], cols: list[str] = COLUMNS) -> list[str]:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return lines


def family_lines(report: dict[str, Any]) -> list[str]:
    """Every family's summary lines (zoo tables, Holm results, published references)."""
    lines: list[str] = []
    for family in families().values():
        if family.summary_lines is not None:
            lines += family.summary_lines(report)
    return lines


def incomplete_lines(report: dict[str, Any]) -> list[str]:
    inc = report["incomplete"]
    lines = []
    if inc["crashed"]:
        lines.append(f"crashed (worker died): {', '.join(inc['crashed'])}")
    if inc["not_run"]:
        lines.append(f"not run: {len(inc['not_run'])} test(s)" + (" (interrupted)" if inc["interrupted"] else ""))
    return lines


def terminal_lines(report: dict[str, Any]) -> list[str]:
    return text_table(summary_rows(report["audits"])) + family_lines(report) + incomplete_lines(report)


def markdown_summary(report: dict[str, Any]) -> str:
    rows = summary_rows(report["audits"])
    lines = ["## visionaudit", "", "| model | audit | key metric | bound | verdict | tests |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['model']}` | {r['audit']} | {r['metric']} | {r['bound']} | **{r['verdict']}** | {r['tests']} |" for r in rows]
    extra = family_lines(report)
    if extra:
        lines += [""] + [f"- {line}" for line in extra]
    inc = report["incomplete"]
    if inc["interrupted"] or inc["crashed"] or inc["not_run"]:
        lines += ["", f"Incomplete: interrupted={inc['interrupted']}, crashed={len(inc['crashed'])}, not run={len(inc['not_run'])}"]
    return "\n".join(lines) + "\n\n"
