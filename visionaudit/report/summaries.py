"""A report for people: one row per model and family (key metric, bound, verdict), then each
family's summary lines. The terminal and the GitHub step summary render the same rows."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from visionaudit.families.records import NOT_APPLIED
from visionaudit.families.registry import families
from visionaudit.formatting import fmt_values
from visionaudit.report.assembly import SEVERITY, first_reason
from visionaudit.selection import run_subset_text

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
        groups[(control or str(e["model"] or "-"), e["audit"])].append(e)  # "-": a test audits no model
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
        row = {
            "severity": SEVERITY[worst],
            "model": model,
            "audit": audit,
            "metric": f"{key}={fmt_values(values)}" if values else "-",
            # a not-judged row was held to no bound: said, not "-" beside the value it measured
            "bound": ", ".join(f"{k}={fmt_values(v)}" for k, v in sorted(bounds.items()))
                     or ("none (not judged)" if worst == "not_judged" else "-"),
            "verdict": VERDICTS[worst],
            "tests": tests_cell(entries),
        }
        if worst in ("not_judged", "skipped"):  # nothing judged to show: say why instead
            row["reason"] = row_reason([e for e in entries if e["outcome"] == worst])
        elif unapplied := not_applied(keyed):  # a configured bound that held the model to nothing: said, not passed
            row["bound"] += "".join(f", {k} not applied" for k in unapplied)
            row["reason"] = "; ".join(f"{k} not applied: {why}" for k, why in unapplied.items())
        rows.append(row)
    rows.sort(key=lambda r: (-r.pop("severity"), r["model"], r["audit"]))
    return rows


def not_applied(entries: list[dict[str, Any]]) -> dict[str, str]:
    """The configured bounds that did not apply to these entries (``min_top5`` on five classes or fewer), with why."""
    return {k: why for e in entries for k, why in (e["metrics"].get(NOT_APPLIED) or {}).items()}


def tests_cell(entries: list[dict[str, Any]]) -> str:
    """``5/6 passed, 1 skipped``: the passes out of all, then every other outcome by count, worst first
    (``3 skipped``, not ``0/3 passed``, which reads like three failures)."""
    counts = defaultdict(int)
    for e in entries:
        counts[e["outcome"]] += 1
    parts = [f"{counts.pop('passed')}/{len(entries)} passed"] if counts.get("passed") else []
    return ", ".join(parts + [f"{n} {o.replace('_', ' ')}" for o, n in sorted(counts.items(), key=lambda c: -SEVERITY[c[0]])])


def row_reason(entries: list[dict[str, Any]]) -> str:
    """Why a row's tests were not judged or skipped: the first reason, over how many tests it covers
    (``not judged (76 tests): 41 images; this gate needs at least 50 ...``), and how many others there are."""
    text, covered, others = first_reason(entries)
    outcome = entries[0]["outcome"].replace("_", " ")
    if not text:
        return f"{outcome} ({len(entries)} test{'s' if len(entries) > 1 else ''}): no reason given"
    tests = f"{covered} of {len(entries)} tests" if covered < len(entries) else f"{covered} test{'s' if covered > 1 else ''}"
    more = f"; {others} other reason{'s' if others > 1 else ''} in the report" if others else ""
    return f"{outcome} ({tests}): {text}{more}"


def reason_lines(rows: list[dict[str, str]]) -> list[str]:
    """A line per row that was not judged or skipped (:func:`row_reason`), or passed a bound that did not apply
    (:func:`not_applied`): its audit, model and why."""
    return [f"{r['audit']}, {r['model']}: {r['reason']}" for r in rows if r.get("reason")]


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
    if inc.get("stopped_by"):
        lines.append(f"stopped after {inc['stopped_by']['test']} failed: {inc['stopped_by']['reason']}")
    if inc["not_run"]:
        lines.append(f"not run: {len(inc['not_run'])} "
                     "test(s)" + (" (the run stopped)" if inc["interrupted"] or inc.get("stopped_by") else ""))
    return lines


def verdict_line(report: dict[str, Any]) -> str:
    counts = report["summary"]["by_outcome"]
    # A run stopped at startup (exit 4) has no outcome to count: say so rather than print empty parentheses.
    counted = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in sorted(counts.items())) or "no test ran"
    text = f"verdict: {report['verdict'].upper()} ({counted})"
    # a pass of 3 tests out of 412 is a pass of those 3: said beside the verdict, wherever it is read
    text += f"; {subset}" if (subset := run_subset_text(report)) else ""
    text += f"; not a pass: {report['verdict_reason']}" if report.get("verdict_reason") else ""
    return text + (f"; stopped at startup: {report['error']}" if report.get("error") else "")


def terminal_lines(report: dict[str, Any], verbose: bool = False) -> list[str]:
    """The summary table (``verbose``: every control on its own row), why a row was not judged or skipped,
    family lines, what did not finish."""
    rows = summary_rows(report["audits"], fold_controls=not verbose)
    table = text_table(rows) if rows else []
    return table + reason_lines(rows) + family_lines(report) + incomplete_lines(report) + [verdict_line(report)]


def markdown_text(text: str) -> str:
    """``text`` shown as it is in GitHub's Markdown: its punctuation escaped (``<file>`` is otherwise dropped as
    an HTML tag, ``*`` and ``_`` read as emphasis). An underscore inside a word (``clean_top1``) is no
    emphasis in GitHub's Markdown and stays as it is."""
    text = re.sub(r"([\\`*{}\[\]<>|#])", r"\\\1", text)
    return re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)


def markdown_summary(report: dict[str, Any]) -> str:
    """The GitHub step summary: the summary table, reason, family and incomplete lines, the run's notes, the verdict
    in bold on one line, and a startup error's message as plain lines after it."""
    rows = summary_rows(report["audits"])
    lines = ["## visionaudit", ""]
    if rows:
        lines += ["| model | audit | key metric | bound | verdict | tests |", "|---|---|---|---|---|---|"]
        lines += [f"| `{r['model']}` | {markdown_text(str(r['audit']))} | {markdown_text(str(r['metric']))} | "
                  f"{markdown_text(str(r['bound']))} | **{r['verdict']}** | {r['tests']} |" for r in rows]
    # The run's notes too: the terminal prints them (plugins/run_notes.py); a CI page must say them as well (an
    # hf: model's assumed preprocessing is one).
    notes = [f"note: {n}" for n in (report.get("run") or {}).get("notes") or ()]
    extra = reason_lines(rows) + family_lines(report) + incomplete_lines(report) + notes
    if extra:
        lines += [""] + [f"- {markdown_text(line)}" for line in extra]
    lines += ["", f"**{markdown_text(verdict_line({**report, 'error': None}))}**"]
    if report.get("error"):
        error = [line.strip() for line in str(report["error"]).splitlines() if line.strip()]
        lines += ["", f"Stopped at startup: {markdown_text(error[0])}"] + [f"- {markdown_text(line)}" for line in error[1:]]
    return "\n".join(lines) + "\n\n"
