"""A report for people: one row per model and family (key metric, bound, verdict), then each
family's summary lines. The terminal and the GitHub step summary render the same rows."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from visionaudit.families.registry import families
from visionaudit.formatting import fmt_values
from visionaudit.report.assembly import SEVERITY

VERDICTS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP", "not_judged": "NOT JUDGED",
            "interrupted": "INTERRUPTED", "crashed": "CRASHED", "timeout": "TIMEOUT", "not_run": "NOT RUN"}
COLUMNS = ["model", "audit", "metric", "bound", "verdict", "tests"]


def summary_rows(audits: list[dict[str, Any]], fold_controls: bool = True) -> list[dict[str, str]]:
    """One row per (model, family), failures first: verdict, the key metric over its tests, and the
    bounds it was held to. Random-init controls fold into one row per control group and family."""
    known = families()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in audits:
        if e["audit"] is None:
            continue  # a test outside every family: pytest's own output shows it; the counts hold it
        control = e.get("control") if fold_controls else None
        groups[(control or str(e["model"]), e["audit"])].append(e)
    rows = []
    for (model, audit), entries in groups.items():
        worst = max(entries, key=lambda e: SEVERITY[e["outcome"]])["outcome"]
        if entries[0].get("control") and fold_controls:
            model = f"{len({e['model'] for e in entries})} {model}"
        key = known[audit].key_metric if audit in known else None
        if key and not any(key in e["metrics"] for e in entries):  # e.g. the mean error of a model with no mCE
            key = next((k for k in known[audit].alt_key_metrics if any(k in e["metrics"] for e in entries)), key)
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
            "severity": SEVERITY[worst],
            "model": model,
            "audit": audit,
            "metric": f"{key}={fmt_values(values)}" if values else "-",
            "bound": ", ".join(f"{k}={fmt_values(v)}" for k, v in sorted(bounds.items())) or "-",
            "verdict": VERDICTS[worst],
            "tests": f"{passed}/{len(entries)} passed",
        })
    rows.sort(key=lambda r: (-r.pop("severity"), r["model"], r["audit"]))
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
    if inc["timeout"]:
        lines.append(f"timeout (stopped at the time limit): {', '.join(inc['timeout'])}")
    if inc["interrupted_tests"]:
        lines.append(f"interrupted while running: {', '.join(inc['interrupted_tests'])}")
    if inc["not_run"]:
        lines.append(f"not run: {len(inc['not_run'])} test(s)" + (" (the run stopped)" if inc["interrupted"] else ""))
    return lines


def verdict_line(report: dict[str, Any]) -> str:
    counts = report["summary"]["by_outcome"]
    text = f"verdict: {report['verdict'].upper()} (" + ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in sorted(counts.items())) + ")"
    return text + (f"; stopped at startup: {report['error']}" if report.get("error") else "")


def terminal_lines(report: dict[str, Any], verbose: bool = False) -> list[str]:
    """The summary table (``verbose``: every control on its own row), family lines, what did not finish."""
    rows = summary_rows(report["audits"], fold_controls=not verbose)
    table = text_table(rows) if rows else []
    return table + family_lines(report) + incomplete_lines(report) + [verdict_line(report)]


def markdown_summary(report: dict[str, Any]) -> str:
    rows = summary_rows(report["audits"])
    lines = ["## visionaudit", "", "| model | audit | key metric | bound | verdict | tests |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['model']}` | {r['audit']} | {r['metric']} | {r['bound']} | **{r['verdict']}** | {r['tests']} |" for r in rows]
    extra = family_lines(report)
    if extra:
        lines += [""] + [f"- {line}" for line in extra]
    extra = incomplete_lines(report)
    lines += [""] + [f"- {line}" for line in extra] if extra else []
    lines += ["", f"**{verdict_line(report)}**"]
    return "\n".join(lines) + "\n\n"
