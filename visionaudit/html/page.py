"""The report for people: one self-contained HTML file (inline SVG figures, small inline JPEGs, no
script, no network: a Content-Security-Policy forbids every external load), rendered from the JSON report.

``render(report)`` needs Jinja2 and matplotlib (the ``html`` extra). The page holds the models, the verdict
per model and family, one section per family the report holds (built as its descriptor's ``html_section``
names, visionaudit/html/sections.py: shape bias per category and against clean accuracy, channel shares,
robustness drops with what the model saw, ImageNet-C errors, conversion and deployment differences on a
log axis, baseline deltas; a generic table for a family that names none), and every test that did not
pass in plain words.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from visionaudit.errors import DataError
from visionaudit.families.records import audited_models, control_models
from visionaudit.families.registry import Family, families
from visionaudit.formatting import first_few
from visionaudit.html import figure_data as data
from visionaudit.html import sections
from visionaudit.html.sections import SectionInputs
from visionaudit.report.summaries import VERDICTS, family_lines, summary_rows
from visionaudit.selection import run_subset_text, selected_text

PLAIN = {
    "failed": "a gate failed: the measured value is outside its bound",
    "error": "it could not run as it should (bad input, a fixture that failed, or a bug): see the message",
    "skipped": "skipped, as the message says",
    "not_judged": "not judged: too little data, or this run could not measure it; the verdict is incomplete",
    "interrupted": "it was running when the run stopped",
    "crashed": "its worker process died (killed, out of memory, or a crash in native code)",
    "timeout": "it passed its time limit and was stopped",
    "not_run": "it never started (the run stopped first)",
}


def human_per_category(paths: Sequence[str | Path]) -> dict[str, float] | None:
    """Mean per-category shape bias over decision CSVs (one per observer, the authors' raw-data format)."""
    from visionaudit.families.shape_bias.decisions_csv import shape_bias_from_csv

    if not paths:
        return None
    per: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        for category, row in shape_bias_from_csv(path).per_category.items():
            if row["shape_bias"] == row["shape_bias"]:
                per[category].append(row["shape_bias"])
    return {c: sum(v) / len(v) for c, v in per.items() if v}


def _builder(family: Family) -> Callable[[SectionInputs], dict | None] | None:
    """The callable a family's ``html_section`` names (None: the generic section)."""
    named = family.html_section
    if named is None or callable(named):
        return named
    module, _, attribute = named.partition(":")
    if not module or not attribute:
        raise DataError(f"the {family.name} family's html_section {named!r} must name a function as 'module:function'")
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _sections(report: dict[str, Any], references: dict[str, float] | None, strips: dict[str, Any] | None,
              comparison: dict[str, Any] | None = None, images: Any = None) -> list[dict]:
    """One section per family, in the registry's order, as its descriptor's ``html_section`` builds it;
    families naming the same builder share one section; a family that names none, or that the report holds
    but no installed package registers, gets the generic section. A section that fails to build leaves a
    note in its place: it never costs the page."""
    from visionaudit.html import figures

    page = SectionInputs(report, references, strips, comparison, figures.styles(audited_models(report)), images)
    known = families()
    unregistered = sorted({e.get("audit") for e in report.get("audits", []) if e.get("audit") and e.get("audit") not in known})
    out, built = [], []
    for name in [*known, *unregistered]:
        try:
            builder = _builder(known[name]) if name in known else None
            if builder is not None and any(builder is b for b in built):
                continue
            built.append(builder)
            section = builder(page) if builder is not None else sections.generic(page, name)
        except Exception as e:  # noqa: BLE001
            section = {"id": name, "title": name,
                       "text": f"section not drawn ({type(e).__name__}: {str(e)[:200]}); the JSON holds the numbers"}
        if section:
            out.append({"id": name, "title": name, "figures": [], **section})
    return out


def how_it_stopped(report: dict[str, Any]) -> list[tuple[str, str]]:
    """What the header says beside the verdict about a run that did not end by itself (a run stopped at startup and
    one stopped by -x/--maxfail say so in their own lines), and about a shard's partial report: as the terminal says
    them, so that a page whose verdict counts nothing as failed does not read as a finished run."""
    inc, lines = report.get("incomplete") or {}, []
    if inc.get("interrupted") and not inc.get("stopped_by") and not report.get("error"):
        running, not_run = inc.get("interrupted_tests") or [], inc.get("not_run") or []
        lines.append(("Interrupted", "the run was stopped before it finished (Ctrl-C, SIGTERM, or killed and its report "
                      f"rebuilt from the journal): {len(running)} test(s) were running"
                      + (f" ({first_few(running, 3)})" if running else "")
                      + f" and {len(not_run)} never started; they judged nothing"))
    if said := selected_text((report.get("run") or {}).get("selection")):  # "3 passed" of 412 must not read as the gate
        lines.append(("Selection", f"{said}; its verdict judges those tests only"))
    shard = (report.get("run") or {}).get("shard")
    if shard and shard.get("count") == 1:  # every image in a part's form: its verdicts are the run's
        lines.append(("Shard 1/1", "this is the report of --audit-shard 1/1: it holds every image, so its verdicts are the "
                      "run's; merge it (python -m visionaudit merge) to compare it with a baseline"))
    elif shard:
        lines.append(("Partial report", f"this is the partial report of shard {shard.get('index')}/{shard.get('count')} "
                      "(--audit-shard): its verdicts judge only this shard's images; the merge of the shards "
                      "(python -m visionaudit merge) is the run's verdict"))
    return lines


def render(report: dict[str, Any], references: Sequence[str | Path] = (), strips: dict[str, list[str]] | None = None,
           comparison: dict[str, Any] | None = None, images: Any = None, json_kept: bool = True,
           page_notes: Sequence[str] = ()) -> str:
    """The HTML page of ``report``. ``references``: decision CSVs for per-category human references;
    ``strips``: what ``thumbnails.transform_strips`` returns (shown under robustness); ``comparison``:
    ``visionaudit.report.compare.compare_reports(baseline, report)``, when the report itself holds no baseline tests;
    ``images``: a ``thumbnails.ImageSource`` (the data root), for the thumbnails of the images a release lost;
    ``json_kept``: False for a run's page written without ``--audit-json`` (the page then says no JSON was kept);
    ``page_notes``: what the page says about itself (one rebuilt from a journal: what it could not draw, and why)."""
    try:
        import jinja2
    except ImportError:
        raise DataError("the HTML report needs Jinja2 and matplotlib: pip install 'visionaudit[html]'") from None
    env = jinja2.Environment(loader=jinja2.PackageLoader("visionaudit.html", "templates"), autoescape=True)
    labels = {v: k for k, v in VERDICTS.items()}
    audited = audited_models(report)
    models = {m: report.get("models", {}).get(m, {}) for m in audited}
    controls = sorted(control_models(report))
    if controls:  # one row for the random-init controls: how many, and their names
        models[f"{len(controls)} random-init control(s)"] = {"control_names": ", ".join(controls)}
    rows = [{**r, "outcome": labels.get(r["verdict"], "skipped")} for r in summary_rows(report.get("audits", []))]
    problems = [{**p, "plain": PLAIN.get(p["outcome"], p["outcome"])} for p in data.not_passed(report)]
    return env.get_template("report.html.j2").render(
        verdict=report.get("verdict", "incomplete"), verdict_reason=report.get("verdict_reason"), error=report.get("error"),
        stopped=how_it_stopped(report), notes=(report.get("run") or {}).get("notes") or [],
        run=report.get("run", {}),
        versions=report.get("run", {}).get("versions", {}), models=models, rows=rows,
        lines=family_lines(report), sections=_sections(report, human_per_category(references), strips, comparison, images),
        problems=problems,
        any_tests=bool(report.get("audits")), subset=run_subset_text(report) is not None,
        incomplete=report.get("incomplete") or {},
        schema_version=report.get("schema_version"), json_kept=json_kept, page_notes=list(page_notes))


def write_html(path: str | Path, report: dict[str, Any], references: Sequence[str | Path] = (),
               strips: dict[str, list[str]] | None = None, comparison: dict[str, Any] | None = None,
               images: Any = None, json_kept: bool = True, page_notes: Sequence[str] = ()) -> Path:
    from visionaudit.files import write_text_atomically

    path = Path(path)
    write_text_atomically(path, render(report, references, strips, comparison, images, json_kept, page_notes))
    return path
