"""A top-1 shortfall beyond sampling error that looks like a class list out of order (stop 35 hunt F2) asks about the
class order first, and still gives the preprocessing advice with the preprocessing used: classes taken wholesale for
others are the mark of swapped names, yet a wrong preprocessing is not ruled out by them (both can be wrong)."""

from __future__ import annotations

import numpy as np

from visionaudit.families import accuracy as A

NAMES = ["bird", "dog", "cat", "car"]


def test_the_class_order_hint_comes_first_and_the_preprocessing_advice_stays():
    # bird's 10 images all predicted dog and dog's all bird (swapped names); cat and car right
    labels = np.repeat(np.arange(4), 10)
    top1 = labels.copy()
    top1[labels == 0], top1[labels == 1] = 1, 0
    confused = A.wholesale_confusions(labels, top1, NAMES)
    assert confused == "bird's images are mostly predicted dog (10/10), dog's images are mostly predicted bird (10/10)"
    message = A.top1_shortfall(20, 40, 0.9, "PREP(resize 256, crop 224)", None, confused)
    assert "is its class list in the model's output order?" in message, message
    assert "check its preprocessing" in message and message.endswith("PREP(resize 256, crop 224)"), message
    assert message.index("output order?") < message.index("check its preprocessing")  # the hint first


def test_without_the_hint_the_advice_is_as_before():
    message = A.top1_shortfall(20, 40, 0.9, "PREP")
    assert message.endswith("all below it: check its preprocessing or its class order: PREP"), message
    assert "mostly predicted" not in message
