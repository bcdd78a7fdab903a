"""A transform's drop is (b - c) / n, as docs/robustness.md defines it (stop 42, num42): counted, then divided once.
clean_top1 - top1 in float left rounding noise (23/60 - 20/60 = 0.050000000000000044), which failed a drop exactly at
its bound (horizontal flip's default max_drop 0.05). Hand-built per-image right/wrong, judged by the family's
assessor with the shipped defaults; the reference is the closed form (b - c) / n."""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.config import Thresholds, load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import PerImage, assess
from visionaudit.families.records import AuditRecord
from visionaudit.families.robustness import transform_result


def _right(n: int, k: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[:k] = True
    return out


@pytest.mark.parametrize("n, right, lost", [(60, 23, 3), (60, 23, 18), (100, 33, 30), (150, 47, 45), (40, 34, 12)])
def test_the_drop_is_the_closed_form_exactly(n, right, lost):
    before, after = _right(n, right), _right(n, right - lost)
    r = transform_result("rotation", 1.0, before, after, before != after, np.arange(n) % 10, 10)
    assert r.discordant == (lost, 0)
    assert r.drop == lost / n  # the float subtraction gave lost / n plus a few ulps on every one of these


@pytest.mark.parametrize("transform, n, right, lost, bound", [
    ("horizontal_flip", 60, 23, 3, None),  # its shipped bound, 0.05: 3 of 60 is exactly at it
    ("rotation", 100, 33, 30, 0.3),
])
def test_a_drop_exactly_at_its_bound_passes(transform, n, right, lost, bound):
    ids = tuple(f"img{k:03d}.jpg" for k in range(n))
    clean, after = _right(n, right), _right(n, right - lost)
    arrays = {"clean": clean, "labels": np.arange(n) % 10, "correct@1": after, "changed@1": clean != after}
    thresholds = load_config(None).thresholds("robustness", "m")
    if bound is not None:
        thresholds = Thresholds("robustness", "m", {**dict(thresholds), "max_drop": bound})
    record = AuditRecord("robustness", "m", params={"transform": transform})
    assess("robustness", "transform", record, PerImage(SampleSet("labelled", "s", ids, "f", None, 0), arrays), thresholds,
           {"model": "m", "model_classes": 10, "transform": transform, "seed": 0})  # raised AssertionError before
    assert record.metrics["drop"] == lost / n == record.thresholds["max_drop"]
