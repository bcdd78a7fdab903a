"""What a top-1 or balanced-accuracy shortfall on a small set says (review34c items 3 and 4): the advice fits how
the images were chosen, and a balanced accuracy that is top-1 itself (as many images per class) is not a second
finding."""

from __future__ import annotations

import numpy as np
import pytest

from tests.families.test_label_spaces import _bounds, _wilson_by_formula
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families import accuracy as A
from visionaudit.families.assessment import PerImage
from visionaudit.families.records import AuditRecord

CONTEXT = {"model": "m", "set_name": "s", "preprocessing": "PREP"}


def _set(name: str, n: int, subset: int | None) -> SampleSet:
    return SampleSet("labelled", name, tuple(f"x/{i}.png" for i in range(n)), "f", subset, 0)


def _message(sample_set: SampleSet, arrays: dict, **bounds) -> str:
    with pytest.raises(AssertionError) as e:
        A.assess_clean_top1(AuditRecord("accuracy", "m"), PerImage(sample_set, arrays), _bounds(**bounds), CONTEXT)
    return str(e.value)


def test_a_subset_is_told_to_draw_more_and_a_whole_set_to_label_more():
    """42/50 against 0.85: within sampling error (Wilson [0.715, 0.917], by formula). Drawn from 1,000 images, more of
    them decide; a team's whole set of 50 has no larger subset or fuller set: only more labelled images decide."""
    low, high = _wilson_by_formula(42, 50)
    assert low <= 0.85 <= high
    correct = np.arange(50) < 42
    drawn = _message(_set("imagenet-sample[50 of 1000, seed 0]", 50, 50), {"correct": correct}, min_top1=0.85)
    assert "within sampling error on 50 images; --audit-samples N (up to 1,000) or the full set decide" in drawn, drawn
    whole = _message(_set("team", 50, None), {"correct": correct}, min_top1=0.85)
    assert "within sampling error on 50 images; a larger labelled set decides" in whole, whole
    assert "--audit-samples" not in whole and "full set" not in whole


def test_a_balanced_accuracy_of_one_image_per_class_shares_top1s_sampling_error():
    """--audit-samples 50 of imagenet-sample: one image per class, so balanced accuracy is top-1 (42/50 both) and
    min_balanced_accuracy defaults to min_top1: its failure is the same one, said so, without a worst-classes list
    of classes of one image."""
    correct, labels = np.arange(50) < 42, np.arange(50)
    text = _message(_set("imagenet-sample[50 of 1000, seed 0]", 50, 50), {"correct": correct, "labels": labels},
                    min_top1=0.85, min_balanced_accuracy=None, min_class_images=10)
    assert "clean top-1 0.840" in text and "within sampling error on 50 images" in text
    assert ("balanced accuracy 0.840 (mean over 50 classes) is below min_balanced_accuracy 0.85: the same 50 images, 1 "
            "per class, so it equals top-1 42/50: likewise within sampling error") in text, text
    assert "worst:" not in text and "too few to gate" not in text
    # top-1 passing its own bound, balanced accuracy held higher: said alone, with the same caveat
    alone = _message(_set("team", 50, None), {"correct": correct, "labels": labels},
                     min_top1=0.8, min_balanced_accuracy=0.9, min_class_images=10)
    assert alone.startswith("m on s: balanced accuracy 0.840") and "likewise within sampling error" in alone, alone


def test_a_balanced_accuracy_of_unequal_classes_keeps_its_worst_classes():
    """Unequal class sizes: balanced accuracy is not top-1, and no interval is claimed for it."""
    labels = np.array([0] * 40 + list(range(1, 11)))  # class 0: 40 images, classes 1..10: one each
    correct = np.array([True] * 40 + [False] * 10)  # top-1 0.80, balanced accuracy 1/11
    text = _message(_set("team", 50, None), {"correct": correct, "labels": labels}, min_top1=0.5,
                    min_balanced_accuracy=0.5, min_class_images=10)
    assert f"balanced accuracy {1 / 11:.3f} (mean over 11 classes) is below min_balanced_accuracy 0.5; worst: " in text
    assert "sampling error" not in text
