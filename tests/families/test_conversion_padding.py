"""Constant padding before the first conv, any value, folds exactly both ways (visionaudit/families/conversion.py)."""

from __future__ import annotations

import pytest
import torch
import torchvision  # noqa: F401  (imported at module level: a second import inside a test registers an op twice)
from torch import nn

from tests.families.test_conversion import head, run
from visionaudit.families.conversion import gray_to_rgb, rgb_to_gray
from visionaudit.preprocessing import Preprocessing


@pytest.mark.parametrize("value", [0.0, 0.5, -1.25])
def test_constant_padding_before_the_first_conv_is_folded_exactly_both_ways(value):
    """Stop 44's notes: a ConstantPad2d of another value than 0 was refused, though the converted model pads its own input
    with the same constant and the border map takes the difference (one that does not depend on the image). Checked
    against the RGB model on gray replicated to three channels, and the gray model on the luminance of RGB images."""
    pre = Preprocessing(crop_size=12, resize_size=12)
    gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    torch.manual_seed(0)
    padded = nn.Sequential(nn.ConstantPad2d((2, 0, 1, 3), value), head(nn.Conv2d(3, 4, 3, padding=1))).double().eval()
    folded = rgb_to_gray(padded, pre)
    stacked = run(padded, pre, gray.expand(-1, 3, -1, -1))
    assert (run(folded.model, folded.preprocessing, gray) - stacked).abs().max() < 1e-12 * (1 + stacked.abs().max())
    one = nn.Sequential(nn.ConstantPad2d((1, 2, 0, 1), value), head(nn.Conv2d(1, 4, 3, padding=1))).double().eval()
    gray_pre = Preprocessing(crop_size=12, resize_size=12, mean=(0.45,), std=(0.22,))
    expanded = gray_to_rgb(one, gray_pre)
    rgb = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)).sum(1, keepdim=True)
    reference = run(one, gray_pre, luma)
    assert (run(expanded.model, expanded.preprocessing, rgb) - reference).abs().max() < 1e-12 * (1 + reference.abs().max())
