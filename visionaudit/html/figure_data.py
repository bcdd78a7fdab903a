"""What each figure of the HTML report shows, read from a report (plain data, tested against the JSON).

One function per figure (and the rows of the generic section); visionaudit/html/figures.py draws them,
visionaudit/html/sections.py builds the sections from them.
Random-init controls are left out of per-model figures (their group mean is shown beside the shares).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from visionaudit.data.imagenet16 import categories
from visionaudit.families.records import NOT_APPLIED
from visionaudit.families.shape_bias import REFERENCES


def _entries(report: dict[str, Any], audit: str, passed_only: bool = False, not_judged: bool = False) -> list[dict[str, Any]]:
    """``passed_only``: the judged entries (passed, failed); with ``not_judged`` the not-judged ones too, which keep what
    they measured (nothing measured is thrown away: the page shows it greyed, marked, with why: :func:`judged_mark`)."""
    ok = ("passed", "failed", *(("not_judged",) if not_judged else ())) if passed_only else None
    return [e for e in report.get("audits", []) if e.get("audit") == audit and not e.get("control")
            and (ok is None or e.get("outcome") in ok)]


def judged_mark(e: dict[str, Any]) -> dict[str, Any]:
    """``not_judged`` (the entry was held to no bound) and ``why`` (its message), for a row of a figure's data."""
    return {"not_judged": e.get("outcome") == "not_judged",
            "why": (e.get("message") or "not judged") if e.get("outcome") == "not_judged" else None}


def shape_bias_by_category(report: dict[str, Any], not_judged: bool = False) -> dict[str, Any]:
    """Per model: overall shape bias and the shape fraction (shape / (shape + texture)) per category,
    in the style of the model-vs-human figure; the published overall references beside them. ``not_judged``: the
    not-judged entries too (too few stimuli), marked (:func:`judged_mark`)."""
    models = {}
    for e in _entries(report, "shape_bias", passed_only=True, not_judged=not_judged):
        per = e["metrics"].get("per_category")
        if not isinstance(per, dict) or "shape_bias" not in e["metrics"]:
            continue
        models[e["model"]] = {"overall": e["metrics"]["shape_bias"], "ci": e["metrics"].get("shape_bias_ci"),
                              "per_category": {c: per[c]["shape_bias"] for c in categories() if c in per}, **judged_mark(e)}
    return {"categories": list(categories()), "models": models, "references": dict(REFERENCES)}


def error_consistency(report: dict[str, Any]) -> dict[str, Any]:
    """The shape-bias entries' error consistency with the human observers (model-vs-human's plot): per model its
    kappa with each observer (with the interval) and their mean; per observer its kappas with the other observers,
    and their mean (the observers' pairwise kappas are the same trials for every model of a run: the first's).
    A not-judged entry (too few stimuli for the gate) recorded its kappas too: it is shown, marked ``not_judged``."""
    models, pairwise, observers_mean, n_trials = {}, {}, None, None
    for e in _entries(report, "shape_bias"):
        if e.get("outcome") not in ("passed", "failed", "not_judged"):
            continue
        per = (e.get("tables") or {}).get("error_consistency")
        if not isinstance(per, dict) or not per:
            continue
        m = e["metrics"]
        models[e["model"]] = {"mean": m.get("human_error_consistency"), "ci": m.get("human_error_consistency_ci"),
                              "not_judged": e.get("outcome") == "not_judged",
                              "per_observer": {s: {"kappa": r.get("kappa"), "ci": r.get("kappa_ci")} for s, r in per.items()}}
        if not pairwise:
            for pair, kappa in ((e.get("tables") or {}).get("observers_error_consistency") or {}).items():
                a, _, b = pair.partition(" / ")
                pairwise.setdefault(a, []).append(kappa)
                pairwise.setdefault(b, []).append(kappa)
            observers_mean = m.get("observers_error_consistency")
            n_trials = (m.get("error_consistency_detail") or {}).get("n_trials")
    observers = sorted({s for v in models.values() for s in v["per_observer"]} | set(pairwise))
    return {"observers": observers, "models": models, "pairwise": pairwise, "observers_mean": observers_mean,
            "n_trials": n_trials}


