"""Horizontal flip's two gates (max_drop 0.05, and not_significant: its drop must not be significant at alpha by the
exact McNemar test, uncorrected): a failure says which of them failed (stop-42 review). Hand-built per-image
right/wrong, judged by the family's assessor with the shipped defaults; the p-values by hand (exact two-sided
McNemar with b lost and none won: 2 x 0.5^b)."""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.config import Thresholds, load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import PerImage, assess
from visionaudit.families.records import AuditRecord

N = 64  # above min_images (50); every image right on the clean pass (above min_correct_images)


def _judge(lost: int, **bounds) -> tuple[str, AuditRecord, str]:
    ids = tuple(f"img{k:03d}.jpg" for k in range(N))
    clean = np.ones(N, dtype=bool)
    after = clean.copy()
    after[:lost] = False
    defaults = load_config(None).thresholds("robustness", "m")
    thresholds = Thresholds("robustness", "m", {**dict(defaults), **bounds}) if bounds else defaults
    record = AuditRecord("robustness", "m", params={"transform": "horizontal_flip"})
    try:
        assess("robustness", "transform", record,
               PerImage(SampleSet("labelled", "s", ids, "f", None, 0),
                        {"clean": clean, "labels": np.arange(N) % 10, "correct@1": after, "changed@1": clean != after}),
               thresholds, {"model": "m", "model_classes": 10, "transform": "horizontal_flip", "seed": 0})
    except AssertionError as e:
        return "failed", record, str(e)
    return "passed", record, ""


def test_a_drop_above_max_drop_but_not_significant_says_max_drop_only():
    outcome, record, message = _judge(4)  # drop 4/64 = 0.0625 > 0.05; p = 2 x 0.5^4 = 0.125
    assert outcome == "failed" and record.metrics["p_value"] == pytest.approx(0.125)
    assert "above max_drop 0.05" in message, message
    assert "must not change top-1 significantly" not in message, message  # it said so: the significance gate held
    assert "McNemar p = 0.125, not significant at alpha 0.05" in message, message


def test_a_significant_drop_within_max_drop_says_significance_only():
    outcome, record, message = _judge(7, max_drop_by_transform={"horizontal_flip": 0.2})  # 0.109 <= 0.2; p = 0.0156
    assert outcome == "failed" and record.metrics["p_value"] == pytest.approx(2 * 0.5 ** 7)
    assert "McNemar p = 0.0156 is below alpha 0.05 (uncorrected)" in message, message
    assert "must not change top-1 significantly (not_significant)" in message, message
    assert "max_drop" not in message, message


def test_both_failed_says_both():
    outcome, _, message = _judge(7)  # 0.109 > 0.05 and p = 0.0156 < 0.05
    assert outcome == "failed"
    assert "above max_drop 0.05" in message and "must not change top-1 significantly" in message, message


def test_within_both_passes():
    assert _judge(2)[0] == "passed"  # 2/64 = 0.031 <= 0.05; p = 0.5
