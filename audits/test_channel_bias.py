"""Channel bias: how the first layer weights R, G and B, and whether a larger weight matters more.

The weight shares are the gate; the functional measures (contribution, ablation, gradient) are
recorded beside them to answer the study's follow-up question. Random-init torchvision
architectures are the control: with no training there is no colour preference, so ~1/3 each.
Judged by the family's assessors (visionaudit/families/channel_bias.py); a model whose first
convolution does not take RGB is skipped there, saying so.
"""

import pytest

from visionaudit.families.channel_bias import (
    CONTROL_ZOO,
    ChannelBias,
    functional_shares,
    weight_bias,
)

pytestmark = pytest.mark.audit("channel_bias")


def test_weight_shares(model, assess):
    assess("weight_shares", weight_bias(model), model=model.id)


def test_functional_shares(model, labelled_images, evaluate, assess, thresholds, audit_seed):
    """Weight times signal, channel ablation and gradient x input, on real images (recorded, not gated)."""
    weight = weight_bias(model)
    measured = weight
    if isinstance(weight, ChannelBias):  # RGB weight shares only: the assessor says why not
        ev = evaluate(model, labelled_images.stratified_subset(thresholds["functional_images"], audit_seed))
        measured = functional_shares(model, weight, ev.images, ev.labels, ev.logits)
    assess("functional_shares", measured, model=model.id)


@pytest.mark.parametrize("arch", CONTROL_ZOO)
def test_random_init_control(arch, control_model, assess):
    model = control_model(arch)
    assess("random_init_control", weight_bias(model), model=model.id, arch=arch)
