"""``visionaudit compare OLD.json NEW.json``: the baseline comparison of two saved reports, no model loaded.

The same functions as ``--audit-baseline`` in a run (visionaudit/families/baseline/__init__.py), fed from the new report's
per-image outcomes instead of live forward passes; rendered as a table, markdown (a PR comment or step
summary) or JSON.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from visionaudit.config import AuditConfig, load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.errors import DataError
from visionaudit.families.baseline import (
    ALL_COMPARED,
    compare_model,
    outcomes_from_report,
    settings_from,
)
from visionaudit.families.baseline.consistency import kappa_text
from visionaudit.families.baseline.pairing import (
    baseline_only,
    baseline_only_said,
    differences,
    model_pairs,
)
from visionaudit.families.baseline.statistics import VERDICTS, Result
from visionaudit.families.records import control_models
from visionaudit.files import to_jsonable
from visionaudit.formatting import first_few, fmt
from visionaudit.report.assembly import unselected_models
from visionaudit.selection import subset_text


class Unpairable(DataError):
    """The reports did not score the same images the same way (exit 4 on the command line)."""


def compare_reports(old: dict[str, Any], new: dict[str, Any], pairs: Mapping[str, str] | None = None,
                    config: AuditConfig | None = None, unpaired: bool = False, accept_incomplete: bool = False) -> dict[str, Any]:
    """``{"paired": bool, "problems": [...], "models": {new spec: {"baseline_model": old spec, "results": {name: Result}}},
    "not_loaded": {new spec: its load error or None}, "not_selected": [new spec that -k/-m left no test],
    "baseline_only": [old spec no new model pairs with: said, not judged], "verdict": ...,
    "verdict_reason": ..., "baseline_verdict": ..., "new_verdict": ..., "baseline_schema": int | None, "accepted": bool}``
    (:func:`comparison_verdict`).

    ``pairs``: new spec -> old spec (default: every loaded model of ``new`` with the same id in ``old``, or the one
    ``config``'s ``[baseline.pairs]`` names).
    Unpairable reports raise :class:`Unpairable` unless ``unpaired``. ``accept_incomplete``: an old report whose
    own verdict is not pass may still make a pass (``accepted`` says it was taken).
    """
    controls = control_models(new)  # random-init controls: not releases
    new_models = [m for m, info in new.get("models", {}).items() if info.get("loaded", True) and m not in controls]
    run_models = list(pairs) if pairs else new_models
    # A release of NEW that never loaded has nothing to compare: named, and no pass (unless --model picked others). One
    # that -k/-m left no test never loaded either, but it did not fail to: named as not selected, no pass all the same,
    # as the run that wrote NEW says (visionaudit/report/assembly.py, unselected_models).
    unselected = unselected_models(new.get("models", {}), new.get("audits", []), new.get("run"))
    not_selected = [] if pairs else [m for m in unselected if m not in controls]
    not_loaded = {} if pairs else {m: info.get("error") for m, info in new.get("models", {}).items()
                                   if not info.get("loaded", True) and m not in controls and m not in not_selected}
    if pairs:
        missing = [m for m in pairs if m not in new_models]
        if missing:
            raise DataError(f"the new report has no model {', '.join(missing)}; it holds {', '.join(new_models) or 'none'}")
    specs = {m: info.get("spec", m) for m, info in new.get("models", {}).items()}  # a named model's id -> its spec
    config = (config or load_config(None)).with_names(specs)  # without a config file: the baseline family's defaults
    # Renamed models pair by the config's [baseline.pairs], as in a run (a sharded CI's gate is compare), unless the
    # user picked one pair with --model/--baseline-as.
    pairing = model_pairs(run_models, old, None, pairs or config.baseline_pairs, where="the old report",
                          fix="--model NEW_SPEC --baseline-as OLD_SPEC, or several in [baseline.pairs] of --config",
                          specs=specs)
    run = new.get("run", {})
    try:
        new_sets = {role: SampleSet.from_dict(role, s) for role, s in (new.get("samples") or {}).items()}
    except (KeyError, TypeError) as e:
        raise DataError(f"the new report's samples section is incomplete ({type(e).__name__}: {e})") from None
    problems = differences(old, new_sets, run.get("seed", 0), run.get("samples"))
    if problems and not unpaired:
        raise Unpairable("the two reports cannot be compared image by image:\n  " + "\n  ".join(problems) +
                         "\npass --baseline-unpaired to compare the proportions with unpaired tests")
    out: dict[str, Any] = {"paired": not problems, "problems": problems, "models": {}, "not_loaded": not_loaded,
                           "not_selected": not_selected}
    # OLD's models no model of NEW pairs with: said (not when --model/--baseline-as picked one pair, nor for the partner,
    # by the table or the same id, of one NEW holds but did not load or select: said above as such)
    table = config.baseline_pairs
    absent = {table.get(m) or table.get(specs.get(m, m)) or m for m in {*not_loaded, *not_selected}}
    out["baseline_only"] = [] if pairs else [m for m in baseline_only(old, pairing) if m not in absent]
    for new_spec, old_spec in pairing.items():
        bounds = config.thresholds("baseline", new_spec)
        settings = settings_from(bounds, run.get("seed", 0), paired=not problems)
        results = compare_model(outcomes_from_report(old, old_spec), outcomes_from_report(new, new_spec), settings)
        out["models"][new_spec] = {"baseline_model": old_spec, "results": results}
    out["baseline_verdict"] = old.get("verdict")
    out["new_verdict"] = new.get("verdict")  # NEW's own gates: said beside, this comparison is not the release gate
    out["baseline_schema"] = old.get("schema_version")  # the page says why a baseline names no top-1 classes
    # A report of a subset (-k/-m/--lf) is compared on what it holds, the rest not compared (why: uncompared.absent), and
    # says so beside the verdict; it is no pass on nothing (comparison_verdict).
    out["baseline_selection"] = (old.get("run") or {}).get("selection")
    out["new_selection"] = run.get("selection")
    out["accepted"] = bool(accept_incomplete) and out["baseline_verdict"] != "pass"
    out["verdict"], out["verdict_reason"] = comparison_verdict(out)
    return out


def comparison_verdict(comparison: dict[str, Any]) -> tuple[str, str | None]:
    """The rule of a run against ``--audit-baseline`` (visionaudit/report/assembly.py): ``fail`` on a regression;
    ``incomplete`` when a model compared nothing, one of the new report's models did not load or was left no test by
    -k/-m (as the run itself says), a comparison lacks the new report's side (a run would not judge it), or the old
    report is itself not a pass and was not accepted;
    ``pass`` otherwise, never on nothing.
    Returns the verdict and, when it is not pass for these reasons, why in one line."""
    reasons = []
    if not comparison["models"]:
        reasons.append("no model was compared")
    for model, error in (comparison.get("not_loaded") or {}).items():
        said = str(error).splitlines()[0] if error else "no test got as far as loading it"
        reasons.append(f"the new report's model {model} did not load ({said}): nothing compared")
    for model in comparison.get("not_selected") or []:
        reasons.append(f"the new report's model {model} was not audited: no test of it was selected (-k/-m, test paths), "
                       "so nothing of it was compared")
    for model, per in comparison["models"].items():
        results = list(per["results"].values())
        where = f"{model} vs {per['baseline_model']}"
        not_compared = [r for r in results if r.verdict == "not_compared"]
        if len(not_compared) == len(results):
            reasons.append(f"{where}: nothing compared ({len(results)} not compared; first: {not_compared[0].reason})" if results
                           else f"{where}: nothing compared")
            continue
        lacking = [r for r in not_compared if r.missing_side == "candidate"]
        if lacking:
            reasons.append(f"{where}: {len(lacking)} comparison(s) not judged ({', '.join(r.name for r in lacking)}): "
                           f"{lacking[0].reason}")
    if comparison.get("baseline_verdict") != "pass" and not comparison.get("accepted"):
        reasons.append(f"the old report has verdict {comparison.get('baseline_verdict')}, not pass: comparisons with it cannot "
                       "make a pass (--accept-incomplete-baseline accepts it)")
    verdict = "fail" if regressions(comparison) else "incomplete" if reasons else "pass"
    return verdict, "; ".join(reasons) or None


def regressions(comparison: dict[str, Any]) -> list[str]:
    return [f"{m}: {name}" for m, per in comparison["models"].items()
            for name, r in per["results"].items() if r.verdict == "regression"]


def _row(r: Result) -> list[str]:
    if r.verdict == "not_compared":
        return [r.name, "-", "-", "-", "-", "-", "-", "not compared", r.reason]
    if isinstance(r.delta, list):
        return [r.name, fmt(r.baseline), fmt(r.candidate), fmt(max(r.delta, key=abs)), "-", "-", "-", r.verdict, r.reason]
    ci = f"[{fmt(r.ci[0])}, {fmt(r.ci[1])}]" if r.ci else "-"
    p = fmt(r.p_value_holm) if r.p_value_holm is not None else "-"
    delta = f"{r.delta:+.4f}" if isinstance(r.delta, (int, float)) else fmt(r.delta)
    said = r.test
    if r.per_class is not None:  # its numbers are one class's: name it, and the classes significantly worse
        worse = r.per_class.get("worse") or []
        said += f"; numbers of class {r.per_class.get('shown')}" + (
            "; significantly worse: " + first_few([f"{w['class']} {fmt(w['baseline'])} -> {fmt(w['candidate'])}" for w in worse],
                                                  10, ", ")
            if worse else "")
    ec = r.error_consistency
    kappa = kappa_text(ec).removeprefix("kappa ") if ec else "-"
    if ec and ec.get("below"):  # the errors moved: say it where the verdict is read
        said = f"errors moved (kappa below {ec['below']}); {said}"
    return [r.name, fmt(r.baseline), fmt(r.candidate), delta, ci, p, kappa, r.verdict, said]


HEADER = ["comparison", "baseline", "new", "delta", "95% CI", "Holm p", "kappa [95%]", "verdict", "test / reason"]


ORDER = {name: i for i, name in enumerate(ALL_COMPARED)}  # the fixed comparisons, then corruption conditions, then mCE


def render(comparison: dict[str, Any], form: str = "table") -> str:
    if form == "json":  # non-finite numbers become null, as in the report
        models = {m: {"baseline_model": per["baseline_model"], "results": {k: r.to_dict() for k, r in per["results"].items()}}
                  for m, per in comparison["models"].items()}
        return json.dumps(to_jsonable({**comparison, "models": models}), indent=2, allow_nan=False)
    lines = []
    for model, per in comparison["models"].items():
        rows = [_row(r) for r in sorted(per["results"].values(),
                                        key=lambda r: (VERDICTS.index(r.verdict), ORDER.get(r.name, len(ORDER))))]
        title = f"{model} vs {per['baseline_model']}" + ("" if comparison["paired"] else " (UNPAIRED: "
                                                         + "; ".join(comparison["problems"]) + ")")
        if form == "markdown":
            lines += [f"### {title}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows] + [""]
        else:
            widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER[:-1])]
            lines += [title, "  ".join(h.ljust(w) for h, w in zip(HEADER, widths)) + "  " + HEADER[-1]]
            lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows] + [""]
    if comparison.get("baseline_only"):
        lines.append(baseline_only_said(comparison["baseline_only"], "OLD", "NEW"))
    if comparison.get("accepted"):
        lines.append(f"the old report has verdict {comparison.get('baseline_verdict')}, not pass; accepted "
                     "(--accept-incomplete-baseline)")
    if comparison.get("new_verdict") is not None:  # not compare's verdict: a CI reader must not take one for the other
        lines.append(f"NEW's own verdict: {comparison['new_verdict']}"
                     + ("" if comparison["new_verdict"] == "pass" else " (its own gates; this comparison does not judge them)"))
    found = regressions(comparison)
    verdict, reason = comparison.get("verdict") or comparison_verdict(comparison)[0], comparison.get("verdict_reason")
    for side, key in (("OLD", "baseline_selection"), ("NEW", "new_selection")):  # right above the verdict, as NEW's own
        if text := subset_text(comparison.get(key)):
            lines.append(f"{side} was {text}: only the tests it ran are compared")
    lines.append(f"{verdict.upper()}: {len(found)} regression(s)" + (": " + ", ".join(found) if found else "")
                 + (f"; not a pass: {reason}" if reason else ""))
    return "\n".join(lines)
