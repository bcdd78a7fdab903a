"""The baseline family: each model against the previous release's report, paired image by image.

What is compared (:data:`COMPARED`), where each side's per-image outcomes come from (:class:`ModelOutcomes`:
a saved report, or the running audit), and :func:`compare_model`, which computes one model's whole
comparison set, so Holm's correction over it is known wherever one of its comparisons is judged.
The statistics and verdicts are in baseline/statistics.py; what makes two reports pairable, in baseline/pairing.py.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from visionaudit.data.fingerprint import SampleSet
from visionaudit.errors import DataError
from visionaudit.families import thresholds as f
from visionaudit.families.assessment import NotApplicable, NotJudged
from visionaudit.families.baseline import corruptions as corr
from visionaudit.families.baseline import uncompared as uc
from visionaudit.families.baseline.compared import (  # noqa: F401  (re-exported: the family's public names)
    ALL_COMPARED,
    CLASS_KINDS,
    COMPARED,
    CORRUPTION_COMPARED,
    RIGHT_WRONG_KINDS,
    TOLERANCE_KEYS,
    Compared,
    baseline_comparisons,
    comparisons_for,
    corruption_outcomes,
    data_role,
    nothing_right,
)
from visionaudit.families.baseline.consistency import (
    consistency_of,
    judge_consistency,
    kappa_text,
    pooled_consistency,
)
from visionaudit.families.baseline.lost import top1_names, with_lost_examples
from visionaudit.families.baseline.settings import Settings, settings_from  # noqa: F401  (re-exported)
from visionaudit.families.baseline.statistics import (
    Result,
    Tolerance,  # noqa: F401  (re-exported)
    accuracy_change,
    balanced_accuracy_change,
    judge,
    p_resamples_for,
    per_class_change,
    shape_bias_change,
    shape_bias_hits,
    unpaired_change,
    vector_change,
)
from visionaudit.families.baseline.summary import summary_lines as summary_lines
from visionaudit.families.outcomes import Outcome, decode, decode_labels
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import (
    CountsLabelled,
    Family,
    get_family,
    register_family,
)
from visionaudit.formatting import first_few, fmt


class BaselineWarning(UserWarning):
    """A change against the baseline that is not a regression on its own evidence (one of tolerance and significance
    holds). Defined here, not in the audit: pytest-xdist re-imports a warning's class by its module on the controller."""


@dataclass
class ModelOutcomes:
    """One model's per-image outcomes by condition, and its deterministic metrics (channel shares)."""

    model: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    shares: list[float] | None = None
    # How the stimuli were scored (shape_bias stimulus_geometry mode, 16-class aggregation): decisions made
    # another way are not the same measurement, so the three stimulus comparisons need these equal.
    stimulus_protocol: dict[str, Any] = field(default_factory=dict)
    # From a saved report: test -> how its entries without usable outcomes ended (why a condition is absent),
    # and family -> the tests of it the report holds (a family present may still lack the one test compared).
    ended: dict[tuple[str, str | None], list[str]] | None = None  # keyed by (test, condition: None where not known)
    ran: dict[str, set[str]] = field(default_factory=dict)
    tested: dict[str, set[str | None]] = field(default_factory=dict)  # test -> the conditions its entries were of
    selection: dict[str, Any] | None = None  # the report's run.selection: a subset says why a test is not in it
    # Each labelled image's class by name (schema 5 on: the clean accuracy entry's labels); None when not recorded.
    classes: Outcome | None = None
    schema: int | None = None  # of the report it was read from (None: this run)
    corruption_summary: str | None = None  # "mce" (ImageNet-1k label space) or "mean_error"; None: no corruption entry
    # condition -> each image's top-1 class by name (schema 6 on: ``outcomes.top1``), to name the images a release lost.
    top1: dict[str, Outcome] = field(default_factory=dict)
    # How the corruption images were made (corruptions.protocol_of; feed recorded, not compared); empty: not recorded.
    corruption_protocol: dict[str, Any] = field(default_factory=dict)
    # This run's side: why it measured no corruption condition of the model (an ImageNet-C folder does not apply to a
    # model of its own classes), said by each corruption comparison instead of the generic "did not score".
    corruption_absent: str | None = None

    def add(self, sample_set: SampleSet, condition: str, values: Any) -> None:
        self.outcomes[condition] = Outcome(sample_set.role, condition, sample_set.ids, np.asarray(values))

    def add_classes(self, sample_set: SampleSet, names: Any) -> None:
        """Each image's class, by the name the model gives it (its ``per_class`` table's key)."""
        self.classes = Outcome(sample_set.role, "classes", sample_set.ids, np.asarray(names, dtype=object))

    def add_top1(self, sample_set: SampleSet, condition: str, names: Any) -> None:
        """Each image's top-1 class under ``condition``, by name (as ``lost.class_namer`` names them)."""
        self.top1[condition] = Outcome(sample_set.role, condition, sample_set.ids, np.asarray(names, dtype=object))


