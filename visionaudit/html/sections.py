"""The sections of the HTML page, one builder per family, named by each family's descriptor
(``Family.html_section = "visionaudit.html.sections:NAME"``), and the generic section for a family
that names none.

A builder takes the page's inputs (:class:`SectionInputs`) and returns a section, or None when the
report holds nothing to show. A section is a dict:

- ``id``, ``title``: the HTML id (default: the family's name) and the heading;
- ``text``: a paragraph under the heading (optional);
- ``figures``: a list of ``{"svg", "alt", "caption"}`` (inline SVG, no external load);
- ``table``: ``{"header": [...], "rows": [[...], ...]}``, cells as text (optional);
- ``strips``, ``strips_caption``, ``attribution``: thumbnails (robustness).

A family from another package names its own builder (a callable, or a ``"module:function"`` string).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visionaudit.families.channel_bias import CONTROL_GROUP, ZOO_GROUP
from visionaudit.families.corruption.imagenet_c import NOT_COMPARABLE
from visionaudit.families.registry import direction_words, families
from visionaudit.formatting import first_few, fmt
from visionaudit.html import figure_data as data


@dataclass(frozen=True)
class SectionInputs:
    """What a section may draw from: the report, and what the page was given beside it."""

    report: dict[str, Any]
    references: dict[str, float] | None = None  # per-category human shape bias (decision CSVs)
    strips: dict[str, Any] | None = None  # what thumbnails.transform_strips returned
    comparison: dict[str, Any] | None = None  # compare_reports(baseline, report), from the CLI's --baseline
    style: dict[str, Any] | None = None  # figures.styles: one colour and marker per audited model
    images: Any = None  # a thumbnails.ImageSource: the data root the page is rendered with (the baseline gallery's images)


def figure(draw, *args, **kwargs) -> str | None:
    """A figure, or a note in its place: one bad value never costs the page."""
    try:
        return draw(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return (f'<p class="muted">figure not drawn ({type(e).__name__}: {str(e)[:200]}); the table and the JSON hold '
                'the numbers</p>')


def interval(ci: Any) -> str:
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "-"


NOT_JUDGED_ROW = "not-judged"  # a table row's class: greyed, what a not-judged test measured (held to no bound)


def _name(name: str, row: dict[str, Any]) -> str:
    return f"{name} (not judged)" if row.get("not_judged") else name


def judged_rows(table: dict[str, Any], marks: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """``table`` with its not-judged rows greyed (``marks``: each row's :func:`figure_data.judged_mark`, with its model)
    and a line under it saying why: what they measured is shown, never thrown away, and never read as judged."""
    table["row_classes"] = [NOT_JUDGED_ROW if m.get("not_judged") else "" for m in marks]
    whys = list(dict.fromkeys(f"{m['model']}: {m.get('why') or 'not judged'}" for m in marks if m.get("not_judged")))
    if whys:
        table["notes"] = [f"Greyed rows: {what} of tests not judged, as measured and held to no bound (the verdict is "
                          "incomplete): " + "; ".join(whys) + "."]
    return table


PER_CLASS_ROWS = 50  # a model's per-class table shows all its classes up to this many, else its worst this many


def accuracy(page: SectionInputs) -> dict | None:
    """Top-1, top-5 and balanced accuracy per model; then per model a table of its classes by name, worst first
    (all of them up to :data:`PER_CLASS_ROWS`, else the worst that many)."""
    acc = data.accuracies(page.report, not_judged=True)
    if not acc:
        return None
    tables = []
    for r in acc:
        classes = r.get("per_class") or {}
        if not classes:
            continue
        ranked = sorted(classes.items(), key=lambda kv: (kv[1]["accuracy"], -kv[1]["n_images"], kv[1]["index"]))
        shown = ranked[:PER_CLASS_ROWS]
        what = (f"all {len(ranked)} classes with images" if len(shown) == len(ranked)
                else f"the {len(shown)} worst of {len(ranked)} classes with images")
        tables.append({"title": f"{_name(r['model'], r)}: accuracy per class", "class": "per-class",
                       "caption": ("Not judged: " if r["not_judged"] else "")
                                  + f"Top-1 per class, worst first ({what}; the JSON report holds every class).",
                       "header": ["class", "output", "images", "correct", "accuracy"],
                       "rows": [[name, str(c["index"]), str(c["n_images"]), str(c["correct"]), fmt(c["accuracy"])]
                                for name, c in shown]})
    unapplied = [f"{r['model']}: {k} not applied ({why})" for r in acc for k, why in r["not_applied"].items()]
    return {"id": "accuracy", "title": "Clean accuracy", "figures": [],
            "table": _noted(unapplied, judged_rows({"header": ["model", "clean top-1", "top-5", "balanced accuracy",
                                                              "lowest class", "images"],
                                   "rows": [[_name(r["model"], r), fmt(r["clean_top1"]),
                                             fmt(r["top5"]) if r["top5"] is not None else "- (5 classes or fewer"
                                             + ("; min_top5 not applied)" if "min_top5" in r["not_applied"] else ")"),
                                             fmt(r.get("balanced_accuracy")), _lowest(r.get("lowest_class")),
                                             fmt(r["n_images"])] for r in acc]}, acc, "the accuracies")),
            "tables": tables}


def _noted(lines: list[str], table: dict[str, Any]) -> dict[str, Any]:
    """``table`` with ``lines`` under it (a configured bound that did not apply, with why), after any others."""
    if lines:
        table["notes"] = [*table.get("notes", []), *lines]
    return table


def _lowest(lowest: Any) -> str:
    if not isinstance(lowest, dict):
        return "-"
    return f"{lowest['class']} {fmt(lowest['accuracy'])} ({lowest['correct']}/{lowest['n_images']})"


def channel_bias(page: SectionInputs) -> dict | None:
    from visionaudit.html import figures

    shares = data.channel_shares(page.report)
    svg = figure(figures.channel_bars, shares) if shares["models"] else None
    if not svg:
        return None
    rows = [[m, *(fmt(v) for v in s)] for m, s in {**shares["models"], **shares["groups"]}.items()]
    # Only the groups drawn: a run without the random-init controls (-k) has no control bar to be beside.
    beside = [name for group, name in ((CONTROL_GROUP, "the random-init control"),
                                       (ZOO_GROUP, "the published torchvision zoo"))
              if group in shares["groups"]]
    return {"id": "channel_bias", "title": "Channel bias", "figures": [{
        "svg": svg, "alt": "red, green and blue shares of the first-layer weights per model and group",
        "caption": "Shares of |first-layer weights| per input channel" + (f", beside {' and '.join(beside)}" if beside else "")
                   + "."}],
        "table": {"header": ["model or group", "R", "G", "B"], "rows": rows}}


def robustness(page: SectionInputs) -> dict | None:
    from visionaudit.html import figures
    drops = data.robustness_drops(page.report, not_judged=True)
    svg = figure(figures.robustness_figure, drops, page.style) if drops["models"] else None
    if not drops["models"]:
        return None
    marks = [{"model": f"{m} {t}", **r} for m, per in drops["models"].items() for t, r in per.items()]
    rows = [[_name(m, r), _at_severity(t, r.get("severity")), fmt(r["drop"]), interval(r.get("ci")), fmt(r.get("p_value_holm")),
             _significant(r)] for m, per in drops["models"].items() for t, r in per.items()]
    # A sweep without 1 (severities = [0.5, 2]) reports its first severity: said, not read as the default magnitude.
    swept = sorted({float(r["severity"]) for per in drops["models"].values() for r in per.values()
                    if isinstance(r.get("severity"), (int, float)) and r["severity"] != 1.0})
    at = (f" Measured at severity {', '.join(f'{s:g}' for s in swept)} where the table says so (the first severity "
          "swept: 1, the default magnitude, was not)." if swept else "")
    strips = page.strips or {}
    return {"id": "robustness", "title": "Transform robustness", "figures": [{
        "svg": svg, "alt": "top-1 drop per transform with 95 % intervals",
        "caption": "Top-1 drop per transform, paired with the clean pass (hollow: not judged, as measured and held to "
                   "no bound; the table says why)." + at}] if svg else [],
        "table": judged_rows({"header": ["model", "transform", "drop", "95% interval", "Holm p", "significant"],
                               "rows": rows}, marks, "the drops"),
        "strips": strips.get("strips"), "strips_caption": strips.get("caption"), "attribution": strips.get("attribution")}


def _significant(row: dict[str, Any]) -> str:
    """Holm's verdict on a drop; none on a drop not judged (too few images), which was held to no test."""
    return "- (not judged)" if row.get("not_judged") else "yes" if row.get("significant") else "no"


def _at_severity(transform: str, severity: Any) -> str:
    """The transform's name, with its severity when it is not the default 1 (as the thumbnails' labels)."""
    return f"{transform} (severity {severity:g})" if isinstance(severity, (int, float)) and severity != 1.0 else transform


def _corruption_figures(page: SectionInputs) -> list[dict[str, Any]]:
    """Error against severity per corruption (every model) and CE per corruption against AlexNet = 100 (the models
    AlexNet normalizes); a model of its own label space has no CE, and the caption says why."""
    from visionaudit.html import figures

    curves = data.corruption_curves(page.report)
    out = []
    errors = figure(figures.corruption_error_figure, curves, page.style)
    if errors:
        out.append({"svg": errors, "alt": "top-1 error against severity per corruption with 95 % intervals",
                    "caption": "Top-1 error against severity, one panel per corruption, with 95 % (Wilson) intervals."})
    ce = figure(figures.corruption_ce_figure, curves, page.style)
    if ce:
        out.append({"svg": ce, "alt": "corruption error per corruption against AlexNet = 100",
                    "caption": "CE per corruption: the model's top-1 errors summed over the severities run, in % of "
                               "AlexNet's published errors (the dashed line: AlexNet = 100; lower is better)."})
    own = [m for m, v in curves["models"].items() if not v["normalized"]]
    if own and errors:  # said under the error figure, which draws them
        out[0]["caption"] += (f" No CE for {', '.join(own)}: a model of its own label space is not "
                              "normalized by AlexNet (its errors are ImageNet-1k's).")
    return out


def corruption(page: SectionInputs) -> dict | None:
    section = _corruption_table(page)
    if section is not None:
        section["figures"] = _corruption_figures(page)
    return section


def _corruption_table(page: SectionInputs) -> dict | None:
    ce = data.corruption_errors(page.report)
    own = data.own_corruption_errors(page.report)
    if not ce["rows"]:
        return _own_corruption(own) if own["rows"] else None
    said = " ".join(f"{r['model']}: mCE {fmt(r['mce'])} [95% {fmt(r['ci'][0])}, {fmt(r['ci'][1])}], relative mCE "
                    f"{fmt(r['relative_mce'])} ({r['subset'] or str(r['n_images']) + ' images'})"
                    + (f"; {r['note']}" if r.get("note") else "") + "." for r in ce["models"])
    caveat = "" if all(r["comparable"] for r in ce["models"]) else f" {NOT_COMPARABLE}."
    section = {"id": "corruption", "title": "Common corruptions (ImageNet-C)", "figures": [],
               "text": said + caveat + " CE in % of AlexNet's published errors (AlexNet = 100).",
               "table": {"header": ["model", "corruption", "CE", "relative CE", "error per severity"],
                         "rows": [[r["model"], r["corruption"], fmt(r["ce"]), fmt(r["relative_ce"]),
                                   ", ".join(fmt(v) for v in r["errors"])] for r in ce["rows"]]}}
    if own["rows"]:  # models of their own label spaces beside ImageNet-1k ones
        mine = _own_corruption(own)
        section["tables"] = [{"title": "Models of their own label spaces (no mCE)", "caption": mine["text"], **mine["table"]}]
    return section


def _own_corruption(own: dict[str, Any]) -> dict:
    """Models whose label space is not ImageNet-1k: the mean error and its mean rise over the clean error, not
    normalized (AlexNet's errors are ImageNet-1k's), never called an mCE."""
    said = " ".join(f"{r['model']}: mean error {fmt(r['mean_error'])} {interval(r.get('ci'))}, mean rise over its clean error "
                    f"{fmt(r['mean_rise'])} (clean {fmt(r['clean_error'])}; {r['subset'] or str(r['n_images']) + ' images'})."
                    for r in own["models"])
    return {"id": "corruption", "title": "Common corruptions (ImageNet-C)", "figures": [],
            "text": said + " Not normalized by AlexNet (its errors are ImageNet-1k's): the top-1 error in the model's own "
                           "label space, and its rise over the model's own clean error.",
            "table": {"header": ["model", "corruption", "mean error", "rise over clean", "error per severity"],
                      "rows": [[r["model"], r["corruption"], fmt(r["mean_error"]), fmt(r["rise"]),
                                ", ".join(fmt(v) for v in r["errors"])] for r in own["rows"]]}}


def conversion_and_deployment(page: SectionInputs) -> dict | None:
    """One section for both families: their differences share one log axis."""
    from visionaudit.html import figures

    diffs = data.max_differences(page.report)
    svg = figure(figures.max_diff_figure, diffs)
    if not svg:
        return None
    return {"id": "conversion", "title": "Conversion and deployment", "figures": [{
        "svg": svg, "alt": "maximum logit differences against their bounds, log scale",
        "caption": "Largest |logit difference| of each converted or deployed form against its bound: green passed, "
                   "red failed or error, grey any other outcome (the table says which)."}],
        "table": {"header": ["model", "family", "form", "max |diff|", "bound", "outcome"],
                  "rows": [[r["model"], r["audit"], r["label"], fmt(r["max_abs_diff"]), fmt(r["bound"]),
                            r["outcome"]] for r in diffs]}}


def baseline(page: SectionInputs) -> dict | None:
    """The report's baseline tests, or the CLI's comparison of two saved reports."""
    from visionaudit.html import figures

    report, comparison = page.report, page.comparison
    deltas = data.deltas_from_comparison(comparison) if comparison else data.baseline_deltas(report)
    if not deltas:
        return None
    svg = figure(figures.baseline_figure, deltas)
    paired = comparison["paired"] if comparison else not any(
        e["metrics"].get("paired") is False for e in report.get("audits", []) if e.get("audit") == "baseline")
    how = ("Paired, image by image; a regression is beyond its tolerance and significant (Holm)." if paired else
           "UNPAIRED: two-proportion tests on reports that did not score the same images"
           + (" (" + "; ".join(comparison["problems"]) + ")" if comparison and comparison.get("problems") else "")
           + "; a regression is beyond its tolerance and significant (Holm).")
    rows = [[r["model"], r["baseline_model"],
             r["comparison"] + (f" ({r['per_class']['shown']})" if (r.get("per_class") or {}).get("shown")
                                                                 else ""), fmt(r["baseline"]), fmt(r["candidate"]),
             f"{r['delta']:+.4f}" if isinstance(r["delta"], (int, float)) else fmt(r["delta"]),
             interval(r.get("ci")), _kappa(r.get("error_consistency")), fmt(r["p_value_holm"]), r["verdict"]] for r in deltas]
    said, tables = _classes_against_baseline(deltas)
    # first: the page's verdict is the report's own, the comparison's is compare's (a CI gate reads both)
    verdict = [_compare_verdict(comparison)] if comparison else []
    if comparison and comparison.get("baseline_only"):  # PREV's models this report has none paired with: said, as compare does
        from visionaudit.families.baseline.pairing import baseline_only_said

        said.append(baseline_only_said(comparison["baseline_only"], "the baseline", "this report") + ".")
    return {"id": "baseline", "title": "Against the baseline", "figures": [{
        "svg": svg, "alt": "change of each compared metric against the baseline with 95 % intervals, each kind on its own "
                       "scale (corruption conditions, if any: a corruption by severity grid)",
        "caption": how}] if svg else [], "text": " ".join([*verdict, how, *said]),
        "table": {"header": ["model", "baseline", "comparison", "was", "now", "change", "95% interval",
                             "error consistency (kappa, 95% interval)", "Holm p", "verdict"],
                  "rows": rows},
        "tables": tables, "gallery": _lost_gallery(page, deltas)}


def _compare_verdict(comparison: dict[str, Any]) -> str:
    """The comparison's verdict as ``visionaudit compare`` prints it (regressions, why it is not a pass), with an
    accepted baseline that is not a pass and a subset baseline said beside it."""
    from visionaudit.report.compare import comparison_verdict, regressions
    from visionaudit.selection import subset_text

    found = regressions(comparison)
    verdict, reason = comparison.get("verdict") or comparison_verdict(comparison)[0], comparison.get("verdict_reason")
    accepted = (f" (the old report has verdict {comparison.get('baseline_verdict')}, not pass; accepted "
                "(--accept-incomplete-baseline))" if comparison.get("accepted") else "")
    old = subset_text(comparison.get("baseline_selection"))
    return (f"As visionaudit compare judges it: {str(verdict).upper()}: {len(found)} regression(s)"
            + (": " + ", ".join(found) if found else "") + (f"; not a pass: {reason}" if reason else "") + accepted + "."
            + (f" The baseline was {old}: only the tests it ran are compared." if old else ""))


def _kappa(ec: Any) -> str:
    """A comparison's error consistency beside its change: kappa and its interval; why there is none. ``ec``: the
    report's ``error_consistency`` dict (or, from ``compare_reports``, an object with the same fields)."""
    if ec is not None and not isinstance(ec, dict):
        ec = ec.to_dict() if hasattr(ec, "to_dict") else getattr(ec, "__dict__", None)
    if not isinstance(ec, dict):
        return "-"
    if ec.get("kappa") is None:
        return f"- (undefined: observed {fmt(ec.get('observed'))}, expected {fmt(ec.get('expected'))})"
    return f"{fmt(ec['kappa'])} {interval(ec.get('kappa_ci'))}"


def _baseline_top1_missing(page: SectionInputs) -> str:
    """Why a lost image has no baseline top-1 class: the schema only when the baseline report is known to predate
    schema 6 (its ``schema_version``, recorded in ``run.baseline`` or by ``compare_reports``); otherwise the top-1 can
    also be missing from a schema-6 report (a merge of mixed-schema parts, a condition that records none)."""
    schema = (page.comparison or {}).get("baseline_schema") if page.comparison else (
        (page.report.get("run") or {}).get("baseline") or {}).get("schema_version")
    if isinstance(schema, int) and schema < 6:
        return f"not recorded (a baseline of schema {schema}, before schema 6)"
    return "not recorded in the baseline report"


def _lost_gallery(page: SectionInputs, deltas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Up to 24 images that went right -> wrong over the model's comparisons: each as the model saw it (when the data
    root the page is rendered with holds it), with the baseline's and the candidate's top-1 class and the condition;
    else its id and the classes as text, saying why there is no thumbnail."""
    from visionaudit.html.thumbnails import attribution

    examples = data.lost_gallery(deltas)
    if not examples:
        return None
    uris, why_not = page.images.thumbnails(page.report, examples) if page.images is not None else ({}, {})
    no_data = "the page was rendered without the data root (visionaudit html --data DIR draws them)"
    several = len({ex["model"] for ex in examples}) > 1  # the model named on each image only when there are several
    was_missing = _baseline_top1_missing(page)
    items = [{**ex, "uri": uris.get(k), "why": None if k in uris else why_not.get(k, no_data),
              "where": f"{ex['model']} · {ex.get('condition')}" if several else str(ex.get("condition")),
              "was": ex.get("baseline_top1") or (f"not recorded ({ex['reason']})" if ex.get("reason") else was_missing),
              "now": ex.get("candidate_top1") or "not recorded"} for k, ex in enumerate(examples)]
    total = sum(int(r.get("lost_count") or 0) for r in deltas)
    caption = (f"{len(items)} of the images that went from right to wrong ({total} right-to-wrong changes over the "
               "comparisons), taken in turn from each comparison; each as the model saw it under its condition (a "
               "transform redrawn with the run's seed; a corruption: the image before it), with the class the baseline "
               "and the candidate put first.")
    if not uris:
        caption += f" No thumbnails: {no_data if page.images is None else 'the images are not under the data root'}."
    shown = [(str(examples[k].get("set")), str(examples[k].get("id"))) for k in uris]
    where = (page.images.images, page.images.data_root) if page.images is not None else (None, None)
    return {"caption": caption, "items": items, "attribution": attribution(page.report, shown, *where)}


def _classes_against_baseline(deltas: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The per-class comparison's classes by name: a sentence per model (the classes significantly worse, worst
    first; those not compared, counted) and a table of the worse ones. (Its row above shows one class's numbers.)"""
    said, tables = [], []
    for r in deltas:
        per_class = r.get("per_class")
        if not per_class:
            continue
        worse = per_class.get("worse") or []
        text = f"{r['model']}: {r['comparison']}: " + (
            "significantly worse, worst first: " + first_few([f"{w['class']} {fmt(w['baseline'])} -> {fmt(w['candidate'])}"
                                                              for w in worse], 10, ", ")
            if worse else f"no class significantly worse of {per_class.get('compared', 0)} compared")
        skipped = (per_class.get("not_compared") or {}).get("count")
        if not per_class.get("compared"):
            said.append(f"{r['model']}: {r['comparison']}: not compared: no class has {per_class.get('min_images')} "
                        f"paired images ({skipped} classes with fewer).")
            continue
        said.append(text + (f"; {skipped} classes not compared (fewer than {per_class.get('min_images')} paired images)."
                            if skipped else "."))
        if worse:
            tables.append({"title": f"{r['model']}: classes significantly worse than in {r['baseline_model']}",
                           "caption": "Exact McNemar per class; Holm p: the Holm p over the classes times the Holm "
                                      "factor of the per-class comparison among the model's comparisons (capped at 1); "
                                      "worst first.",
                           "header": ["class", "images", "was", "now", "change", "lost", "won", "Holm p", "beyond tolerance"],
                           "rows": [[w["class"], str(w["n"]), fmt(w["baseline"]), fmt(w["candidate"]), f"{w['delta']:+.4f}",
                                     str(w["discordant"][0]), str(w["discordant"][1]), fmt(w["p_value_holm"]),
                                     "yes" if w.get("beyond_tolerance") else "no"] for w in worse]})
    return said, tables


def generic(page: SectionInputs, name: str) -> dict | None:
    """The section of a family that names no builder: what it gates, then one row per test (model, test,
    key metric, outcome, message). Its descriptor comes from the registry, else from the report (a family
    registered by a package the renderer does not have)."""
    known = families()
    described = known[name].describe() if name in known else (page.report.get("families") or {}).get(name) or {}
    key = described.get("key_metric")
    rows = data.family_entries(page.report, name, key)
    if not rows:
        return None
    direction = direction_words(described.get("higher_is_better"))
    text = " ".join(part for part in (
        described.get("gates", "").rstrip(".") + "." if described.get("gates") else "",
        f"Key metric: {key} ({direction})." if key else "") if part)
    return {"id": name, "title": name, "figures": [], "text": text,
            "table": {"header": ["model", "test", key or "key metric", "outcome", "message"],
                      "rows": [[r["model"], r["test"], "-" if r["missing"] else fmt(r["value"]), r["outcome"], r["message"]]
                               for r in rows]}}
