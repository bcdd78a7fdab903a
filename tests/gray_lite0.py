"""A 1-channel model made from EfficientNet-Lite0 (its shipped ImageNet weights) by the suite's own ``rgb_to_gray`` fold
(visionaudit/families/conversion.py), importable as ``tests.gray_lite0:lite0_gray``. Lite0 normalizes every channel
alike, (x - 127) / 128, so the fold is "sum the first conv's kernels, keep the bias": exact, borders included."""

from __future__ import annotations

from torch import nn

from tests.sixteen_classifier import LITE_MEAN, LITE_STD, lite0
from visionaudit.families.conversion import rgb_to_gray
from visionaudit.preprocessing import Preprocessing

PREPROCESSING = Preprocessing(crop_size=224, resize_size=256, interpolation="bicubic", mean=(LITE_MEAN,) * 3, std=(LITE_STD,) * 3)
# The gray model's spec: lite0's geometry, one mean and one std (the fold's m* and s*: the channels' own).
SPEC = f"tests.gray_lite0:lite0_gray?size=224&resize=256&interpolation=bicubic&mean={LITE_MEAN!r}&std={LITE_STD!r}"


def lite0_gray() -> nn.Module:
    return rgb_to_gray(lite0().eval(), PREPROCESSING).model
