"""Clean accuracy: the model, loaded and preprocessed by the suite, still classifies natural images.

This is the gate under every other audit: their numbers mean little if the clean top-1 is off.
Any label space: the labels are the model's own output indices, the per-class table names its classes. The
per-image results are judged by ``visionaudit.families.accuracy.assess_clean_top1`` (min_top1, min_top5 for more
than 5 classes, min_balanced_accuracy, min_class_accuracy).
"""

import pytest

from visionaudit.families.accuracy import class_names, clean_outcomes

pytestmark = pytest.mark.audit("accuracy")


def test_clean_top1(model, evaluated, assess, sample_set):
    assess("clean_top1", clean_outcomes(sample_set("labelled", evaluated.image_set), evaluated.logits, evaluated.labels),
           model=model.id, set_name=evaluated.image_set.name, preprocessing=model.preprocessing.source,
           class_names=class_names(model))
