"""The corruption audit's measurement and judging: what a model's tests share (:class:`Corrupted`, one run per
model), what each test measured (:class:`ConditionScore`, :class:`MceScore`), and the assessors that record
and gate them (a condition's error, the mCE)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from visionaudit.families.assessment import (
    NotApplicable,
    NotJudged,
    PerImage,
    require_count,
)
from visionaudit.families.corruption.imagenet_c import (
    BENCHMARK,
    NOT_COMPARABLE,
    summarize,
)
from visionaudit.families.corruption.scoring import (
    Unavailable,
    condition_name,
    holm_over_conditions,
    mce_interval,
    mean_error_interval,
    own_summary,
    paired,
)

# The context key under which a shard's corruption measurement describes itself (PerImage.context): how the images
# were scored, and for the mCE which conditions were scored and which corruptions were not available.
MEASUREMENT = "corruption_measurement"
from visionaudit.families.records import AuditRecord


@dataclass(frozen=True)
class ConditionScore:
    """One corruption at one severity, as its test measures it. ``measure()`` scores it (a ``Condition``, or
    ``Unavailable`` with the reason it is not available here); the assessor calls it only once the image
    count is judged enough, so that a gate with too few images corrupts nothing."""

    protocol: Mapping[str, Any]  # how the images were scored: every corruption entry records it
    n_images: int
    sample_set: Any  # a SampleSet, what per-image outcomes are keyed by; None for an ImageNet-C folder
    measure: Callable[[], Any]


@dataclass(frozen=True)
class MceConditions:
    """Every benchmark condition of one model, the clean pass and the JPEG-only pass (None when not made)."""

    conditions: dict[tuple[str, int], Any]  # (corruption, severity) -> Condition
    errors: dict[str, dict[int, float]]  # the corruptions scored at every severity
    missing: dict[str, str]  # corruption -> why it is not available
    clean: np.ndarray | None
    jpeg_only: np.ndarray | None


@dataclass(frozen=True)
class MceScore:
    """The mCE test's measurement: ``measure()`` scores every condition (after the count is judged)."""

    protocol: Mapping[str, Any]
    n_images: int
    comparable: bool
    measure: Callable[[], MceConditions]


