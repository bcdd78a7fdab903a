"""A transform gate over too few images right on the clean pass is not judged (stop-33 review, A2): a transform can only take
away what the model got right, so a model that gets nothing right has a drop of 0 whatever it does and used to pass.
Hand-built per-image right/wrong, judged by the family's assessor with the shipped defaults."""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import NotJudged, PerImage, assess
from visionaudit.families.records import AuditRecord
from visionaudit.families.robustness import FAMILY

N = 64  # above min_images (50): only the clean-correct count decides


def _judge(clean: np.ndarray, after: np.ndarray, **bounds) -> tuple[str, AuditRecord, str]:
    ids = tuple(f"img{k:03d}.jpg" for k in range(N))
    arrays = {"clean": clean, "labels": np.arange(N) % 10, "correct@1": after, "changed@1": clean != after}
    thresholds = load_config(None).thresholds("robustness", "m")
    if bounds:
        from visionaudit.config import Thresholds

        thresholds = Thresholds("robustness", "m", {**dict(thresholds), **bounds})
    record = AuditRecord("robustness", "m", params={"transform": "rotation"})
    try:
        assess("robustness", "transform", record, PerImage(SampleSet("labelled", "s", ids, "f", None, 0), arrays), thresholds,
               {"model": "m", "model_classes": 10, "transform": "rotation", "seed": 0})
    except NotJudged as e:
        return "not_judged", record, str(e)
    except AssertionError as e:
        return "failed", record, str(e)
    return "passed", record, ""


def _right(k: int) -> np.ndarray:
    out = np.zeros(N, dtype=bool)
    out[:k] = True
    return out


def test_the_default_bound_is_declared_and_listed():
    field = FAMILY.thresholds["min_correct_images"]
    assert field.default == 20 and field.kind == "int" and "right on the clean pass" in field.help


def test_a_model_that_gets_nothing_right_is_not_judged_naming_the_count_and_the_key():
    outcome, record, message = _judge(_right(0), _right(0))
    assert outcome == "not_judged"  # it passed before: drop 0, CI [0, 0], no discordant pair
    assert message.startswith("0 images right on the clean pass (clean top-1 0.000)")
    assert "at least 20 (min_correct_images in audit.toml; is the model broken?)" in message
    # Nothing measured is dropped: the numbers stay in the entry.
    assert record.metrics["n_images"] == N and record.metrics["drop"] == 0.0 and record.metrics["clean_top1"] == 0.0


@pytest.mark.parametrize("right, lost, expected", [
    (19, 0, "not_judged"),  # one short of the default bound
    (20, 0, "passed"),      # at the bound: judged, nothing lost
    (40, 40, "failed"),     # drop 40/64 = 0.625 > max_drop 0.5: judged, and it can fail
])
def test_the_bound_counts_clean_correct_images(right, lost, expected):
    after = _right(right) & ~_right(lost)
    outcome, record, message = _judge(_right(right), after)
    assert outcome == expected, message
    assert record.metrics["drop"] == pytest.approx(lost / N)


def test_the_bound_is_configurable():
    assert _judge(_right(5), _right(5), min_correct_images=5)[0] == "passed"
    outcome, _, message = _judge(_right(5), _right(5), min_correct_images=6)
    assert outcome == "not_judged" and message.startswith("5 images right") and "at least 6" in message