def outcomes_from_report(report: dict[str, Any], spec: str) -> ModelOutcomes:
    """What a saved report holds for ``spec``: its entries' per-image outcomes and channel shares.
    A report that does not hold together (missing fields, outcomes of another length than their set's
    ids) is a DataError naming what is wrong."""
    try:
        samples = {role: SampleSet.from_dict(role, s) for role, s in (report.get("samples") or {}).items()}
        out = ModelOutcomes(spec, ended={}, schema=report.get("schema_version"),
                            selection=(report.get("run") or {}).get("selection"))
        for e in report.get("audits", []):
            if e.get("model") != spec or e.get("control"):
                continue
            test, condition = test_name(str(e.get("nodeid") or "")), uc.entry_condition(e)
            out.ran.setdefault(str(e.get("audit")), set()).add(test)
            out.tested.setdefault(test, set()).add(condition)
            # A not_judged gate (too few images for its own bound) still measured every image: its outcomes are a
            # baseline for a run of the same size.
            if e.get("outcome") not in ("passed", "failed", "not_judged"):
                out.ended.setdefault((test, condition), []).append(str(e.get("outcome")).replace("_", " "))
                continue
            metrics = e.get("metrics") or {}
            o = e.get("outcomes")
            if o and o.get("set") in samples:
                values = decode(o)
                ids = samples[o["set"]].ids
                if len(values) != len(ids):
                    raise DataError(f"{e['nodeid']}: {len(values)} per-image outcomes for the {len(ids)} sample "
                                    f"ids of {o['set']}")
                out.add(samples[o["set"]], o["condition"], values)
                if o.get("labels") and o["condition"] == "clean":
                    out.add_classes(samples[o["set"]], _class_names(e, decode_labels(o["labels"]), len(ids)))
                if o.get("top1"):  # schema 6 on
                    out.add_top1(samples[o["set"]], o["condition"],
                                 top1_names(report, spec, e, decode_labels(o["top1"]), len(ids)))
            if e.get("audit") == "channel_bias" and isinstance(metrics.get("shares"), list):
                out.shares = metrics["shares"]
            if e.get("audit") == "shape_bias":
                out.stimulus_protocol.update({"stimulus_geometry": (metrics.get("stimulus_geometry") or {}).get("mode"),
                                              "aggregation": metrics.get("aggregation")})
        out.corruption_summary = corr.report_summary(report, spec)
        out.corruption_protocol = corr.report_protocol(report, spec)
    except (KeyError, TypeError, AttributeError) as e:
        raise DataError(f"the report's per-image data is incomplete ({type(e).__name__}: {e}); is it a visionaudit "
                        "report, intact?") from None
    return out


