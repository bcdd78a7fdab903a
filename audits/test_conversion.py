"""Conversion equivalence: a folded first convolution gives the original logits.

rgb_to_gray: the original on the gray image stacked three times vs the converted model on the gray
image. gray_to_rgb: a grayscale model (the rgb_to_gray result) on the luminance image vs its RGB
expansion on the colour image. On real images (grayscale imagenet-sample) and random inputs, for the
configured models and a zoo of torchvision architectures with random weights.
"""

import pytest

from visionaudit.families.conversion import DIRECTIONS, audit_inputs, check_equivalence
from visionaudit.models.controls import CONTROL_ZOO, calibrate_batchnorm, nondegenerate

pytestmark = pytest.mark.audit("conversion")


def _judge(model, rgb, direction, record, thresholds, absolute: bool):
    record.metric("n_images", len(rgb))
    result = check_equivalence(model, rgb, direction)
    logits = result.logits
    # A model whose logits ignore the input would make the comparison pass vacuously.
    spread = record.metric("reference_spread", logits.reference_spread)
    assert spread > 0, f"{model.id}: its logits are the same for every image, so equivalence would prove nothing"
    if result.naive_max_abs_diff is not None:
        record.metric("naive_max_abs_diff", result.naive_max_abs_diff)
    record.metric("first_conv", result.conversion.first_conv)
    record.metric("params_saved", result.conversion.params_saved)
    record.metric("macs_saved", result.conversion.macs_saved)
    record.metric("border_offset_map", result.conversion.offset_map)
    # Relative to the logits' scale for every model (random-init controls can have huge logits);
    # absolute too for real models, whose logits have a meaningful scale.
    ok = record.check_max("max_rel_diff", logits.max_rel_diff, "max_rel_diff", thresholds["max_rel_diff"])
    if absolute:
        ok &= record.check_max("max_abs_diff", logits.max_abs_diff, "max_abs_diff", thresholds["max_abs_diff"])
    else:
        record.metric("max_abs_diff", logits.max_abs_diff)
    ok &= record.check_min("top1_agreement", logits.top1_agreement, "min_top1_agreement", thresholds["min_top1_agreement"])
    assert ok, (f"{model.id} {direction}: converted logits differ by up to {logits.max_abs_diff:.3g} "
                f"({logits.max_rel_diff:.3g} of the largest logit) "
                f"(top-1 agreement {logits.top1_agreement:.3f}) on {len(rgb)} images")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_configured_model(model, labelled_images, audit_seed, record, thresholds, direction):
    if model.preprocessing.channels != 3:
        pytest.skip(f"{model.id} takes {model.preprocessing.channels} channel(s); the colour-space audits start from RGB")
    rgb = audit_inputs(model, labelled_images, thresholds["real_images"], thresholds["random_images"], audit_seed)
    _judge(model, rgb, direction, record, thresholds, absolute=True)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("arch", CONTROL_ZOO)
def test_zoo(arch, direction, control_model, labelled_images, audit_seed, record, thresholds):
    model = control_model(arch)
    nondegenerate(model.module)
    rgb = audit_inputs(model, labelled_images, thresholds["zoo_images"], thresholds["random_images"], audit_seed)
    calibrate_batchnorm(model.module, model.preprocessing.normalize(rgb.to(model.device)))
    _judge(model, rgb, direction, record, thresholds, absolute=False)
