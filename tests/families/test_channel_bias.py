"""Channel bias against closed-form cases, and first-conv discovery on real architectures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from visionaudit.errors import ModelOutputError
from visionaudit.families.channel_bias import (
    ablation_drop,
    contribution_shares,
    gradient_shares,
    normalized_shares,
    weight_bias,
    weight_shares,
    zoo_summary,
)
from visionaudit.models.first_conv import find_first_conv
from visionaudit.models.loading import load_model

ROOT = Path(__file__).resolve().parents[2]


def conv_with(r: float, g: float, b: float, **kw) -> nn.Conv2d:
    conv = nn.Conv2d(3, 8, 3, **kw)
    with torch.no_grad():
        sign = torch.where(torch.rand_like(conv.weight) < 0.5, -1.0, 1.0)  # |w| is what counts
        conv.weight.copy_(sign * torch.tensor([r, g, b]).view(1, 3, 1, 1))
    return conv


def test_hand_built_kernels():
    assert weight_shares(conv_with(1, 2, 1)) == pytest.approx([0.25, 0.5, 0.25])
    assert weight_shares(conv_with(3, 3, 3)) == pytest.approx([1 / 3] * 3)


def test_scaling_green_by_k_moves_its_share_as_closed_form():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, 5)
    r, g, b = weight_shares(conv)
    k = 2.5
    with torch.no_grad():
        conv.weight[:, 1] *= k
    assert weight_shares(conv) == pytest.approx([r / (r + k * g + b), k * g / (r + k * g + b), b / (r + k * g + b)])


def test_grouped_first_conv():
    conv = nn.Conv2d(3, 6, 3, groups=3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 1.0, 2.0, 2.0, 5.0, 5.0]).view(6, 1, 1, 1).expand(6, 1, 3, 3))
    assert weight_shares(conv) == pytest.approx([2 / 16, 4 / 16, 10 / 16])


def test_normalized_shares_divide_by_std():
    # |w| = 1, 2, 1 on inputs normalized with std 0.5, 0.25, 0.5: on raw pixels 2, 8, 2.
    assert normalized_shares(conv_with(1, 2, 1), (0.5, 0.25, 0.5)) == pytest.approx([1 / 6, 4 / 6, 1 / 6])


def constant_images(values, n=4, size=16) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.uint8).view(1, 3, 1, 1).expand(n, 3, size, size).contiguous()


def test_contribution_shares_closed_form():
    model = load_model("tests.tiny_models:red_threshold?mean=0,0,0&std=1,1,1&size=16", "cpu")
    with torch.no_grad():
        model.module.conv.weight.copy_(torch.tensor([1.0, -2.0, 4.0]).view(1, 3, 1, 1))
    first = find_first_conv(model.module, (1, 3, 16, 16))
    # Pixels 255, 51, 102 are 1.0, 0.2, 0.4: terms |1 * 1.0|, |-2 * 0.2|, |4 * 0.4| = 1.0, 0.4, 1.6.
    assert contribution_shares(model, first,
                               constant_images([255, 51, 102])) == pytest.approx([1.0 / 3, 0.4 / 3, 1.6 / 3], abs=1e-6)


def test_contribution_shares_are_exact_with_zero_padding():
    """A padded 3x3 conv on a non-zero-mean input: the masked terms still add up to the conv output."""
    model = load_model("tests.tiny_models:tiny?size=32", "cpu")
    first = find_first_conv(model.module, (1, 3, 32, 32))
    assert first.name == "conv"
    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    x = model.preprocessing.normalize(images)
    conv = first.module
    terms = [conv(torch.where(torch.arange(3).view(1, 3, 1, 1) == c, x, 0)) - conv(torch.zeros_like(x)) for c in range(3)]
    assert torch.allclose(sum(terms) + conv(torch.zeros_like(x)), conv(x), atol=1e-5)
    expected = torch.tensor([t.abs().mean().item() for t in terms], dtype=torch.float64)
    assert contribution_shares(model, first, images) == pytest.approx((expected / expected.sum()).tolist(), rel=1e-4)


def test_contribution_shares_of_a_zero_padded_input_are_its_padded_terms(tmp_path):
    """transformers' EfficientNet zero-pads its input (ZeroPad2d) before the first conv: refused as "something before
    it transforms the input" (whose fix, a mean/std, cannot express a padding). The terms are the model's own padding
    module then its conv, each channel alone."""
    pytest.importorskip("transformers", reason="transformers is in the hf extra; install visionaudit[hf]")
    from tests.hub_models import EFFICIENTNET_QUERY, tiny_efficientnet

    model = load_model(f"hf:{tiny_efficientnet(tmp_path / 'effnet')}?{EFFICIENTNET_QUERY}", "cpu")
    first = find_first_conv(model.module, (1, 3, 32, 32))
    embeddings = model.module.efficientnet.embeddings
    assert first.module is embeddings.convolution and not first.input_is_model_input
    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    x = model.preprocessing.normalize(images)
    with torch.no_grad():
        zero = embeddings.convolution(embeddings.padding(torch.zeros_like(x)))
        terms = [embeddings.convolution(embeddings.padding(torch.where(torch.arange(3).view(1, 3, 1, 1) == c, x, 0))) - zero
                 for c in range(3)]
    expected = torch.tensor([t.abs().mean().item() for t in terms], dtype=torch.float64)
    assert contribution_shares(model, first, images) == pytest.approx((expected / expected.sum()).tolist(), rel=1e-4)

def red_labelled_images():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    images[:20, 0], images[20:, 0] = 220, 30  # bright red: class 1, dark red: class 0
    labels = torch.tensor([1] * 20 + [0] * 20)
    return images, labels


def test_ablation_drop_closed_form():
    model = load_model("tests.tiny_models:red_threshold?mean=0,0,0&std=1,1,1&size=8&imagenet=false", "cpu")
    images, labels = red_labelled_images()
    # Clean: all correct. Red replaced by its mean (125 -> 0.49 < 0.5): everything is class 0, half wrong.
    assert ablation_drop(model, images, labels) == pytest.approx([0.5, 0.0, 0.0])


def test_ablation_drop_is_an_exact_fraction():
    """57 of 60 right clean, 50 with red replaced by its mean (52: everything class 0): the drop is 7/60 exactly,
    not a float32 mean's 0.11666667461395264 nor the difference of shares 57/60 - 50/60 = 0.11666666666666659."""
    model = load_model("tests.tiny_models:red_threshold?mean=0,0,0&std=1,1,1&size=8&imagenet=false", "cpu")
    torch.manual_seed(0)
    images = torch.randint(0, 256, (60, 3, 8, 8), dtype=torch.uint8)
    images[:7, 0], images[7:, 0] = 220, 30  # 7 bright red (class 1), 53 dark red (class 0)
    labels = torch.tensor([1] * 7 + [0] * 50 + [1] * 3)  # the last 3 are wrong even clean
    assert ablation_drop(model, images, labels) == [7 / 60, 0.0, 0.0]


