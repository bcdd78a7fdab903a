"""A not-judged entry (too few images) records the bounds it would have been judged against, as a judged entry of the
same test does (stop 44's notes: a not-judged shape-bias entry recorded no thresholds where a not-judged accuracy
did, and a not-judged robustness drop no max_drop). Each assessor is called twice on synthetic data, over too few
images and over enough: the two entries' thresholds must be the same mapping."""

from __future__ import annotations

import random

import numpy as np
import pytest

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.data.imagenet16 import categories
from visionaudit.families.assessment import (
    Deferred,
    NotApplicable,
    NotJudged,
    PerImage,
    assess,
)
from visionaudit.families.records import AuditRecord


def _judge(family: str, test: str, role: str, n: int, arrays, context, params=None, measured=None) -> tuple[str, AuditRecord]:
    ids = tuple(f"img{k:03d}.png" for k in range(n))
    record = AuditRecord(family, "m", params=params or {})
    try:
        assess(family, test, record, measured or PerImage(SampleSet(role, role, ids, "f", None, 0), arrays),
               load_config(None).thresholds(family, "m"), {"model": "m", **context})
    except NotJudged:
        return "not_judged", record
    except NotApplicable:
        return "skipped", record
    except AssertionError:
        return "failed", record
    return "passed", record


def _stimuli(n: int) -> dict[str, list[str]]:
    rng, cats = random.Random(n), list(categories())
    shapes = [cats[k % 16] for k in range(n)]
    textures = [rng.choice([c for c in cats if c != s]) for s in shapes]
    decisions = [s if k % 3 else t for k, (s, t) in enumerate(zip(shapes, textures))]
    return {"decisions": decisions, "categories": shapes, "textures": textures}


GEOMETRY = {"stimulus_geometry": {"mode": "native"}, "aggregation": "mean"}


def _cue_conflict(n):
    return _judge("shape_bias", "cue_conflict", "cue-conflict", n, _stimuli(n), GEOMETRY)


def _edges(n):
    s = _stimuli(n)
    return _judge("shape_bias", "shape_only", "edges", n, {"decisions": s["categories"], "categories": s["categories"]},
                  {**GEOMETRY, "stimuli": "edges", "metric": "edges_accuracy"})


def _rotation(n):
    clean = np.arange(n) % 4 != 0
    arrays = {"clean": clean, "labels": np.arange(n) % 10, "correct@1": clean, "changed@1": np.zeros(n, dtype=bool)}
    return _judge("robustness", "transform", "labelled", n, arrays,
                  {"model_classes": 10, "transform": "rotation", "seed": 0}, {"transform": "rotation"})


@pytest.mark.parametrize("judge", [_cue_conflict, _edges, _rotation], ids=["cue_conflict", "edges", "robustness"])
def test_a_not_judged_entry_records_the_bounds_a_judged_one_does(judge):
    few, judged = judge(12), judge(96)
    assert few[0] == "not_judged" and judged[0] != "not_judged", (few, judged)
    assert judged[1].thresholds, "the judged entry records its bounds"
    assert few[1].thresholds == judged[1].thresholds


def _unmeasured(n: int) -> Deferred:
    def measure():
        raise AssertionError("measured below min_images")
    return Deferred(n, measure)


# The bounds as the families' descriptors give them by default (audit.toml's reference), not as the assessors record them.
@pytest.mark.parametrize("family, test, context, bounds", [
    ("deployment", "form", {"deployment": "torchscript"}, {"max_abs_diff": 1e-4, "min_top1_agreement": 0.99}),
    ("deployment", "form", {"deployment": "bf16_cpu"}, {"max_abs_diff": 1.5, "min_top1_agreement": 0.9}),
    ("conversion", "configured_model", {}, {"max_abs_diff": 1e-3, "max_rel_diff": 1e-4, "min_top1_agreement": 0.99}),
    ("conversion", "zoo", {}, {"max_rel_diff": 1e-4, "min_top1_agreement": 0.99}),
])
def test_a_not_judged_conversion_or_deployment_records_its_bounds(family, test, context, bounds):
    """Review of stop 45: the deployment and conversion entries not judged (too few images, before anything is
    exported or folded) record the bounds of their form, checked against the descriptors' defaults."""
    outcome, record = _judge(family, test, "labelled", 1, {}, context, measured=_unmeasured(1))
    assert outcome == "not_judged" and record.thresholds == bounds, (outcome, record.thresholds)


def test_a_deployment_form_the_model_or_device_does_not_support_records_no_bounds():
    """Review of stop 45: the bounds recorded before the form is exported stayed on a form then skipped (fp16_cuda on a
    CPU run, a torch form of an ONNX model), which was held to none; a row of such forms showed them beside SKIP."""
    from visionaudit.families.deployment import Unsupported

    def measure():
        raise Unsupported("fp16 inference is audited on CUDA; this run's device is cpu")

    outcome, record = _judge("deployment", "form", "labelled", 64, {}, {"deployment": "fp16_cuda"},
                             measured=Deferred(64, measure))
    assert outcome == "skipped" and record.thresholds == {}, (outcome, record.thresholds)


def test_a_transform_over_no_labelled_image_records_its_bounds():
    """Review of stop 45: the one not-judged robustness entry still without its bounds (no labelled image at all)."""
    empty = {"clean": np.zeros(0, dtype=bool), "labels": np.zeros(0, dtype=int), "correct@1": np.zeros(0, dtype=bool),
             "changed@1": np.zeros(0, dtype=bool)}
    outcome, record = _judge("robustness", "transform", "labelled", 0, empty,
                             {"model_classes": 10, "transform": "rotation", "seed": 0}, {"transform": "rotation"})
    assert outcome == "not_judged" and record.thresholds == {"alpha": 0.05, "max_drop": 0.5}, record.thresholds