def _class_names(entry: dict[str, Any], labels: np.ndarray, n: int) -> np.ndarray:
    """Each image's class name: its output index named by the entry's ``per_class`` table."""
    by_index = {int(c["index"]): str(name) for name, c in ((entry.get("tables") or {}).get("per_class") or {}).items()}
    if len(labels) != n or any(int(i) not in by_index for i in set(labels.tolist())):
        raise DataError(f"{entry['nodeid']}: {len(labels)} per-image classes for {n} images, or classes its per_class "
                        "table does not name; is the report intact?")
    return np.array([by_index[int(i)] for i in labels], dtype=object)


def test_name(nodeid: str) -> str:
    """A report entry's test function: ``audits/test_shape_bias.py::test_shape_bias[m]`` -> ``test_shape_bias``."""
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def _compare_one(old: ModelOutcomes, new: ModelOutcomes, c: Compared, s: Settings) -> Result:
    r = Result(c.name, c.metric, get_family(c.family).higher_is_better_for(c.metric), tolerance=s.tolerances[c.name])
    if c.kind == "summary":
        return _compare_summary(old, new, c, s, r)
    missing = uc.missing(old, new, c)
    if missing:
        r.missing, r.missing_side = missing
        r.reason = r.missing
        return r
    if c.kind == "vector":
        return vector_change(r, old.shares, new.shares)
    a, b = old.outcomes[c.condition], new.outcomes[c.condition]
    if c.kind == "error":  # kernels against a folder, other images or protocol: this run could have measured as the
        unpaired = corr.not_paired(c.condition, a, b) or corr.protocol_difference(old.corruption_protocol,
                                                                                  new.corruption_protocol)
        if unpaired:  # baseline did, so not judged (the candidate's side), never a pass
            return uc.not_compared(r, unpaired, "candidate")
    if not s.paired and c.kind in CLASS_KINDS:
        return uc.not_compared(r, "compared only image by image (paired): the reports did not score the same images")
    r.n = uc.images(c, a, b, s.paired)
    if (why := uc.too_few(c, r.n, s.min_images, s.paired) or nothing_right(c, a, b)) is not None:  # a pass on (almost)
        return uc.not_compared(r, why, "candidate")  # nothing: 0 against 0 is "unchanged" by every test
    if not s.paired:
        return unpaired_change(r, _counts(a, c), _counts(b, c))
    old_values = a.aligned_to(b.ids)
    if c.kind in CLASS_KINDS:
        classes = new.classes.aligned_to(b.ids)
        old_classes = old.classes.aligned_to(b.ids)
        differ = np.flatnonzero(old_classes != classes)
        if differ.size:  # other class names for the same images: not the same per-class measurement
            k = int(differ[0])
            r.missing = r.reason = (f"the two runs give {differ.size} images other classes (e.g. {b.ids[k]}: "
                                    f"{old_classes[k]!r} in the baseline, {classes[k]!r} here)")
            r.missing_side = "setup"
            return r
        if c.kind == "balanced":
            return balanced_accuracy_change(r, b.ids, classes, old_values, b.values, s.resamples, s.seed, s.p_resamples)
        return per_class_change(r, classes, old_values, b.values, s.min_class_images)
    if c.kind == "shape_bias":
        return shape_bias_change(r, b.ids, old_values, b.values, s.resamples, s.seed, s.p_resamples)
    if c.kind == "category":
        truth = np.array([i.split("/")[0] for i in b.ids], dtype=object)
        return accuracy_change(r, b.ids, old_values == truth, b.values == truth, s.resamples, s.seed)
    if c.kind == "error":
        return corr.error_change(r, b.ids, old_values, b.values, s.resamples, s.seed)
    return accuracy_change(r, b.ids, old_values, b.values, s.resamples, s.seed)


