"""Conversion equivalence: a folded first convolution gives the original logits.

rgb_to_gray: the original on the gray image stacked three times vs the converted model on the gray
image. gray_to_rgb: a grayscale model (the rgb_to_gray result) on the luminance image vs its RGB
expansion on the colour image. On real images (grayscale, of the labelled set: --audit-images) and random inputs, for the
configured models and a zoo of torchvision architectures with random weights. Judged by the family's
assessors (visionaudit/families/conversion.py).
"""

import pytest

from visionaudit import Deferred
from visionaudit.families.conversion import (
    CONTROL_ZOO,
    DIRECTIONS,
    audit_inputs,
    check_equivalence,
    zoo_inputs,
)

pytestmark = pytest.mark.audit("conversion")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_configured_model(model, labelled_images, audit_seed, assess, thresholds, direction):
    if model.preprocessing.channels != 3:
        pytest.skip(f"{model.id} takes {model.preprocessing.channels} channel(s); the colour-space audits start from RGB")
    rgb = audit_inputs(model, labelled_images, thresholds["real_images"], thresholds["random_images"], audit_seed)
    assess("configured_model", Deferred(len(rgb), lambda: check_equivalence(model, rgb, direction)), model=model.id)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("arch", CONTROL_ZOO)
def test_zoo(arch, direction, control_model, labelled_images, audit_seed, assess, thresholds):
    model = control_model(arch)
    rgb = zoo_inputs(model, labelled_images, thresholds["zoo_images"], thresholds["random_images"], audit_seed)
    assess("zoo", Deferred(len(rgb), lambda: check_equivalence(model, rgb, direction)), model=model.id)
