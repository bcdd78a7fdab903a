"""Common corruptions (ImageNet-C): top-1 error under each corruption and severity, and the mCE.

Each condition is scored on the same images as the protocol's clean pass (visionaudit/families/corruption/__init__.py), so it
is paired: exact McNemar against clean, Holm over a model's conditions (in the report, where all meet).
``test_mce`` reads every condition of its model from the same run (the scheduler keeps a model's
corruption tests on one worker) and gates the mCE, normalized by AlexNet's published errors. On other
images than the ImageNet validation set the mCE is not comparable with published values; the entries and
summary say so.
"""

import pytest

from fixtures.corruption import protocol_metrics
from visionaudit.families.corruption import (
    Unavailable,
    check_severities,
    condition_name,
    holm_over_conditions,
    mce_interval,
)
from visionaudit.families.corruption.imagenet_c import NOT_COMPARABLE, summarize

pytestmark = pytest.mark.audit("corruption")


def test_corruption(imagenet_model, corrupted, record, thresholds, judge_count, corruption, severity):
    if corruption not in [*thresholds["corruptions"], *thresholds["extras"]] or severity not in check_severities(thresholds["severities"]):
        pytest.skip(f"{corruption} at severity {severity} is not configured for {imagenet_model.id} ([audits.corruption])")
    for name, value in protocol_metrics(corrupted, imagenet_model, thresholds["jpeg_round_trip"]).items():
        record.metric(name, value)
    judge_count(corrupted.n_images, "images")
    try:
        r = corrupted.run.condition(corruption, severity)
    except Unavailable as e:
        record.metric("available", False)
        pytest.skip(f"not available: {e}")
    if corrupted.sample_set is not None:  # what a later release is compared with, image by image
        record.outcomes_on(corrupted.sample_set, condition_name(corruption, severity), correct=r.correct)
    for name in ("error_ci", "clean_error", "p_value", "discordant"):
        record.metric(name, getattr(r, name))
    bound = thresholds.entry("max_error_by_corruption", corruption, fallback="max_error")
    assert record.check_max("error", r.error, "max_error", bound), (
        f"{imagenet_model.id}: top-1 error {r.error:.3f} (95% CI {r.error_ci[0]:.3f}..{r.error_ci[1]:.3f}) under {corruption} "
        f"at severity {severity} is above max_error {bound} (clean {r.clean_error:.3f}, {corrupted.n_images} images)")


def test_mce(imagenet_model, corrupted, record, thresholds, judge_count, audit_seed):
    for name, value in protocol_metrics(corrupted, imagenet_model, thresholds["jpeg_round_trip"]).items():
        record.metric(name, value)
    judge_count(corrupted.n_images, "images")
    severities = check_severities(thresholds["severities"])
    errors, correct, missing = {}, {}, {}
    for corruption in thresholds["corruptions"]:
        try:
            for s in severities:
                r = corrupted.run.condition(corruption, s)
                errors.setdefault(corruption, {})[s], correct[(corruption, s)] = r.error, r.correct
        except Unavailable as e:
            errors.pop(corruption, None)
            missing[corruption] = f"not available: {e}"
    clean = corrupted.run.clean()
    summary = summarize(errors, None if clean is None else float(1 - clean.mean()), missing)
    record.metric("clean_error", None if clean is None else float(1 - clean.mean()))
    jpeg_only = corrupted.run.jpeg_only() if thresholds["jpeg_round_trip"] else None
    record.metric("jpeg_only_error", None if jpeg_only is None else float(1 - jpeg_only.mean()))
    for name, value in summary.to_dict().items():
        record.metric(name, value)
    ci = mce_interval(correct, clean, thresholds["bootstrap_resamples"], seed=audit_seed)
    record.metric("mce_ci", ci.get("mce"))
    record.metric("relative_mce_ci", ci.get("relative_mce"))
    record.table("errors", errors)
    record.table("holm", holm_over_conditions({condition_name(*k): corrupted.run.condition(*k).p_value for k in correct},
                                              thresholds["alpha"]))
    caveat = "" if corrupted.comparable else f"; {NOT_COMPARABLE}"
    assert record.check_max("mce", summary.mce, "max_mce", thresholds["max_mce"]), (
        f"{imagenet_model.id}: mCE {summary.mce:.1f} (95% CI {ci['mce'][0]:.1f}..{ci['mce'][1]:.1f}, AlexNet = 100) is above "
        f"max_mce {thresholds['max_mce']}; highest CE {max(summary.ce, key=summary.ce.get)} {max(summary.ce.values()):.1f}"
        + (f"; {summary.note}" if summary.note else "") + caveat)