def _compare_summary(old: ModelOutcomes, new: ModelOutcomes, c: Compared, s: Settings, r: Result) -> Result:
    """The mCE or mean error over the conditions both sides scored, paired (corruptions.summary_change)."""
    for side, o in (("baseline", old), ("candidate", new)):
        if not corruption_outcomes(o):
            conditions = Compared(c.name, c.family, "error", "corruption conditions", "error", "test_corruption")
            why = o.corruption_absent or uc.absent(o, conditions, per_condition=False)  # the test's entries, all conditions
            return uc.not_compared(r, f"the {side} has no per-image corruption outcomes ({why})", side)
    if not s.paired:
        return uc.not_compared(r, "compared only image by image (paired): the reports did not score the same images")
    if old.corruption_summary != new.corruption_summary:
        return uc.not_compared(r, f"the baseline's corruption summary is the {old.corruption_summary}, this run's the "
                                   f"{new.corruption_summary}: label spaces of another kind (the mCE is ImageNet-1k's)")
    if c.name != new.corruption_summary:
        space = "an ImageNet-1k label space" if new.corruption_summary == "mce" else "its own label space: no mCE"
        return uc.not_compared(r, f"{new.model}'s corruption summary is compared as {new.corruption_summary} ({space})")
    a, b = corruption_outcomes(old), corruption_outcomes(new)
    keys, said = corr.summary_keys(a, b)
    if not keys:  # said: why (kernels against a folder, or no benchmark condition in common): the candidate's side
        return uc.not_compared(r, said, "candidate")
    if corr.protocol_difference(old.corruption_protocol, new.corruption_protocol):  # this run measured otherwise
        return uc.not_compared(r, corr.protocol_difference(old.corruption_protocol, new.corruption_protocol), "candidate")
    ids = b[keys[0]].ids
    try:
        old_bits = np.stack([a[k].aligned_to(ids) for k in keys]).astype(bool)
        new_bits = np.stack([b[k].aligned_to(ids) for k in keys]).astype(bool)
    except DataError:
        first = next((k for k in keys if set(a[k].ids) != set(b[k].ids)), keys[0])
        return uc.not_compared(r, corr.other_images(corr.condition_name(*first), a[first].ids, b[first].ids, b[first].role),
                               "candidate")
    r.n = len(ids)
    if (why := uc.too_few(c, r.n, s.min_images)) is not None:  # "unchanged" over a handful: a pass on almost nothing
        return uc.not_compared(r, why, "candidate")
    if not old_bits.any() and not new_bits.any():  # every condition error 1 against 1: "unchanged", a pass on nothing
        return uc.not_compared(r, corr.nothing_right_summary(c.name, keys, ids), "candidate")
    said += corr.feed_note(old.corruption_protocol, new.corruption_protocol)  # compared across: the feed is the model's
    corr.summary_change(r, c.name, keys, old_bits, new_bits, s.resamples, s.seed, said, s.p_resamples)
    # Error consistency judged once for the family: pooled over every condition both scored (consistency.py).
    common = [k for k in corr.ALL_CONDITIONS if k in a and k in b]
    try:
        pooled_old = np.stack([a[k].aligned_to(ids) for k in common]).astype(bool)
        pooled_new = np.stack([b[k].aligned_to(ids) for k in common]).astype(bool)
    except DataError:  # an extra condition on other images: pool the benchmark conditions of the summary
        pooled_old, pooled_new = old_bits, new_bits
    r.error_consistency = pooled_consistency(pooled_old, pooled_new, s.resamples, s.seed)
    return r


def _with_consistency(r: Result, old: ModelOutcomes, new: ModelOutcomes, c: Compared, s: Settings) -> Result:
    """``error_consistency`` of a paired right/wrong comparison (visionaudit/families/baseline/consistency.py)."""
    if r.missing or not s.paired or c.kind not in RIGHT_WRONG_KINDS or c.condition not in old.outcomes \
            or c.condition not in new.outcomes:
        return r
    a, b = old.outcomes[c.condition], new.outcomes[c.condition]
    old_values, new_values = a.aligned_to(b.ids), b.values
    if c.kind == "category":
        truth = np.array([i.split("/")[0] for i in b.ids], dtype=object)
        old_values, new_values = old_values == truth, new_values == truth
    r.error_consistency = consistency_of(old_values, new_values, s.resamples, s.seed)
    return r


