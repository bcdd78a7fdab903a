"""Channel bias: how the first layer weights R, G and B, and whether a larger weight matters more.

The weight shares are the gate; the functional measures (contribution, ablation, gradient) are
recorded beside them to answer the study's follow-up question. Random-init torchvision
architectures are the control: with no training there is no colour preference, so ~1/3 each.
"""

import pytest

from visionaudit.families.channel_bias import (
    ablation_drop,
    contribution_shares,
    gradient_shares,
    weight_bias,
)
from visionaudit.models.controls import CONTROL_ZOO

pytestmark = pytest.mark.audit("channel_bias")


def _record_weight_bias(record, model):
    result = weight_bias(model)
    if result is None:
        pytest.skip(f"{model.id}: its first convolution does not take 3 input channels; channel bias needs RGB")
    record.metric("first_conv", result.first_conv)
    record.metric("dominant_channel", result.dominant_channel)
    record.metric("normalized_shares", result.normalized_shares)
    return result


def test_weight_shares(model, record, thresholds):
    result = _record_weight_bias(record, model)
    record.metric("group", "audited")
    ok = record.check_min("min_share_seen", min(result.shares), "min_share", thresholds["min_share"])
    ok &= record.check_max("max_share_seen", max(result.shares), "max_share", thresholds["max_share"])
    ok &= record.check_max("dominant_ratio", result.dominant_ratio, "max_ratio", thresholds["max_ratio"])
    record.metric("shares", result.shares)
    assert ok, (
        f"{model.id}: first-layer shares R,G,B = {', '.join(f'{s:.3f}' for s in result.shares)} "
        f"({result.first_conv}); bounds: each in [{thresholds['min_share']}, {thresholds['max_share']}], "
        f"largest/smallest <= {thresholds['max_ratio']}"
    )


def test_functional_shares(imagenet_model, labelled_images, evaluate, record, thresholds, audit_seed):
    """Weight times signal, channel ablation and gradient x input, on real images (recorded, not gated)."""
    weight_bias_result = _record_weight_bias(record, imagenet_model)
    subset = labelled_images.stratified_subset(thresholds["functional_images"], audit_seed)
    ev = evaluate(imagenet_model, subset)
    record.metric("n_images", len(subset))
    record.metric("shares", weight_bias_result.shares)
    record.metric("ablation_drop", ablation_drop(imagenet_model, ev.images, ev.labels, clean_logits=ev.logits))
    record.metric("gradient_shares", gradient_shares(imagenet_model, ev.images, ev.labels))
    # Last: it refuses models that transform the input before the first conv, and the others are kept then.
    record.metric("contribution_shares", contribution_shares(imagenet_model, weight_bias_result.first, ev.images))


@pytest.mark.parametrize("arch", CONTROL_ZOO)
def test_random_init_control(arch, control_model, record, thresholds):
    model = control_model(arch)
    result = _record_weight_bias(record, model)
    record.metric("group", "control (random init)")
    record.metric("shares", result.shares)
    worst = max(abs(s - 1 / 3) for s in result.shares)
    assert record.check_max("max_deviation_from_third", worst, "control_tolerance", thresholds["control_tolerance"]), (
        f"{arch} with random weights has shares {result.shares} ({result.first_conv}): random init should sit near 1/3 each"
    )