def test_gradient_shares_only_red():
    model = load_model("tests.tiny_models:red_threshold?mean=0,0,0&std=1,1,1&size=8&imagenet=false", "cpu")
    images, labels = red_labelled_images()
    assert gradient_shares(model, images, labels) == pytest.approx([1.0, 0.0, 0.0])


def test_first_conv_is_found_from_the_computation():
    vit = torchvision.models.vit_b_16(weights=None).eval()
    assert next(iter(dict(vit.named_parameters()))) == "class_token"  # why "first parameter" is wrong
    assert find_first_conv(vit, (1, 3, 224, 224)).name == "conv_proj"
    lite0 = load_model("efficientnet_lite0", "cpu")
    first = find_first_conv(lite0.module, (1, 3, 224, 224))
    assert first.name == "_conv_stem" and type(first.module).__name__ == "Conv2dStaticSamePadding"
    affine = find_first_conv(load_model("tests.tiny_models:affine_first?imagenet=false", "cpu").module, (1, 3, 32, 32))
    assert affine.name == "stem" and not affine.input_is_model_input


def test_contribution_shares_refuse_a_transformed_input_clearly():
    model = load_model("tests.tiny_models:affine_first?imagenet=false", "cpu")
    first = find_first_conv(model.module, (1, 3, 32, 32))
    with pytest.raises(ModelOutputError, match="stem does not receive the model input unchanged.*fold that step"):
        contribution_shares(model, first, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_lite0_is_green_dominant():
    result = weight_bias(load_model("efficientnet_lite0", "cpu"))
    assert result.dominant_channel == "g" and result.shares[1] > 0.45


def test_one_channel_model_has_no_rgb_bias():
    assert weight_bias(load_model("tests.tiny_models:gray?mean=0.5&std=0.25", "cpu")) is None


def test_zoo_summary():
    s = zoo_summary([[0.3, 0.4, 0.3], [0.34, 0.4, 0.26]])
    assert s["mean"] == pytest.approx([0.32, 0.4, 0.28])
    assert s["std"] == pytest.approx([0.028284, 0.0, 0.028284], abs=1e-6)
    assert zoo_summary([[0.2, 0.5, 0.3]])["std"] is None


@pytest.mark.slow
def test_planted_dominant_channel_fails_the_gate(shared_data, tmp_path):
    report = tmp_path / "report.json"
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "pytest", "audits/test_channel_bias.py::test_weight_shares", "-p", "no:cacheprovider",
           "--model", "tests.tiny_models:red_dominant", "--model", "tests.tiny_models:tiny",
           "--model", "tests.tiny_models:gray?mean=0.5&std=0.25", f"--audit-json={report}", "-rs"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    by_model = {a["model"]: a for a in json.loads(report.read_text())["audits"]}
    planted = by_model["tests.tiny_models:red_dominant"]
    assert planted["outcome"] == "failed" and planted["metrics"]["dominant_channel"] == "r"
    assert planted["metrics"]["shares"][0] > 0.6 and "largest/smallest <= 3.0" in planted["message"]
    assert by_model["tests.tiny_models:tiny"]["outcome"] == "passed"
    gray = by_model["tests.tiny_models:gray?mean=0.5&std=0.25"]
    assert gray["outcome"] == "skipped" and "does not take 3 input channels" in gray["message"]


def test_an_input_read_first_by_a_functional_conv_is_not_called_a_non_rgb_model():
    """The first nn.Conv2d to run takes the functional conv's 4 channels: the skip says the input reaches something
    else first, not that the model's first convolution does not take RGB (it does)."""
    from dataclasses import replace

    from visionaudit.families.assessment import NotApplicable
    from visionaudit.families.channel_bias import assess_weight_shares
    from visionaudit.families.records import AuditRecord

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w, self.conv = nn.Parameter(torch.randn(4, 3, 3, 3)), nn.Conv2d(4, 10, 1)

        def forward(self, x):
            return self.conv(nn.functional.conv2d(x, self.w)).mean(dim=(2, 3))

    tiny = load_model("tests.tiny_models:tiny", "cpu")
    with pytest.raises(NotApplicable, match=r"the first nn.Conv2d to run \(conv\) takes 4 channels, not the model's 3: "
                                            "something else reads the input first"):
        assess_weight_shares(AuditRecord("channel_bias", tiny.id), weight_bias(replace(tiny, module=Functional())), {},
                             {"model": tiny.id})


def _standardized_by_hand(conv: nn.Module) -> torch.Tensor:
    """The kernel a weight-standardized conv computes with, as its forward standardizes it (batch_norm over each filter)."""
    w = conv.weight.detach()
    gain = (conv.gain * conv.scale).view(-1) if hasattr(conv, "gain") else None  # ScaledStdConv2d's learned scale
    return torch.nn.functional.batch_norm(w.reshape(1, w.shape[0], -1), None, None, weight=gain, training=True,
                                          momentum=0.0, eps=conv.eps).reshape_as(w)


def _shares_of(w: torch.Tensor) -> list[float]:
    per = w.abs().double().sum(dim=(0, 2, 3))
    return (per / per.sum()).tolist()


def _weight_standardized_convs() -> list[nn.Module]:
    from timm.layers import ScaledStdConv2d, StdConv2d, StdConv2dSame
    from transformers.models.bit.modeling_bit import WeightStandardizedConv2d

    return [StdConv2d(3, 8, 3), StdConv2dSame(3, 8, 3, stride=2), ScaledStdConv2d(3, 8, 3),
            WeightStandardizedConv2d(3, 8, 7, stride=2, eps=1e-8)]


@pytest.mark.parametrize("index", range(4), ids=["StdConv2d", "StdConv2dSame", "ScaledStdConv2d", "hf-WeightStandardized"])
def test_a_weight_standardized_conv_is_measured_by_the_kernel_it_computes_with(index):
    torch.manual_seed(index)
    conv = _weight_standardized_convs()[index]
    with torch.no_grad():  # a per-filter offset on red, which standardization takes away: the raw weights read red-heavy
        conv.weight[:, 0] += 3.0
        if hasattr(conv, "gain"):
            conv.gain.copy_(torch.rand_like(conv.gain) + 0.5)
    expected = _shares_of(_standardized_by_hand(conv))
    assert _shares_of(conv.weight)[0] > 0.6 > expected[0]  # the raw weights would say something else
    assert weight_shares(conv) == pytest.approx(expected, rel=1e-6)
    assert normalized_shares(conv, (0.5, 0.25, 1.0)) == pytest.approx(
        _shares_of(_standardized_by_hand(conv) / torch.tensor([0.5, 0.25, 1.0]).view(1, 3, 1, 1)), rel=1e-6)


def test_a_bit_models_first_conv_is_measured_standardized():
    from transformers import BitConfig, BitForImageClassification

    torch.manual_seed(0)
    config = BitConfig(embedding_size=16, hidden_sizes=[16, 16, 16, 16], depths=[1, 1, 1, 1], num_groups=8, num_labels=5)
    model = BitForImageClassification(config).eval()
    first = find_first_conv(model, (1, 3, 64, 64))
    assert type(first.module).__name__ == "WeightStandardizedConv2d"
    with torch.no_grad():
        first.module.weight[:, 1] += 2.0
    assert weight_shares(first.module) == pytest.approx(_shares_of(_standardized_by_hand(first.module)), rel=1e-6)


def test_the_applied_kernel_is_read_without_running_the_convs_hooks():
    """Review 44 F1: the kernel was read by calling the conv, which ran its hooks (a user's activation recorder got a
    zeros image; a global hook fired) and, when one raised, fell back to the stored weight without a word."""
    from timm.layers import StdConv2d

    torch.manual_seed(0)
    conv = StdConv2d(3, 8, 3)
    with torch.no_grad():
        conv.weight[:, 0] += 3.0
    seen: list[str] = []

    def refuse(module, inputs, output):
        raise RuntimeError("a hook that only expects real images")

    handles = [conv.register_forward_pre_hook(lambda m, i: seen.append("pre")), conv.register_forward_hook(refuse),
               nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append("global"))]
    try:
        shares = weight_shares(conv)
    finally:
        for h in handles:
            h.remove()
    assert seen == []
    assert shares == pytest.approx(_shares_of(_standardized_by_hand(conv)), rel=1e-6)