def _counts(o: Outcome, c: Compared) -> tuple[int, int]:
    """(hits, n): correct images, or shape hits among shape + texture hits."""
    if c.kind == "shape_bias":
        shape, texture = shape_bias_hits(o.ids, o.values)
        return int(shape.sum()), int(shape.sum() + texture.sum())
    hits = o.values == np.array([i.split("/")[0] for i in o.ids], dtype=object) if c.kind == "category" else o.values
    if c.kind == "error":  # a corruption condition's error: the wrong images
        return len(o.values) - int(np.sum(hits)), len(o.values)
    return int(np.sum(hits)), len(o.values)


def compare_model(old: ModelOutcomes, new: ModelOutcomes, settings: Settings, extra: Any = ()) -> dict[str, Result]:
    """Every comparison of one model with its baseline (:func:`comparisons_for`; ``extra``: comparison names a run
    asks for besides), judged together (Holm over its p-values), then each right/wrong comparison's error
    consistency judged (visionaudit/families/baseline/consistency.py)."""
    compared = comparisons_for(old, new, extra)
    # Holm's first step is alpha / m over the m p-valued comparisons: enough Monte Carlo resamples to go below it.
    m = sum(1 for c in compared.values() if c.kind != "vector")
    settings = replace(settings, p_resamples=p_resamples_for(m, settings.alpha, settings.resamples))
    results = judge({name: with_lost_examples(_with_consistency(_compare_one(old, new, c, settings), old, new, c, settings),
                                              old, new, c)
                     for name, c in compared.items()}, settings.alpha)
    judge_consistency(results, {k: c.kind for k, c in compared.items()}, settings.min_kappa, settings.kappa_warning)
    return results


@dataclass(frozen=True)
class BaselineComparison:
    """One comparison of one model with its baseline (judged with the model's others: Holm over them)."""

    result: Result
    baseline_model: str  # the baseline report's spec
    paired: bool


def assess_comparison(record: AuditRecord, measured: BaselineComparison, thresholds: Mapping[str, Any],
                      context: Mapping[str, Any]) -> None:
    """A regression (worse beyond its tolerance AND significant) fails; a change where only one of the two
    holds passes with a :class:`BaselineWarning`; nothing to compare is not judged (this run could not measure
    it) or not applicable (the baseline never measured it)."""
    result, old_spec = measured.result, measured.baseline_model
    record.metric("baseline_model", old_spec)
    record.metric("paired", measured.paired)
    for name, value in result.to_dict().items():
        if name != "name":
            record.metric(name, value)
    record.threshold("alpha", thresholds["alpha"])
    record.threshold("min_images", thresholds["min_images"])
    if result.tolerance is not None:
        record.threshold("tolerance", result.tolerance.absolute)
        if result.tolerance.relative is not None:
            record.threshold("relative_tolerance", result.tolerance.relative)
    if result.verdict == "not_compared":
        if result.missing_side == "candidate":  # this run could not measure what the gate needs
            record.not_judged = f"not compared with {old_spec}: {result.reason}"
            raise NotJudged(record.not_judged)
        raise NotApplicable(f"not compared with {old_spec}: {result.reason}")  # nothing in the baseline to hold it to
    where = f"{context['model']} vs {old_spec}, {context['comparison']}: {fmt(result.baseline)} -> {fmt(result.candidate)}"
    if result.per_class is not None:  # its numbers are one class's: say which (the reason names the others)
        where = f"{context['model']} vs {old_spec}, {context['comparison']}"
    lost = (f"; {result.lost_count} images went from right to wrong: {first_few(result.lost, 5, ', ', result.lost_count)}"
            if result.lost_count else "")
    ec = result.error_consistency or {}
    if ec.get("below") and result.verdict == "improvement":  # the errors moved though the metric improved
        warnings.warn(BaselineWarning(f"{where}: errors moved, {kappa_text(ec)} below kappa_warning "
                                      f"{thresholds['kappa_warning']:g}; {result.reason}"), stacklevel=2)
    if result.verdict == "warning":
        warnings.warn(BaselineWarning(f"{where}: {result.reason}{lost}"), stacklevel=2)
    if result.verdict == "regression":
        raise AssertionError(f"{where}: regression, {result.reason}{lost}")


