"""Shape bias (Geirhos et al., ICLR 2019): does the model decide by shape or by texture?

Cue-conflict stimuli carry the shape of one category and the texture of another. 1,000 ImageNet
probabilities map to 16 categories by averaging each category's classes; images whose cues agree are
dropped; shape bias = shape hits / (shape hits + texture hits).
"""

import math

import pytest

from visionaudit.imagenet16 import decide
from visionaudit.shape_bias import REFERENCES, category_accuracy, shape_bias

pytestmark = pytest.mark.audit("shape_bias")


def test_shape_bias(imagenet_model, cue_conflict_images, evaluate, record, thresholds):
    logits = evaluate(imagenet_model, cue_conflict_images).logits
    result = shape_bias(decide(logits, thresholds["aggregation"]), cue_conflict_images.categories, cue_conflict_images.textures)
    for name in ("shape_hits", "texture_hits", "n_conflict", "shape_fraction", "texture_fraction", "neither_fraction", "per_category"):
        record.metric(name, getattr(result, name))
    record.table("references", REFERENCES)
    assert not math.isnan(result.shape_bias), f"{imagenet_model.id} made neither a shape nor a texture decision on {result.n_conflict} images"
    in_range = record.check_min("shape_bias", result.shape_bias, "min", thresholds["min"])
    in_range &= record.check_max("shape_bias", result.shape_bias, "max", thresholds["max"])
    assert in_range, (
        f"{imagenet_model.id}: shape bias {result.shape_bias:.3f} is outside [{thresholds['min']}, {thresholds['max']}] "
        f"({result.shape_hits} shape vs {result.texture_hits} texture decisions of {result.n_conflict})"
    )


@pytest.mark.parametrize(
    "stimuli, metric",
    [pytest.param("edges", "edges_accuracy", id="edges"), pytest.param("filled-silhouettes", "silhouettes_accuracy", id="silhouettes")],
)
def test_shape_only_accuracy(imagenet_model, shape_only_images, evaluate, record, thresholds, stimuli, metric):
    image_set = shape_only_images(stimuli)
    decisions = decide(evaluate(imagenet_model, image_set).logits, thresholds["aggregation"])
    accuracy = category_accuracy(decisions, image_set.categories)
    record.metric("n_images", len(decisions))
    assert record.check_min(metric, accuracy, f"min_{metric}", thresholds[f"min_{metric}"]), (
        f"{imagenet_model.id}: 16-way accuracy {accuracy:.3f} on {stimuli} is below min_{metric} {thresholds[f'min_{metric}']}"
    )
