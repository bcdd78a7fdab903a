"""Shape bias (Geirhos et al., ICLR 2019): does the model decide by shape or by texture?

Cue-conflict stimuli carry the shape of one category and the texture of another. They reach the model
as published: 224x224, uncropped, only normalized (``stimulus_geometry``). 1,000 ImageNet probabilities
map to 16 categories by averaging each category's classes; images whose cues agree are dropped; shape
bias = shape hits / (shape hits + texture hits). A model whose decisions carry no cue information, or
whose shape-only accuracy is not above chance, fails whatever its number.
"""

import pytest

from visionaudit.data.imagenet16 import decide
from visionaudit.families.shape_bias import stimulus_geometry

pytestmark = pytest.mark.audit("shape_bias")


def _decisions(model, image_set, evaluate, thresholds):
    """16-way decisions on stimuli fed as ``stimulus_geometry`` says, and the context the assessors record."""
    mode = thresholds["stimulus_geometry"]
    geometry = stimulus_geometry(model, mode)
    decisions = decide(evaluate(model, image_set, geometry).logits, thresholds["aggregation"])
    return decisions, {"model": model.id, "stimulus_geometry": {"mode": mode, **geometry.to_dict()},
                       "aggregation": thresholds["aggregation"]}


def test_shape_bias(imagenet_model, cue_conflict_images, evaluate, thresholds, assess, sample_set):
    """Judged by ``visionaudit.families.shape_bias.assess_shape_bias``: cue information above chance, min/max."""
    decisions, context = _decisions(imagenet_model, cue_conflict_images, evaluate, thresholds)
    assess("shape_bias.cue_conflict", sample_set("cue-conflict", cue_conflict_images),
           {"decisions": decisions, "categories": cue_conflict_images.categories, "textures": cue_conflict_images.textures},
           **context)


@pytest.mark.parametrize(
    "stimuli, metric",
    [pytest.param("edges", "edges_accuracy", id="edges"), pytest.param("filled-silhouettes", "silhouettes_accuracy", id="silhouettes")],
)
def test_shape_only_accuracy(imagenet_model, shape_only_images, evaluate, thresholds, stimuli, metric, assess, sample_set):
    """Judged by ``visionaudit.families.shape_bias.assess_shape_only``: 16-way accuracy above chance and min_<metric>."""
    image_set = shape_only_images(stimuli)
    decisions, context = _decisions(imagenet_model, image_set, evaluate, thresholds)
    assess("shape_bias.shape_only", sample_set(stimuli, image_set), {"decisions": decisions, "categories": image_set.categories},
           stimuli=stimuli, metric=metric, **context)