@dataclass(frozen=True)
class Corrupted:
    """What the corruption tests of one model share. In a shard (``split``) each test measures at once and hands
    its assessor per-image arrays (:class:`PerImage`: the condition's and the clean pass's right/wrong bits), so
    that ``visionaudit merge`` judges the shards' arrays together with the same assessor."""

    run: Any  # a CorruptionRun (the kernels) or a FolderRun (an ImageNet-C folder)
    sample_set: Any  # the SampleSet per-image outcomes are keyed by ("corruption", or "imagenet-c" for a folder)
    source: str  # "kernels" or "ImageNet-C folder DIR"
    subset: str | None  # "150 of 1000 labelled images" when a subset was scored (of the whole run, in a shard too)
    comparable: bool  # an mCE that can be set beside published ones (the complete ImageNet-C folder)
    split: bool = False  # a shard (--audit-shard): the run holds the shard's part of the images

    @property
    def n_images(self) -> int:
        return self.run.n_images

    def protocol_metrics(self, jpeg: bool) -> dict[str, Any]:
        """What every corruption entry records of how it was measured."""
        return {"n_images": self.n_images, **self._described(jpeg)}

    def _described(self, jpeg: bool) -> dict[str, Any]:
        """The protocol metrics but the image count: the same in every shard of a run. ``not_honoured``: the settings
        the run could not follow and what it did instead (a CorruptionRun's; an ImageNet-C folder's run has none),
        only when there are any."""
        not_honoured = dict(getattr(self.run, "not_honoured", None) or {})
        return {"source": self.source, "subset": self.subset, "comparable": self.comparable, "protocol": self.run.describe(jpeg),
                **({"not_honoured": not_honoured} if not_honoured else {})}

    def condition_score(self, corruption: str, severity: int, jpeg: bool) -> ConditionScore | PerImage:
        if not self.split:
            return ConditionScore(self.protocol_metrics(jpeg), self.n_images, self.sample_set,
                                  lambda: self.run.condition(corruption, severity))
        described = self._described(jpeg)
        try:
            r = self.run.condition(corruption, severity)
        except Unavailable as e:  # judged (skipped, saying why) by the assessor, in the shard and in the merge alike
            return PerImage(self.sample_set, {}, {MEASUREMENT: {**described, "unavailable": str(e)}})
        clean = self.run.clean()
        # top1: the condition's top-1 output index per image (names the images a later release lost), as merge
        # carries the accuracy and robustness families' top1
        arrays = {"correct": r.correct, **({"clean": clean} if clean is not None else {}),
                  **({"top1": r.predicted} if r.predicted is not None else {})}
        return PerImage(self.sample_set, arrays, {MEASUREMENT: described})

    def mce_score(self, corruptions: Sequence[str], severities: Sequence[int], jpeg: bool) -> MceScore | PerImage:
        def measure() -> MceConditions:
            errors: dict[str, dict[int, float]] = {}
            conditions: dict[tuple[str, int], Any] = {}
            missing: dict[str, str] = {}
            for corruption in corruptions:
                try:
                    for s in severities:
                        r = self.run.condition(corruption, s)
                        errors.setdefault(corruption, {})[s], conditions[(corruption, s)] = r.error, r
                except Unavailable as e:
                    errors.pop(corruption, None)
                    for s in severities:  # a corruption left out of the mCE is left out of its interval too
                        conditions.pop((corruption, s), None)
                    missing[corruption] = f"not available: {e}"
            return MceConditions(conditions, errors, missing, self.run.clean(), self.run.jpeg_only() if jpeg else None)

        if not self.split:
            return MceScore(self.protocol_metrics(jpeg), self.n_images, self.comparable, measure)
        m = measure()
        arrays = {condition_name(*k): r.correct for k, r in m.conditions.items()}
        arrays.update({name: bits for name, bits in (("clean", m.clean), ("jpeg_only", m.jpeg_only)) if bits is not None})
        return PerImage(self.sample_set, arrays,
                        {MEASUREMENT: {**self._described(jpeg), "conditions": [list(k) for k in m.conditions],
                                                                "missing": m.missing}})


def _condition_from_arrays(measured: PerImage, context: Mapping[str, Any]) -> ConditionScore:
    """A shard's (or the merged shards') arrays as the condition's measurement: the error, its interval and the
    McNemar test against clean computed from the bits by the function the unsharded run uses."""
    described = dict(context[MEASUREMENT])
    unavailable = described.pop("unavailable", None)
    n = len(measured.sample_set.ids)

    def measure() -> Any:
        if unavailable is not None:
            raise Unavailable(unavailable)
        arrays = measured.arrays
        return paired(context["corruption"], int(context["severity"]), np.asarray(arrays["correct"], dtype=bool),
                      None if "clean" not in arrays else np.asarray(arrays["clean"], dtype=bool),
                      None if "top1" not in arrays else np.asarray(arrays["top1"], dtype=np.int64))  # absent in a schema-5 part

    return ConditionScore({"n_images": n, **described}, n, measured.sample_set, measure)


def _mce_from_arrays(measured: PerImage, context: Mapping[str, Any]) -> MceScore:
    """A shard's (or the merged shards') arrays as the mCE test's measurement: every scored condition paired with
    the clean pass again, the missing corruptions as measured."""
    described = dict(context[MEASUREMENT])
    scored, missing = described.pop("conditions"), dict(described.pop("missing"))
    n = len(measured.sample_set.ids)
    bits = {k: np.asarray(v, dtype=bool) for k, v in measured.arrays.items()}

    def measure() -> MceConditions:
        clean = bits.get("clean")
        conditions = {(c, int(s)): paired(c, int(s), bits[condition_name(c, s)], clean) for c, s in scored}
        errors: dict[str, dict[int, float]] = {}
        for (c, s), r in conditions.items():
            errors.setdefault(c, {})[s] = r.error
        return MceConditions(conditions, errors, missing, clean, bits.get("jpeg_only"))

    return MceScore({"n_images": n, **described}, n, bool(described["comparable"]), measure)


