"""Shape bias (Geirhos et al., ICLR 2019): does the model decide by shape or by texture?

Cue-conflict stimuli carry the shape of one category and the texture of another. They reach the model
as published: 224x224, uncropped, only normalized (``stimulus_geometry``). The model's probabilities map to 16
categories by averaging each category's classes (ImageNet-1k's published mapping, the 16 categories among its
classes by name, or ``category_map``; a model with none of these is skipped, saying so); images whose cues agree
are dropped; shape
bias = shape hits / (shape hits + texture hits). Beside it, the model's error consistency with each human observer
(Geirhos, Meding & Wichmann 2020, as model-vs-human computes it) and the observers' with each other, recorded only.
A model whose decisions carry no cue information, or
whose shape-only accuracy is not above chance, fails whatever its number.
"""

import pytest

from visionaudit.families.shape_bias import (
    categories_or_reason,
    cue_conflict_outcomes,
    shape_only_outcomes,
    stimulus_context,
    stimulus_geometry,
)

pytestmark = pytest.mark.audit("shape_bias")


def _categories(model, thresholds):
    """Which of the model's classes make each of the 16 categories; the test is skipped, saying why, without them."""
    categories, reason = categories_or_reason(model.label_space, thresholds["category_map"])
    if categories is None:
        pytest.skip(f"{model.id}: no shape bias: {reason}")
    return categories


def _logits(model, image_set, evaluate, thresholds, categories):
    """The model's logits on stimuli fed as ``stimulus_geometry`` says, and the context the assessors record."""
    mode = thresholds["stimulus_geometry"]
    geometry = stimulus_geometry(model, mode)
    return evaluate(model, image_set, geometry).logits, stimulus_context(model, mode, geometry, thresholds["aggregation"],
                                                                         categories)


def test_shape_bias(model, cue_conflict_images, evaluate, thresholds, assess, sample_set, human_observers):
    """Judged by ``visionaudit.families.shape_bias.assess_shape_bias``: cue information above chance, min/max; the
    error consistency with the human observers (``texture-vs-shape-raw``) is recorded beside it, not judged."""
    categories = _categories(model, thresholds)
    logits, context = _logits(model, cue_conflict_images, evaluate, thresholds, categories)
    assess("cue_conflict", cue_conflict_outcomes(sample_set("cue-conflict", cue_conflict_images), cue_conflict_images, logits,
                                                 thresholds["aggregation"], categories), observers=human_observers, **context)


@pytest.mark.parametrize(
    "stimuli, metric",
    [pytest.param("edges", "edges_accuracy", id="edges"),
     pytest.param("filled-silhouettes", "silhouettes_accuracy", id="silhouettes")],
)
def test_shape_only_accuracy(model, shape_only_images, evaluate, thresholds, stimuli, metric, assess, sample_set):
    """Judged by ``visionaudit.families.shape_bias.assess_shape_only``: 16-way accuracy above chance and min_<metric>."""
    categories = _categories(model, thresholds)
    image_set = shape_only_images(stimuli)
    logits, context = _logits(model, image_set, evaluate, thresholds, categories)
    assess("shape_only", shape_only_outcomes(sample_set(stimuli, image_set), image_set, logits, thresholds["aggregation"],
                                             categories), stimuli=stimuli, metric=metric, **context)
