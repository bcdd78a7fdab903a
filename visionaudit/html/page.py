"""The report for people: one self-contained HTML file (inline SVG figures, small inline JPEGs, no
script, no network: a Content-Security-Policy forbids every external load), rendered from the JSON report.

``render(report)`` needs Jinja2 and matplotlib (the ``html`` extra). Sections appear for the families the
report holds: shape bias (per category, model-vs-human style, and against clean accuracy), channel
shares, robustness drops (with what the model saw, when the images are at hand), conversion and
deployment differences on a log axis, baseline deltas, and every test that did not pass in plain words.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from visionaudit.errors import DataError
from visionaudit.families.corruption.imagenet_c import NOT_COMPARABLE
from visionaudit.families.records import audited_models, control_models
from visionaudit.formatting import fmt
from visionaudit.html import figure_data as data
from visionaudit.report.summaries import VERDICTS, family_lines, summary_rows

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
SHAPE_BIAS_CITATION = ("Published values: Geirhos et al., ImageNet-trained CNNs are biased towards texture, ICLR 2019 (Fig. 4) "
                       "and the model-vs-human toolbox; humans are the mean of the nine observers.")


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


def _figure(draw, *args, **kwargs) -> str | None:
    """A figure, or a note in its place: one bad value never costs the page."""
    try:
        return draw(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return f'<p class="muted">figure not drawn ({type(e).__name__}: {str(e)[:200]}); the table and the JSON hold the numbers</p>'


def _sections(report: dict[str, Any], references: dict[str, float] | None, strips: dict[str, Any] | None,
              comparison: dict[str, Any] | None = None) -> list[dict]:
    from visionaudit.html import figures

    style = figures.styles(audited_models(report))
    out = []
    acc = data.accuracies(report)
    if acc:
        out.append({"id": "accuracy", "title": "Clean accuracy", "figures": [],
                    "table": {"header": ["model", "clean top-1", "top-5", "images"],
                              "rows": [[r["model"], fmt(r["clean_top1"]), fmt(r["top5"]), fmt(r["n_images"])] for r in acc]}})
    sb = data.shape_bias_by_category(report)
    svg = _figure(figures.shape_bias_figure, sb, references, style)
    if svg:
        figs = [{"svg": svg, "alt": "shape bias per category for each model, with published references",
                 "caption": "Fraction of shape decisions per category (cue-conflict images whose cues differ). " + SHAPE_BIAS_CITATION}]
        scatter = _figure(figures.accuracy_scatter, data.shape_bias_vs_accuracy(report), style)
        if scatter:
            figs.append({"svg": scatter, "alt": "shape bias against clean top-1 accuracy", "caption": "Shape bias against clean top-1."})
        rows = [[m, fmt(v["overall"]), f"[{fmt(v['ci'][0])}, {fmt(v['ci'][1])}]" if v.get("ci") else "-"] for m, v in sb["models"].items()]
        out.append({"id": "shape_bias", "title": "Shape bias", "figures": figs,
                    "table": {"header": ["model", "shape bias", "95% interval"], "rows": rows}})
    shares = data.channel_shares(report)
    svg = _figure(figures.channel_bars, shares) if shares["models"] else None
    if svg:
        rows = [[m, *(fmt(v) for v in s)] for m, s in {**shares["models"], **shares["groups"]}.items()]
        out.append({"id": "channel_bias", "title": "Channel bias", "figures": [{
            "svg": svg, "alt": "red, green and blue shares of the first-layer weights per model and group",
            "caption": "Shares of |first-layer weights| per input channel, beside the random-init control and the published torchvision zoo."}],
            "table": {"header": ["model or group", "R", "G", "B"], "rows": rows}})
    drops = data.robustness_drops(report)
    svg = _figure(figures.robustness_figure, drops, style)
    if svg:
        rows = [[m, t, fmt(r["drop"]), f"[{fmt(r['ci'][0])}, {fmt(r['ci'][1])}]" if r.get("ci") else "-", fmt(r.get("p_value_holm")),
                 "yes" if r.get("significant") else "no"] for m, per in drops["models"].items() for t, r in per.items()]
        out.append({"id": "robustness", "title": "Transform robustness", "figures": [{
            "svg": svg, "alt": "top-1 drop per transform with 95 % intervals", "caption": "Top-1 drop per transform, paired with the clean pass."}],
            "table": {"header": ["model", "transform", "drop", "95% interval", "Holm p", "significant"], "rows": rows},
            "strips": (strips or {}).get("strips"), "strips_caption": (strips or {}).get("caption"), "attribution": _attribution()})
    ce = data.corruption_errors(report)
    if ce["rows"]:
        said = " ".join(f"{r['model']}: mCE {fmt(r['mce'])} [95% {fmt(r['ci'][0])}, {fmt(r['ci'][1])}], relative mCE "
                        f"{fmt(r['relative_mce'])} ({r['subset'] or str(r['n_images']) + ' images'})"
                        + (f"; {r['note']}" if r.get("note") else "") + "." for r in ce["models"])
        caveat = "" if all(r["comparable"] for r in ce["models"]) else f" {NOT_COMPARABLE}."
        out.append({"id": "corruption", "title": "Common corruptions (ImageNet-C)", "figures": [],
                    "text": said + caveat + " CE in % of AlexNet's published errors (AlexNet = 100).",
                    "table": {"header": ["model", "corruption", "CE", "relative CE", "error per severity"],
                              "rows": [[r["model"], r["corruption"], fmt(r["ce"]), fmt(r["relative_ce"]),
                                        ", ".join(fmt(v) for v in r["errors"])] for r in ce["rows"]]}})
    diffs = data.max_differences(report)
    svg = _figure(figures.max_diff_figure, diffs)
    if svg:
        out.append({"id": "conversion", "title": "Conversion and deployment", "figures": [{
            "svg": svg, "alt": "maximum logit differences against their bounds, log scale",
            "caption": "Largest |logit difference| of each converted or deployed form against its bound."}],
            "table": {"header": ["model", "family", "form", "max |diff|", "bound", "outcome"],
                      "rows": [[r["model"], r["audit"], r["label"], fmt(r["max_abs_diff"]), fmt(r["bound"]), r["outcome"]] for r in diffs]}})
    deltas = data.deltas_from_comparison(comparison) if comparison else data.baseline_deltas(report)
    if deltas:
        svg = _figure(figures.baseline_figure, deltas)
        paired = comparison["paired"] if comparison else not any(
            e["metrics"].get("paired") is False for e in report.get("audits", []) if e.get("audit") == "baseline")
        how = ("Paired, image by image; a regression is beyond its tolerance and significant (Holm)." if paired else
               "UNPAIRED: two-proportion tests on reports that did not score the same images"
               + (" (" + "; ".join(comparison["problems"]) + ")" if comparison and comparison.get("problems") else "")
               + "; a regression is beyond its tolerance and significant (Holm).")
        rows = [[r["model"], r["baseline_model"], r["comparison"], fmt(r["baseline"]), fmt(r["candidate"]),
                 f"{r['delta']:+.4f}" if isinstance(r["delta"], (int, float)) else fmt(r["delta"]),
                 f"[{fmt(r['ci'][0])}, {fmt(r['ci'][1])}]" if r.get("ci") else "-", fmt(r["p_value_holm"]), r["verdict"]] for r in deltas]
        out.append({"id": "baseline", "title": "Against the baseline", "figures": [{
            "svg": svg, "alt": "change of each compared metric against the baseline with 95 % intervals",
            "caption": how}] if svg else [], "text": how,
            "table": {"header": ["model", "baseline", "comparison", "was", "now", "change", "95% interval", "Holm p", "verdict"],
                      "rows": rows}})
    return out


def _attribution() -> str:
    from visionaudit.html.thumbnails import ATTRIBUTION

    return ATTRIBUTION


def render(report: dict[str, Any], references: Sequence[str | Path] = (), strips: dict[str, list[str]] | None = None,
           comparison: dict[str, Any] | None = None) -> str:
    """The HTML page of ``report``. ``references``: decision CSVs for per-category human references;
    ``strips``: what ``thumbnails.transform_strips`` returns (shown under robustness); ``comparison``:
    ``compare_reports.compare_reports(baseline, report)``, when the report itself holds no baseline tests."""
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
        verdict=report.get("verdict", "incomplete"), error=report.get("error"), run=report.get("run", {}),
        versions=report.get("run", {}).get("versions", {}), models=models, rows=rows,
        lines=family_lines(report), sections=_sections(report, human_per_category(references), strips, comparison), problems=problems,
        any_tests=bool(report.get("audits")), incomplete=report.get("incomplete") or {},
        schema_version=report.get("schema_version"))


def write_html(path: str | Path, report: dict[str, Any], references: Sequence[str | Path] = (),
               strips: dict[str, list[str]] | None = None, comparison: dict[str, Any] | None = None) -> Path:
    from visionaudit.files import write_text_atomically

    path = Path(path)
    write_text_atomically(path, render(report, references, strips, comparison))
    return path