def _record_protocol(record: AuditRecord, protocol: Mapping[str, Any], n_images: int, thresholds: Mapping[str, Any],
                     bounds: Mapping[str, Any]) -> None:
    """The protocol, then ``bounds`` (name -> value), then the count: a not_judged entry records what it would have
    been held to, as a judged one does."""
    for name, value in protocol.items():
        record.metric(name, value)
    for name, value in bounds.items():
        record.threshold(name, value)
    require_count(record, thresholds, n_images, "images")


def assess_condition(record: AuditRecord, measured: ConditionScore, thresholds: Mapping[str, Any],
                     context: Mapping[str, Any]) -> None:
    """One condition's top-1 error within max_error (or its corruption's own bound)."""
    corruption, severity = context["corruption"], context["severity"]
    if isinstance(measured, PerImage):  # a shard, or the merge of the shards
        measured = _condition_from_arrays(measured, context)
    bound = thresholds.entry("max_error_by_corruption", corruption, fallback="max_error")
    # alpha: Holm's level over the model's conditions, in the report (_aggregate)
    _record_protocol(record, measured.protocol, measured.n_images, thresholds, {"alpha": thresholds["alpha"], "max_error": bound})
    if not context.get("imagenet", True):  # the report's summary of its conditions is then no mCE
        record.metric("alexnet_normalized", False)
    try:
        r = measured.measure()
    except Unavailable as e:
        record.metric("available", False)
        raise NotApplicable(f"not available: {e}") from None
    if measured.sample_set is not None:  # what a later release is compared with, image by image
        record.outcomes_on(measured.sample_set, condition_name(corruption, severity), correct=r.correct, top1=r.predicted)
    for name in ("error_ci", "clean_error", "p_value", "discordant"):
        record.metric(name, getattr(r, name))
    if not record.check_max("error", r.error, "max_error", bound):
        raise AssertionError(
            f"{context['model']}: top-1 error {r.error:.3f} (95% CI {r.error_ci[0]:.3f}..{r.error_ci[1]:.3f}) under {corruption} "
            f"at severity {severity} is above max_error {bound} (clean {r.clean_error:.3f}, {measured.n_images} images)")


def _error(correct: np.ndarray) -> float:
    """Share wrong as errors / n (``1 - mean`` stores 0.16 as 0.16000000000000003)."""
    correct = np.asarray(correct, dtype=bool)
    return int((~correct).sum()) / correct.size if correct.size else float("nan")


def _measure_and_record_references(record: AuditRecord, measured: MceScore, thresholds: Mapping[str, Any],
                                    bounds: tuple[str, ...]):
    """What the mCE and the mean error share: the protocol, the measured conditions, and the clean and JPEG-only
    errors they are read against. Returns the measured score, the clean outcomes and the clean error (None without)."""
    _record_protocol(record, measured.protocol, measured.n_images, thresholds, {b: thresholds[b] for b in bounds})
    measured = measured.measure()
    clean = measured.clean
    clean_error = None if clean is None else _error(clean)
    record.metric("clean_error", clean_error)
    jpeg_only = measured.jpeg_only
    record.metric("jpeg_only_error", None if jpeg_only is None else _error(jpeg_only))
    return measured, clean, clean_error


def _require_scored(record: AuditRecord, measured: MceConditions, thresholds: Mapping[str, Any], what: str) -> None:
    """No benchmark corruption scored (none configured, or none available: an ImageNet-C folder without them, frost
    without its pictures): the gate is not judged, saying why, instead of an error from averaging nothing."""
    if any(measured.errors.get(c) for c in BENCHMARK):
        return
    if not thresholds["corruptions"]:
        why = "[audits.corruption] corruptions is empty (the extras are scored outside it); configure at least one"
    else:
        why = "; ".join(f"{c}: {reason}" for c, reason in measured.missing.items()) or "none was scored"
    record.not_judged = f"no ImageNet-C benchmark corruption was scored, so there is no {what} to judge: {why}"
    raise NotJudged(record.not_judged)


def _record_condition_tables(record: AuditRecord, measured: Any, thresholds: Mapping[str, Any]) -> None:
    record.table("errors", measured.errors)
    record.table("holm", holm_over_conditions({condition_name(*k): r.p_value for k, r in measured.conditions.items()},
                                              thresholds["alpha"]))