FAMILY = register_family(Family(
    name="baseline",
    gates="no regression against the previous release's report, image by image (--audit-baseline PREV.json): "
          "McNemar on accuracies, a sign-flip test on balanced accuracy, McNemar per class (Holm over the "
          "classes) on per-class accuracy, a paired permutation test on shape bias, tolerance on channel shares, McNemar "
          "per corruption condition and a sign-flip test on the mCE (or mean error), Holm per model; error consistency "
          "(kappa) on every paired right/wrong comparison",
    key_metric="verdict",
    higher_is_better=None,  # each comparison takes its metric's direction from that metric's family
    assessors={"against_baseline": assess_comparison},
    metrics=("delta", "baseline", "candidate", "ci", "p_value", "p_value_holm", "lost", "lost_examples", "classes_lost",
             "per_class", "baseline_model", "error_consistency"),
    thresholds={
        "tolerance": f.per_name(TOLERANCE_KEYS, f.nonnegative(), "absolute change allowed per metric or comparison "
                                "(top1 covers every transform; top1_rotation overrides it)",
                                default={"clean_top1": 0.005, "balanced_accuracy": 0.005, "class_accuracy": 0.05,
                                         "top1": 0.01, "shape_bias": 0.02, "edges_accuracy": 0.03,
                                         "silhouettes_accuracy": 0.03, "shares": 0.005,
                                         # error: every condition (corruption_fog_3 overrides it); mCE in % (AlexNet 100)
                                         "error": 0.02, "mce": 1.0, "mean_error": 0.01}),
        "relative_tolerance": f.per_name(TOLERANCE_KEYS, f.nonnegative(), "change allowed relative to the baseline value; "
                                         "when given, a regression must exceed both", default={}),
        "alpha": f.level("significance level of the paired tests after Holm's correction over one model's comparisons",
                         default=0.05),
        "bootstrap_resamples": f.count("resamples of the paired bootstrap intervals, and the least of the Monte Carlo "
                                       "p-values (shape bias, mCE, balanced accuracy beyond 20 changed images), which draw "
                                       "ceil(20 m / alpha) for m p-valued comparisons when that is more", default=2000),
        "min_kappa": f.number("error consistency (Cohen's kappa of the two releases' right/wrong per image): below this an "
                              "accuracy-like comparison fails even when its accuracy held (-1: off)", minimum=-1.0, maximum=1.0,
                              default=-1.0),
        "kappa_warning": f.number("error consistency: below this kappa an unchanged comparison is a warning", minimum=-1.0,
                                  maximum=1.0, default=0.5),
        "min_images": f.min_images("paired images in a comparison (shape bias: its conflicting cue-conflict images; "
                                   "not channel shares, which are weights)", default=20),
        "min_class_images": f.count("paired images a class needs for its own comparison (per_class_accuracy); classes "
                                    "with fewer are named as not compared", default=10),
    },
    summary_lines=summary_lines,
    one_worker_per_model=True,  # Holm over the model's comparison set
    shares_worker_with="corruption",  # its live side reads the corruption run (15 x 5 conditions by default) again
    needs_a_judgement=True,  # a baseline gate that compared nothing has not passed
    # Its comparisons of the labelled images (clean, robustness, corruption) pair this run's: its tests reading them
    counts_labelled=CountsLabelled(),
    html_section="visionaudit.html.sections:baseline",
))
