"""Transform robustness: does top-1 hold up under simple, non-adversarial transforms?

Each transform runs on the same images as the clean pass (computed once per model and shared), so
the comparison is paired: exact McNemar on right/wrong per image, a paired bootstrap interval on the
drop, and the study's t-test on class-wise accuracies. Holm's correction over one model's transforms
and the study's per-class test across models are computed where all results meet (the report).
"""

import pytest

from visionaudit.robustness import cached_transform
from visionaudit.transforms import TRANSFORMS

pytestmark = pytest.mark.audit("robustness")


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_transform(imagenet_model, evaluated, record, thresholds, audit_seed, transform, judge_count, sample_set):
    judge_count(len(evaluated.labels), "labelled images")
    results = [
        cached_transform(imagenet_model, evaluated.image_set.key, evaluated.images, evaluated.labels, evaluated.logits, transform,
                         severity, seed=audit_seed, resamples=thresholds["bootstrap_resamples"],
                         sample_ids=evaluated.image_set.sample_ids)
        for severity in thresholds["severities"]
    ]
    main = next((r for r in results if r.severity == 1.0), results[0])
    if main.severity == 1.0:  # what a later release is compared with, image by image
        record.outcomes_on(sample_set("labelled", evaluated.image_set), transform, correct=main.correct)
    for name in ("severity", "n_images", "clean_top1", "top1", "drop_ci", "flip_rate", "p_value", "p_value_ttest", "discordant"):
        record.metric(name, getattr(main, name))
    record.table("classwise_clean", main.classwise_clean)
    record.table("classwise_transformed", main.classwise_transformed)
    if len(results) > 1:
        record.table("severity_sweep", [{"severity": r.severity, "top1": r.top1, "drop": r.drop, "p_value": r.p_value} for r in results])

    bound = thresholds.entry("max_drop_by_transform", transform, fallback="max_drop")
    ok = record.check_max("drop", main.drop, "max_drop", bound)
    message = f"{imagenet_model.id}: {transform} lowers top-1 by {main.drop:.3f} (95% CI {main.drop_ci[0]:.3f}..{main.drop_ci[1]:.3f})"
    if transform in thresholds["not_significant"]:
        ok &= record.check_min("p_value", main.p_value, "alpha", thresholds["alpha"]) or main.drop <= 0
        message += f", McNemar p = {main.p_value:.3g}: it must not change top-1 significantly (alpha {thresholds['alpha']})"
    assert ok, message + f"; max_drop {bound}"
