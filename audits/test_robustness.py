"""Transform robustness: does top-1 hold up under simple, non-adversarial transforms?

Each transform runs on the same images as the clean pass (computed once per model and shared), so
the comparison is paired: exact McNemar on right/wrong per image, a paired bootstrap interval on the
drop, and the study's t-test on class-wise accuracies over the model's own classes (any label space). Holm's
correction over one model's transforms
and the study's per-class test across models are computed where all results meet (the report).
"""

import pytest

from visionaudit.families.accuracy import class_names
from visionaudit.families.robustness import (
    TRANSFORMS,
    cached_transform,
    transform_outcomes,
)

pytestmark = pytest.mark.audit("robustness")


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_transform(model, evaluated, thresholds, audit_seed, transform, assess, sample_set):
    """Judged by ``visionaudit.families.robustness.assess_transform``: max_drop (per transform), not_significant."""
    results = [
        cached_transform(model, evaluated.image_set.key, evaluated.images, evaluated.labels, evaluated.logits, transform,
                         severity, seed=audit_seed, resamples=thresholds["bootstrap_resamples"],
                         sample_ids=evaluated.image_set.sample_ids)
        for severity in thresholds["severities"]
    ]
    assess("transform",
           transform_outcomes(sample_set("labelled", evaluated.image_set), results, evaluated.logits, evaluated.labels),
           model=model.id, model_classes=model.num_classes, class_names=class_names(model), transform=transform, seed=audit_seed)