def accuracies(report: dict[str, Any], not_judged: bool = False) -> list[dict[str, Any]]:
    """Clean top-1, top-5 (None for 5 classes or fewer), balanced accuracy and the lowest class per model, with the
    number of images, the per-class table (class name -> index, images, correct, accuracy) and the configured bounds
    that did not apply (``not_applied``: bound -> why, ``min_top5`` on five classes or fewer); ``not_judged``: the
    not-judged entries too, marked (:func:`judged_mark`)."""
    return [{"model": e["model"], "clean_top1": e["metrics"]["clean_top1"], "top5": e["metrics"].get("top5"),
             "n_images": e["metrics"].get("n_images"), "balanced_accuracy": e["metrics"].get("balanced_accuracy"),
             "lowest_class": e["metrics"].get("lowest_class"), "per_class": (e.get("tables") or {}).get("per_class"),
             "not_applied": e["metrics"].get(NOT_APPLIED) or {}, **judged_mark(e)}
            for e in _entries(report, "accuracy", True, not_judged) if "clean_top1" in e["metrics"]]


def shape_only_accuracies(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model, its 16-way accuracy on the shape-only stimuli (``edges``, ``silhouettes``: the shape-bias family's
    ``edges_accuracy`` and ``silhouettes_accuracy``), judged or not (marked: :func:`judged_mark`)."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in _entries(report, "shape_bias", True, not_judged=True):
        for kind in ("edges", "silhouettes"):
            value = e["metrics"].get(f"{kind}_accuracy")
            if value is not None or f"{kind}_accuracy" in e["metrics"]:
                out[e["model"]][kind] = {"accuracy": value, "n_images": e["metrics"].get("n_images"), **judged_mark(e)}
    return dict(out)


def shape_bias_vs_accuracy(report: dict[str, Any]) -> list[dict[str, Any]]:
    """(model, clean top-1, shape bias) for every model with both, ``not_judged`` when either was not judged (drawn
    as measured, marked)."""
    top1 = {e["model"]: e for e in _entries(report, "accuracy", True, True) if "clean_top1" in e["metrics"]}
    sb = {e["model"]: e for e in _entries(report, "shape_bias", True, True) if "shape_bias" in e["metrics"]}
    return [{"model": m, "clean_top1": top1[m]["metrics"]["clean_top1"], "shape_bias": sb[m]["metrics"]["shape_bias"],
             "not_judged": judged_mark(top1[m])["not_judged"] or judged_mark(sb[m])["not_judged"]}
            for m in sorted(set(top1) & set(sb))]


def channel_shares(report: dict[str, Any]) -> dict[str, Any]:
    """R, G, B weight shares per audited model, and the groups' means (random-init control, published zoo)."""
    models = {e["model"]: e["metrics"]["shares"] for e in _entries(report, "channel_bias", True)
              if e["metrics"].get("group") == "audited" and isinstance(e["metrics"].get("shares"), list)}
    groups = {name: g["mean"] for name, g in (report.get("aggregates", {}).get("channel_bias") or {}).items()
              if name != "audited" and isinstance(g, dict) and isinstance(g.get("mean"), list)}
    return {"channels": ["R", "G", "B"], "models": models, "groups": groups}


def robustness_drops(report: dict[str, Any], not_judged: bool = False) -> dict[str, Any]:
    """Per model and transform: the top-1 drop, its 95 % interval and Holm significance, at the severity reported;
    ``not_judged``: the not-judged entries too, marked (:func:`judged_mark`)."""
    models: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in _entries(report, "robustness", True, not_judged):
        m, t = e["metrics"], e["params"].get("transform")
        if t and isinstance(m.get("drop"), (int, float)):
            models[e["model"]][t] = {"drop": m["drop"], "ci": m.get("drop_ci"), "significant": m.get("significant"),
                                     "p_value_holm": m.get("p_value_holm"), "bound": e["thresholds"].get("max_drop"),
                                     "severity": m.get("severity"), **judged_mark(e)}
    return {"models": dict(models)}


def max_differences(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Conversion and deployment: each test's max |logit difference| and its bound (log axis)."""
    rows = []
    for audit, param in (("conversion", "direction"), ("deployment", "deployment")):
        for e in _entries(report, audit):
            value, bound = e["metrics"].get("max_abs_diff"), e["thresholds"].get("max_abs_diff")
            if "max_abs_diff" in e["metrics"]:  # null: not a finite number (an overflow), kept and shown as such
                label = e["params"].get(param) or e["params"].get("arch") or e["nodeid"].split("::")[-1]
                rows.append({"audit": audit, "model": e["model"], "label": str(label), "max_abs_diff": value, "bound": bound,
                             "outcome": e["outcome"]})
    return rows


def baseline_deltas(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The baseline family's comparisons: delta, interval, verdict."""
    rows = []
    for e in _entries(report, "baseline"):
        m = e["metrics"]
        if "verdict" in m:
            rows.append({"model": e["model"], "baseline_model": m.get("baseline_model"),
                         "comparison": e["params"].get("comparison"),
                         "baseline": m.get("baseline"), "candidate": m.get("candidate"), "delta": m.get("delta"),
                         "ci": m.get("ci"), "p_value_holm": m.get("p_value_holm"), "verdict": m["verdict"],
                         "reason": m.get("reason"), "lost_count": m.get("lost_count"), "per_class": m.get("per_class"),
                         "error_consistency": m.get("error_consistency"), "lost_examples": m.get("lost_examples") or []})
    return rows


def deltas_from_comparison(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of :func:`baseline_deltas`, from ``compare_reports.compare_reports`` (two saved reports)."""
    rows = []
    for model, per in comparison["models"].items():
        for name, r in per["results"].items():
            rows.append({"model": model, "baseline_model": per["baseline_model"], "comparison": name, "baseline": r.baseline,
                         "candidate": r.candidate, "delta": r.delta, "ci": r.ci, "p_value_holm": r.p_value_holm,
                         "verdict": r.verdict, "reason": r.reason, "lost_count": r.lost_count, "per_class": r.per_class,
                         "error_consistency": getattr(r, "error_consistency", None),
                         "lost_examples": getattr(r, "lost_examples", None) or []})
    return rows


GALLERY = 24  # right -> wrong images the baseline section shows, over all of a run's comparisons


def lost_gallery(deltas: list[dict[str, Any]], limit: int = GALLERY) -> list[dict[str, Any]]:
    """Up to ``limit`` images that went right -> wrong, taken in turn from each comparison's ``lost_examples`` (so
    every comparison that lost images shows some), each with its model and comparison; an image lost in several
    comparisons of a model is shown once per condition."""
    queues = [[{**ex, "model": r["model"], "comparison": r["comparison"]} for ex in r.get("lost_examples") or []
               if isinstance(ex, dict) and ex.get("id")] for r in deltas]
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    while len(out) < limit and any(queues):
        for queue in queues:
            while queue:
                ex = queue.pop(0)
                key = (ex["model"], ex.get("set"), ex["id"], ex.get("condition"))
                if key not in seen:
                    seen.add(key)
                    out.append(ex)
                    break
            if len(out) == limit:
                break
    return out


def not_passed(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every test that did not pass, worst first, with its message in plain words."""
    from visionaudit.report.assembly import SEVERITY

    said = {e["nodeid"]: e.get("message") or "" for e in report.get("audits", [])}
    # "the same error as X" only where X says this very message: the tests after a shared fixture's timeout say
    # their own (they never started), which a pointer to X's timeout would drop
    rows = [{"nodeid": e["nodeid"], "outcome": e["outcome"], "message": e.get("message") or "",
             "same_error_as": e.get("same_error_as") if said.get(e.get("same_error_as")) == (e.get("message") or "") else None}
            for e in report.get("audits", []) if e["outcome"] != "passed"]
    return sorted(rows, key=lambda r: (-SEVERITY.get(r["outcome"], 0), r["nodeid"]))


def corruption_errors(report: dict[str, Any]) -> dict[str, Any]:
    """Per model and ImageNet-C corruption: CE, relative CE and the error at each severity (from the mCE
    test's table); per model the mCE line of the family's aggregate."""
    rows, text = [], []
    for e in _entries(report, "corruption", True):
        m, errors = e["metrics"], e["tables"].get("errors")
        if "mce" not in m or not isinstance(errors, dict):
            continue
        ci = m.get("mce_ci") or [None, None]
        text.append({"model": e["model"], "mce": m["mce"], "ci": ci, "relative_mce": m.get("relative_mce"),
                     "n_images": m.get("n_images"), "subset": m.get("subset"), "comparable": m.get("comparable"),
                     "note": m.get("note")})
        for corruption, per in errors.items():
            rows.append({"model": e["model"], "corruption": corruption, "ce": (m.get("ce") or {}).get(corruption),
                         "relative_ce": (m.get("relative_ce") or {}).get(corruption),
                         "errors": [per[s] for s in sorted(per, key=int)]})
    return {"rows": rows, "models": text}


def own_corruption_errors(report: dict[str, Any]) -> dict[str, Any]:
    """Models of their own label spaces (no mCE): per corruption the mean error over severities, its rise over the
    clean error and the error at each severity; per model the mean error and mean rise."""
    rows, text = [], []
    for e in _entries(report, "corruption", True):
        m, errors = e["metrics"], e["tables"].get("errors")
        if m.get("alexnet_normalized") is not False or "mean_error" not in m or not isinstance(errors, dict):
            continue
        text.append({"model": e["model"], "mean_error": m["mean_error"], "ci": m.get("mean_error_ci"),
                     "mean_rise": m.get("mean_rise"), "clean_error": m.get("clean_error"), "n_images": m.get("n_images"),
                     "subset": m.get("subset")})
        for corruption, per in errors.items():
            values = [per[s] for s in sorted(per, key=int)]
            mean = sum(values) / len(values) if values else None
            clean = m.get("clean_error")
            rows.append({"model": e["model"], "corruption": corruption, "mean_error": mean,
                         "rise": None if mean is None or clean is None else mean - clean, "errors": values})
    return {"rows": rows, "models": text}


def corruption_curves(report: dict[str, Any]) -> dict[str, Any]:
    """Per model: each corruption's top-1 error with its 95 % (Wilson) interval at each severity, from the condition
    entries; the CE per corruption (AlexNet = 100) from its mCE entry; ``normalized``: False for a model of its own
    label space (AlexNet's errors are ImageNet-1k's: no CE)."""
    models: dict[str, dict[str, Any]] = {}
    for e in _entries(report, "corruption", True):
        m, p = e["metrics"], e.get("params") or {}
        model = models.setdefault(e["model"], {"errors": defaultdict(dict), "ce": {}, "normalized": True})
        if m.get("alexnet_normalized") is False:
            model["normalized"] = False
        if p.get("corruption") and p.get("severity") is not None and isinstance(m.get("error"), (int, float)):
            model["errors"][str(p["corruption"])][int(p["severity"])] = {"error": m["error"], "ci": m.get("error_ci")}
        if isinstance(m.get("ce"), dict):
            model["ce"] = {c: v for c, v in m["ce"].items() if isinstance(v, (int, float))}
    return {"models": {k: {**v, "errors": {c: dict(sorted(per.items())) for c, per in v["errors"].items()}}
                       for k, v in models.items() if v["errors"] or v["ce"]}}


def family_entries(report: dict[str, Any], audit: str, key_metric: str | None) -> list[dict[str, Any]]:
    """The generic section's rows: each test of ``audit``, by model then test id, with its key metric
    (``missing`` when the test recorded none), outcome and message."""
    rows = []
    for e in report.get("audits", []):
        if e.get("audit") != audit:
            continue
        metrics = e.get("metrics") or {}
        rows.append({"model": e.get("model") or "-", "test": e["nodeid"].split("::", 1)[-1], "value": metrics.get(key_metric),
                     "missing": key_metric not in metrics, "outcome": e["outcome"], "message": (e.get("message") or "")[:300]})
    return sorted(rows, key=lambda r: (r["model"], r["test"]))
