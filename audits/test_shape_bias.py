"""Shape bias (Geirhos et al., ICLR 2019): does the model decide by shape or by texture?

Cue-conflict stimuli carry the shape of one category and the texture of another. They reach the model
as published: 224x224, uncropped, only normalized (``stimulus_geometry``). 1,000 ImageNet probabilities
map to 16 categories by averaging each category's classes; images whose cues agree are dropped; shape
bias = shape hits / (shape hits + texture hits). A model whose decisions carry no cue information, or
whose shape-only accuracy is not above chance, fails whatever its number.
"""

import pytest

from visionaudit.families.shape_bias import (
    cue_conflict_outcomes,
    shape_only_outcomes,
    stimulus_context,
    stimulus_geometry,
)

pytestmark = pytest.mark.audit("shape_bias")


def _logits(model, image_set, evaluate, thresholds):
    """The model's logits on stimuli fed as ``stimulus_geometry`` says, and the context the assessors record."""
    mode = thresholds["stimulus_geometry"]
    geometry = stimulus_geometry(model, mode)
    return evaluate(model, image_set, geometry).logits, stimulus_context(model, mode, geometry, thresholds["aggregation"])


def test_shape_bias(imagenet_model, cue_conflict_images, evaluate, thresholds, assess, sample_set):
    """Judged by ``visionaudit.families.shape_bias.assess_shape_bias``: cue information above chance, min/max."""
    logits, context = _logits(imagenet_model, cue_conflict_images, evaluate, thresholds)
    assess("cue_conflict", cue_conflict_outcomes(sample_set("cue-conflict", cue_conflict_images), cue_conflict_images, logits,
                                                 thresholds["aggregation"]), **context)


@pytest.mark.parametrize(
    "stimuli, metric",
    [pytest.param("edges", "edges_accuracy", id="edges"), pytest.param("filled-silhouettes", "silhouettes_accuracy", id="silhouettes")],
)
def test_shape_only_accuracy(imagenet_model, shape_only_images, evaluate, thresholds, stimuli, metric, assess, sample_set):
    """Judged by ``visionaudit.families.shape_bias.assess_shape_only``: 16-way accuracy above chance and min_<metric>."""
    image_set = shape_only_images(stimuli)
    logits, context = _logits(imagenet_model, image_set, evaluate, thresholds)
    assess("shape_only", shape_only_outcomes(sample_set(stimuli, image_set), image_set, logits, thresholds["aggregation"]),
           stimuli=stimuli, metric=metric, **context)