def assess_mce(record: AuditRecord, measured: MceScore, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """The mCE (AlexNet = 100) within max_mce, with its bootstrap interval and Holm over the conditions; for a
    model whose label space is not ImageNet-1k (``context["imagenet"]`` false), the mean error and the mean
    rise over its own clean error instead (:func:`assess_mean_error`): AlexNet's errors are ImageNet-1k's."""
    if isinstance(measured, PerImage):  # a shard, or the merge of the shards
        measured = _mce_from_arrays(measured, context)
    if not context.get("imagenet", True):
        return assess_mean_error(record, measured, thresholds, context)
    comparable = measured.comparable
    measured, clean, clean_error = _measure_and_record_references(record, measured, thresholds, ("max_mce",))
    _require_scored(record, measured, thresholds, "mCE")
    summary = summarize(measured.errors, clean_error, measured.missing)
    for name, value in summary.to_dict().items():
        record.metric(name, value)
    correct = {k: r.correct for k, r in measured.conditions.items()}
    ci = mce_interval(correct, clean, thresholds["bootstrap_resamples"], seed=context["seed"])
    record.metric("mce_ci", ci.get("mce"))
    record.metric("relative_mce_ci", ci.get("relative_mce"))
    _record_condition_tables(record, measured, thresholds)
    caveat = "" if comparable else f"; {NOT_COMPARABLE}"
    if not record.check_max("mce", summary.mce, "max_mce", thresholds["max_mce"]):
        raise AssertionError(
            f"{context['model']}: mCE {summary.mce:.1f} (95% CI {ci['mce'][0]:.1f}..{ci['mce'][1]:.1f}, AlexNet = 100) is above "
            f"max_mce {thresholds['max_mce']}; highest CE {max(summary.ce, key=summary.ce.get)} {max(summary.ce.values()):.1f}"
            + (f"; {summary.note}" if summary.note else "") + caveat)


def assess_mean_error(record: AuditRecord, measured: MceScore, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """A model of its own label space: the mean top-1 error over the benchmark conditions (``mean_error``) and its
    mean rise over the model's own clean error (``mean_rise``), each with a bound and a bootstrap interval. No
    mCE: AlexNet's published errors, its normalization, are errors on ImageNet-1k's 1,000 classes."""
    record.metric("alexnet_normalized", False)
    measured, clean, clean_error = _measure_and_record_references(record, measured, thresholds,
                                                                  ("max_mean_error", "max_mean_rise"))
    _require_scored(record, measured, thresholds, "mean error")
    summary = own_summary(measured.errors, clean_error, measured.missing)
    for name, value in summary.items():
        record.metric(name, value)
    correct = {k: r.correct for k, r in measured.conditions.items()}
    ci = mean_error_interval(correct, clean, thresholds["bootstrap_resamples"], seed=context["seed"])
    record.metric("mean_error_ci", ci.get("mean_error"))
    record.metric("mean_rise_ci", ci.get("mean_rise"))
    _record_condition_tables(record, measured, thresholds)
    failures = []
    if not record.check_max("mean_error", summary["mean_error"], "max_mean_error", thresholds["max_mean_error"]):
        failures.append(f"mean corruption error {summary['mean_error']:.3f} is above max_mean_error "
                        f"{thresholds['max_mean_error']}")
    rise = summary["mean_rise"]
    if rise is not None and not record.check_max("mean_rise", rise, "max_mean_rise", thresholds["max_mean_rise"]):
        failures.append(f"mean rise over its clean error {rise:.3f} (clean error {summary['clean_error']:.3f}) is above "
                        f"max_mean_rise {thresholds['max_mean_rise']}")
    if failures:
        worst = max(summary["corruption_errors"], key=summary["corruption_errors"].get)
        raise AssertionError(f"{context['model']} ({len(summary['corruptions'])} corruptions x "
                             f"{len(summary['severities'])} severities, "
                             f"its own label space: no mCE): " + "; ".join(failures)
                             + f"; highest error {worst} {summary['corruption_errors'][worst]:.3f}")
