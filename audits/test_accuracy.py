"""Clean accuracy: the model, loaded and preprocessed by the suite, still classifies natural images.

This is the gate under every other audit: their numbers mean little if the clean top-1 is off.
The per-image results are judged by ``visionaudit.families.accuracy.assess_clean_top1`` (min_top1).
"""

import pytest

pytestmark = pytest.mark.audit("accuracy")


def test_clean_top1(imagenet_model, evaluated, assess, sample_set):
    logits, labels = evaluated.logits, evaluated.labels
    top5 = (logits.topk(min(5, logits.shape[1]), dim=1).indices == labels[:, None]).any(dim=1)
    assess("accuracy.clean_top1", sample_set("labelled", evaluated.image_set),
           {"correct": logits.argmax(1) == labels, "top5": top5},
           model=imagenet_model.id, set_name=evaluated.image_set.name, preprocessing=imagenet_model.preprocessing.source)