def test_an_old_style_weight_norm_conv_is_measured_by_its_current_weight():
    """The old ``torch.nn.utils.weight_norm`` computes the weight in a forward pre-hook: read without hooks, the
    kernel must still be g * v / |v| of the current g and v, not the one the last forward left."""
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        conv = torch.nn.utils.weight_norm(nn.Conv2d(3, 8, 3))
    with torch.no_grad():
        conv.weight_g.mul_(torch.rand_like(conv.weight_g) * 4)
        conv.weight_v[:, 2] += 1.0
    v = conv.weight_v.detach()
    expected = conv.weight_g.detach() * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert weight_shares(conv) == pytest.approx(_shares_of(expected), rel=1e-6)


@pytest.mark.parametrize("value", [0.5, -1.25])
def test_contribution_shares_of_a_constant_padded_input_are_its_padded_terms(value):
    """Stop 45 (review): a ConstantPad2d of another value than 0 before the first conv, which the conversion folds take,
    was refused here as "something before it transforms the input ... fold that step into the model's mean/std".
    The border holds the same constant for every image, so, like the bias, it is in no channel's term: the terms are
    the model's own padding module then its conv, each channel alone, less the same of an image of zeros."""
    model = load_model("tests.tiny_models:padded_rgb?size=32&resize=32", "cpu")
    pad, conv = model.module[0], model.module[1]
    pad.value = value
    first = find_first_conv(model.module, (1, 3, 32, 32))
    assert first.module is conv and first.padding is not None and first.padding.value == value
    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    x = model.preprocessing.normalize(images)
    with torch.no_grad():
        zero = conv(pad(torch.zeros_like(x)))
        terms = [conv(pad(torch.where(torch.arange(3).view(1, 3, 1, 1) == c, x, 0))) - zero for c in range(3)]
    expected = torch.tensor([t.abs().mean().item() for t in terms], dtype=torch.float64)
    assert contribution_shares(model, first, images) == pytest.approx((expected / expected.sum()).tolist(), rel=1e-4)


def test_contribution_shares_refuse_a_padding_of_no_one_value_naming_it():
    model = load_model("tests.tiny_models:padded_rgb?size=32&resize=32", "cpu")
    model.module[0] = nn.ReflectionPad2d((2, 1, 0, 3))
    first = find_first_conv(model.module, (1, 3, 32, 32))
    with pytest.raises(ModelOutputError, match=r"1 receives the model input padded with values that are not one constant "
                                               r"\(a reflection or replication padding\)"):
        contribution_shares(model, first, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
