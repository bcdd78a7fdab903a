"""Clean accuracy: the model, loaded and preprocessed by the suite, still classifies natural images.

This is the gate under every other audit: their numbers mean little if the clean top-1 is off.
"""

import pytest

from visionaudit.accuracy import top1_accuracy, topk_accuracy

pytestmark = pytest.mark.audit("accuracy")


def test_clean_top1(imagenet_model, evaluated, record, thresholds, judge_count, sample_set):
    top1 = top1_accuracy(evaluated.logits, evaluated.labels)
    record.metric("n_images", len(evaluated.labels))
    record.outcomes_on(sample_set("labelled", evaluated.image_set), "clean", correct=evaluated.logits.argmax(1) == evaluated.labels)
    judge_count(len(evaluated.labels), "labelled images")
    record.metric("top5", topk_accuracy(evaluated.logits, evaluated.labels, 5))
    assert record.check_min("clean_top1", top1, "min_top1", thresholds["min_top1"]), (
        f"{imagenet_model.id}: clean top-1 {top1:.3f} on {evaluated.image_set.name} is below min_top1 "
        f"{thresholds['min_top1']} (check its preprocessing: {imagenet_model.preprocessing.source})"
    )
