"""Shape bias (Geirhos et al., ICLR 2019): does the model decide by shape or by texture?

Cue-conflict stimuli carry the shape of one category and the texture of another. They reach the model
as published: 224x224, uncropped, only normalized (``stimulus_geometry``). 1,000 ImageNet probabilities
map to 16 categories by averaging each category's classes; images whose cues agree are dropped; shape
bias = shape hits / (shape hits + texture hits). A model whose decisions carry no cue information, or
whose shape-only accuracy is not above chance, fails whatever its number.
"""

import math

import pytest

from visionaudit.imagenet16 import decide
from visionaudit.shape_bias import (CHANCE_CATEGORY, CHANCE_CUE, CI_METHOD, REFERENCES, above_chance_p, category_hits,
                                    shape_bias, stimulus_geometry)

pytestmark = pytest.mark.audit("shape_bias")


def _stimuli_geometry(model, record, thresholds):
    mode = thresholds["stimulus_geometry"]
    geometry = stimulus_geometry(model, mode)
    record.metric("stimulus_geometry", {"mode": mode, **geometry.to_dict()})  # a later comparison must share the mode
    record.metric("aggregation", thresholds["aggregation"])  # ... and how 1,000 classes become 16 categories
    return geometry


def test_shape_bias(imagenet_model, cue_conflict_images, evaluate, record, thresholds, judge_count, sample_set):
    geometry = _stimuli_geometry(imagenet_model, record, thresholds)
    decisions = decide(evaluate(imagenet_model, cue_conflict_images, geometry).logits, thresholds["aggregation"])
    record.outcomes_on(sample_set("cue-conflict", cue_conflict_images), "cue-conflict", decisions=decisions)
    result = shape_bias(decisions, cue_conflict_images.categories, cue_conflict_images.textures)
    for name in ("shape_bias_ci", "shape_hits", "texture_hits", "n_conflict", "shape_fraction", "texture_fraction",
                 "neither_fraction", "per_category"):
        record.metric(name, getattr(result, name))
    record.metric("shape_bias_ci_method", CI_METHOD)
    record.table("references", REFERENCES)
    judge_count(result.n_conflict, "cue-conflict images with conflicting cues")
    alpha = record.threshold("chance_alpha", thresholds["chance_alpha"])
    informative = record.metric("cue_information_p", result.cue_information_p) < alpha
    in_range = record.check_min("shape_bias", result.shape_bias, "min", thresholds["min"])
    in_range &= record.check_max("shape_bias", result.shape_bias, "max", thresholds["max"])
    hits = result.shape_hits + result.texture_hits
    assert informative, (
        f"{imagenet_model.id}: its decisions carry no cue information: {hits} of {result.n_conflict} decisions hit the shape "
        f"or the texture ({hits / result.n_conflict:.3f}), where uniform random decisions hit {CHANCE_CUE:.3f} "
        f"({CHANCE_CUE * result.n_conflict:.0f} expected); one-sided binomial p = {result.cue_information_p:.3g}, "
        f"not below {alpha}. Its shape bias ({result.shape_bias:.3f}) means nothing"
    )
    assert not math.isnan(result.shape_bias), f"{imagenet_model.id} made neither a shape nor a texture decision on {result.n_conflict} images"
    assert in_range, (
        f"{imagenet_model.id}: shape bias {result.shape_bias:.3f} (95% {CI_METHOD} "
        f"{result.shape_bias_ci[0]:.3f}..{result.shape_bias_ci[1]:.3f}) is outside [{thresholds['min']}, {thresholds['max']}] "
        f"({result.shape_hits} shape vs {result.texture_hits} texture decisions of {result.n_conflict})"
    )


@pytest.mark.parametrize(
    "stimuli, metric",
    [pytest.param("edges", "edges_accuracy", id="edges"), pytest.param("filled-silhouettes", "silhouettes_accuracy", id="silhouettes")],
)
def test_shape_only_accuracy(imagenet_model, shape_only_images, evaluate, record, thresholds, stimuli, metric, judge_count,
                             sample_set):
    image_set = shape_only_images(stimuli)
    geometry = _stimuli_geometry(imagenet_model, record, thresholds)
    decisions = decide(evaluate(imagenet_model, image_set, geometry).logits, thresholds["aggregation"])
    record.outcomes_on(sample_set(stimuli, image_set), stimuli, decisions=decisions)
    hits = category_hits(decisions, image_set.categories)
    accuracy = hits / len(decisions)
    record.metric("n_images", len(decisions))
    judge_count(len(decisions), f"{stimuli} stimuli")
    alpha = record.threshold("chance_alpha", thresholds["chance_alpha"])
    p = record.metric("p_above_chance", above_chance_p(hits, len(decisions), CHANCE_CATEGORY))
    bound = thresholds[f"min_{metric}"]
    ok = record.check_min(metric, accuracy, f"min_{metric}", bound)
    assert ok and p < alpha, (
        f"{imagenet_model.id}: 16-way accuracy {accuracy:.3f} on {stimuli} ({hits} of {len(decisions)}), where chance gives "
        f"{CHANCE_CATEGORY:.4f}: one-sided binomial p = {p:.3g} (must be below {alpha}); min_{metric} {bound}"
    )
