"""Clean accuracy: the model, loaded and preprocessed by the suite, still classifies natural images.

This is the gate under every other audit: their numbers mean little if the clean top-1 is off.
The per-image results are judged by ``visionaudit.families.accuracy.assess_clean_top1`` (min_top1).
"""

import pytest

from visionaudit.families.accuracy import clean_outcomes

pytestmark = pytest.mark.audit("accuracy")


def test_clean_top1(imagenet_model, evaluated, assess, sample_set):
    assess("clean_top1", clean_outcomes(sample_set("labelled", evaluated.image_set), evaluated.logits, evaluated.labels),
           model=imagenet_model.id, set_name=evaluated.image_set.name, preprocessing=imagenet_model.preprocessing.source)
