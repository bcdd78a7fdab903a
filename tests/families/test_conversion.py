"""Colour-space folding: exact in float64 for any first-conv configuration, and the failure modes."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from visionaudit.families.assessment import Deferred, NotJudged
from visionaudit.families.conversion import (
    ConversionError,
    assess_configured_model,
    assess_zoo,
    check_equivalence,
    gray_to_rgb,
    naive_rgb_to_gray,
    rgb_to_gray,
)
from visionaudit.families.records import AuditRecord
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Preprocessing

ROOT = Path(__file__).resolve().parents[2]


def head(conv: nn.Conv2d) -> nn.Module:
    # Non-linear after the conv, so an error in any output position shows in the result.
    return nn.Sequential(conv, nn.Tanh(), nn.Conv2d(conv.out_channels, 5, 1), nn.Flatten()).double().eval()


def run(model, pre: Preprocessing, raw: torch.Tensor) -> torch.Tensor:
    """``raw`` in [0, 1], (N, C, H, W); normalized as the preprocessing says, in float64."""
    m = torch.tensor(pre.mean, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(pre.std, dtype=torch.float64).view(1, -1, 1, 1)
    with torch.no_grad():
        return model((raw - m) / s)


conv_configs = st.fixed_dictionaries({
    "kernel": st.integers(1, 5),
    "stride": st.integers(1, 3),
    "padding": st.one_of(st.integers(0, 3), st.just("same")),
    "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    "dilation": st.integers(1, 2),
    "bias": st.booleans(),
    "size": st.integers(9, 17),
    "mean": st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    "std": st.lists(st.floats(0.05, 1.0), min_size=3, max_size=3),
    "seed": st.integers(0, 2**16),
})


def build(cfg, in_channels):
    torch.manual_seed(cfg["seed"])
    stride = 1 if cfg["padding"] == "same" else cfg["stride"]
    conv = nn.Conv2d(in_channels, 4, cfg["kernel"], stride=stride, padding=cfg["padding"],
                     padding_mode=cfg["padding_mode"], dilation=cfg["dilation"], bias=cfg["bias"])
    return head(conv)


@settings(max_examples=60, deadline=None)
@given(conv_configs)
def test_rgb_to_gray_is_exact_for_any_conv(cfg):
    model = build(cfg, 3)
    size = cfg["size"]
    pre = Preprocessing(crop_size=size, resize_size=size, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
    gray = torch.rand(2, 1, size, size, dtype=torch.float64)
    reference = run(model, pre, gray.expand(-1, 3, -1, -1))
    conv = rgb_to_gray(model, pre)
    assert torch.allclose(run(conv.model, conv.preprocessing, gray), reference, atol=1e-10, rtol=0)


@settings(max_examples=40, deadline=None)
@given(conv_configs, st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3))
def test_gray_to_rgb_is_exact_for_any_conv(cfg, weights):
    lambdas = tuple(w / sum(weights) for w in weights)
    model = build(cfg, 1)
    size = cfg["size"]
    pre = Preprocessing(crop_size=size, resize_size=size, mean=(cfg["mean"][0],), std=(cfg["std"][0],))
    rgb = torch.rand(2, 3, size, size, dtype=torch.float64)
    lum = (rgb * torch.tensor(lambdas, dtype=torch.float64).view(1, 3, 1, 1)).sum(1, keepdim=True)
    expanded = gray_to_rgb(model, pre, lambdas)
    assert torch.allclose(run(expanded.model, expanded.preprocessing, rgb), run(model, pre, lum), atol=1e-10, rtol=0)


def test_gray_to_rgb_by_default_equals_the_gray_model_as_the_suite_feeds_it():
    """The suite feeds a 1-channel model the BT.601 luminance of each RGB image (Preprocessing.normalize); the RGB
    copy made with gray_to_rgb's default weights must give the same logits on the RGB images. With BT.709 defaults
    (the old second definition) pure green was 255 * (0.7152 - 0.587) = 32.7 grey levels off."""
    torch.manual_seed(0)
    model = head(nn.Conv2d(1, 4, 3, padding=1))
    pre = Preprocessing(crop_size=8, resize_size=8, mean=(0.45,), std=(0.23,))
    rgb = torch.randint(0, 256, (4, 3, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    rgb[0] = torch.tensor([0, 255, 0], dtype=torch.uint8).view(3, 1, 1)  # pure green
    rgb[1] = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1)  # pure red
    fed = pre.normalize(rgb, torch.float64)
    # What the gray model is fed, by hand: ITU-R BT.601 luma of the pixel, then (x / 255 - mean) / std.
    assert torch.allclose(fed[0], torch.full((1, 8, 8), (0.587 - 0.45) / 0.23, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(fed[1], torch.full((1, 8, 8), (0.299 - 0.45) / 0.23, dtype=torch.float64), atol=1e-12)
    with torch.no_grad():
        reference = model(fed)
        expanded = gray_to_rgb(model, pre)
        got = expanded.model(expanded.preprocessing.normalize(rgb, torch.float64))
    assert torch.allclose(got, reference, atol=1e-10, rtol=0)


def test_one_image_is_not_judged_and_says_why_not_that_the_logits_are_constant():
    """A spread over images needs two: with one (real_images = 1, random_images = 0) the gate is not judged, naming
    the reason and the fix, and nothing is measured; two images are measured."""
    thresholds = {"max_abs_diff": 1e-3, "max_rel_diff": 1e-4, "min_top1_agreement": 0.99}

    def never():
        raise AssertionError("measured although one image cannot be judged")

    for assessor, key in ((assess_configured_model, "real_images"), (assess_zoo, "zoo_images")):
        record = AuditRecord("conversion", "m")
        with pytest.raises(NotJudged,
                           match=rf"1 image\(s\): whether the logits depend on the input .* needs at least 2.*raise {key} "
                                 r"or random_images"):
            assessor(record, Deferred(1, never), thresholds, {"model": "m"})
        assert record.metrics["n_images"] == 1 and "same for every image" not in record.not_judged
    model = load_model("tests.tiny_models:tiny?size=32", "cpu")
    rgb = torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    record = AuditRecord("conversion", "m")
    assess_configured_model(record, Deferred(2, lambda: check_equivalence(model, rgb, "gray_to_rgb")), thresholds, {"model": "m"})
    assert record.not_judged is None and record.metrics["n_images"] == 2 and record.metrics["reference_spread"] > 0


def test_naive_fold_is_wrong_with_imagenet_normalization_and_padding():
    torch.manual_seed(0)
    model = head(nn.Conv2d(3, 4, 3, padding=1))
    pre = Preprocessing(crop_size=12, resize_size=12)  # ImageNet mean/std: different per channel
    gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    reference = run(model, pre, gray.expand(-1, 3, -1, -1))
    naive = naive_rgb_to_gray(model, pre)
    assert (run(naive.model, naive.preprocessing, gray) - reference).abs().max() > 1e-2
    exact = rgb_to_gray(model, pre)
    assert exact.offset_map  # the zero-padded borders need their own correction
    assert (run(exact.model, exact.preprocessing, gray) - reference).abs().max() < 1e-12


def test_lite0_keeps_its_static_same_padding_stem_and_is_not_modified():
    lite0 = load_model("efficientnet_lite0", "cpu")
    before = copy.deepcopy(lite0.module.state_dict())
    conv = rgb_to_gray(lite0.module, lite0.preprocessing)
    stem = conv.model._conv_stem
    assert type(stem).__name__ == "Conv2dStaticSamePadding" and stem.in_channels == 1
    assert isinstance(stem.static_padding, nn.ZeroPad2d)
    assert not conv.offset_map  # one mean/std for all channels: the plain kernel sum is exact
    assert (conv.params_saved, conv.macs_saved) == (32 * 2 * 9, 32 * 2 * 9 * 112 * 112)
    assert all(torch.equal(before[k], v) for k, v in lite0.module.state_dict().items())


def test_refusals():
    pre = Preprocessing(crop_size=32, resize_size=32)
    affine = load_model("tests.tiny_models:affine_first?imagenet=false&size=32", "cpu")
    with pytest.raises(ConversionError, match=r"between the input and the first convolution \(stem\) changes the input"):
        rgb_to_gray(affine.module, pre)
    with pytest.raises(ConversionError, match="groups=3"):
        rgb_to_gray(head(nn.Conv2d(3, 6, 3, groups=3)), pre)
    with pytest.raises(ConversionError, match="must sum to 1"):
        gray_to_rgb(head(nn.Conv2d(1, 4, 3)), Preprocessing(crop_size=32, resize_size=32, mean=(0.5,), std=(0.5,)),
                    (0.3, 0.3, 0.3))
    with pytest.raises(ConversionError, match="needs a 3-channel model"):
        rgb_to_gray(head(nn.Conv2d(1, 4, 3)), Preprocessing(mean=(0.5,), std=(0.5,)))


def test_offset_map_fixes_the_input_size():
    model = head(nn.Conv2d(3, 4, 3, padding=1))
    conv = rgb_to_gray(model, Preprocessing(crop_size=12, resize_size=12))
    with pytest.raises(RuntimeError, match="convert it again for this input size"):
        conv.model(torch.zeros(1, 1, 16, 16, dtype=torch.float64))


PLANT_PLAIN_CONV = '''
import copy
import torch
from torch import nn
import visionaudit.families.conversion as conversion

_real = conversion.rgb_to_gray

def plain_rebuild(model, preprocessing, input_size=None):
    """The folklore bug: rebuild the stem as a plain nn.Conv2d, losing its static "same" padding."""
    result = _real(model, preprocessing, input_size)
    stem = result.model._conv_stem
    plain = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride, bias=stem.bias is not None)
    plain.weight = stem.weight
    result.model._conv_stem = plain
    return result

conversion.rgb_to_gray = plain_rebuild
'''


@pytest.mark.slow
def test_planted_plain_conv2d_rebuild_fails_the_audit(shared_data, tmp_path):
    (tmp_path / "plant_bug.py").write_text(PLANT_PLAIN_CONV)
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "pytest", "audits/test_conversion.py::test_configured_model", "-p", "plant_bug",
           "-p", "no:cacheprovider", "--audit-samples", "16", "-k", "rgb_to_gray"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "efficientnet_lite0 rgb_to_gray: converted logits differ" in proc.stdout


# --- first convolutions a fold cannot simply rewrite (stop 43) -----------------------------------------------------


class TwoReaders(nn.Module):
    """The input read by two convolutions: folding the first alone leaves the second a 1-channel input."""

    def __init__(self, alias: bool = False) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)
        self.alias = self.a if alias else None  # the same module under a second name: one convolution, not two

    def forward(self, x):
        return torch.tanh(self.alias(x) if self.alias is not None else self.a(x) + self.b(x)).flatten(1)


def test_a_second_reader_of_the_input_is_refused_naming_it():
    pre = Preprocessing(crop_size=12, resize_size=12)
    with pytest.raises(ConversionError, match=r"folding a alone does not convert this model: the folded copy fails on "
                                              r"1-channel input \(RuntimeError: .*something else reads the model's input too"):
        rgb_to_gray(TwoReaders().double().eval(), pre)


def test_a_first_conv_held_under_two_names_is_folded_under_both():
    torch.manual_seed(0)
    model, pre = TwoReaders(alias=True).double().eval(), Preprocessing(crop_size=12, resize_size=12)
    gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    folded = rgb_to_gray(model, pre)
    assert (run(folded.model, folded.preprocessing, gray) - run(model, pre, gray.expand(-1, 3, -1, -1))).abs().max() < 1e-12


def test_a_weight_standardized_first_conv_is_refused_not_folded_wrongly():
    """timm's StdConv2d standardizes its weight in forward: a summed kernel is standardized again, so the fold's logits
    differ (by 0.2 on a random-init BiT ResNet-50): refused, not a failed gate blaming the model."""
    pytest.importorskip("timm", reason="timm is in the test extra; install visionaudit[test]")
    from timm.layers import ScaledStdConv2d, StdConv2d

    torch.manual_seed(0)
    pre, gray_pre = Preprocessing(crop_size=12, resize_size=12), Preprocessing(crop_size=12, resize_size=12, mean=(0.5,),
                                                                               std=(0.25,))
    for conv in (StdConv2d(3, 4, 3, padding=1), ScaledStdConv2d(3, 4, 3, padding=1)):
        for dtype in (torch.float64, torch.float32):  # float32 too: the check's reference is not recomputed in float64
            with pytest.raises(ConversionError, match=rf"{type(conv).__name__}\) does not compute with its weight as stored"):
                rgb_to_gray(head(conv).to(dtype), pre)
    with pytest.raises(ConversionError, match=r"StdConv2d\) does not compute with its weight as stored"):
        gray_to_rgb(head(StdConv2d(1, 4, 3, padding=1)), gray_pre)


def test_an_input_read_first_by_something_else_is_named_so():
    """A functional conv2d before the first nn.Conv2d: that module takes 4 channels, not the input, and the message
    says so rather than to fold an affine into the mean/std."""

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w, self.conv = nn.Parameter(torch.randn(4, 3, 3, 3)), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.conv(nn.functional.conv2d(x, self.w)).flatten(1)

    with pytest.raises(ConversionError, match=r"the first nn.Conv2d to run \(conv\) takes 4 channels, not the model's 3: "
                                              "something else reads the input first"):
        rgb_to_gray(Functional(), Preprocessing(crop_size=12, resize_size=12))


def test_an_hf_model_whose_fold_needs_a_border_map_says_one_channel():
    """HF ResNet's zero-padded stem under ImageNet's per-channel mean/std needs the border map: the copy's config and
    embeddings say 1 channel (not None, which transformers refuses), and its logits are the original's on the gray
    image stacked three times."""
    pytest.importorskip("transformers", reason="transformers is in the hf extra; install visionaudit[hf]")
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    model = ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                      num_labels=5)).double().eval()
    pre = Preprocessing(crop_size=32, resize_size=32)
    folded = rgb_to_gray(model, pre)
    assert folded.offset_map and folded.model.config.num_channels == 1 and model.config.num_channels == 3
    assert folded.model.resnet.embedder.num_channels == 1
    gray = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    stacked = run(model, pre, gray.expand(-1, 3, -1, -1)).logits
    assert (run(folded.model, folded.preprocessing, gray).logits - stacked).abs().max() < 1e-12
    assert gray_to_rgb(folded.model, folded.preprocessing).model.config.num_channels == 3


def test_a_torchscript_model_is_not_applicable_to_the_folds_nor_to_channel_bias(tmp_path):
    """A TorchScript module cannot be hooked (its first convolution is not found) nor rewritten: both families skip it
    saying so, as they do an ONNX graph, instead of an error that fails the run."""
    from visionaudit.families.assessment import NotApplicable
    from visionaudit.families.channel_bias import FirstConvUnread, weight_bias

    path = tmp_path / "model.pt"
    torch.jit.trace(head(nn.Conv2d(3, 4, 3)).float(), torch.rand(1, 3, 12, 12)).save(str(path))
    model = load_model(f"{path}?mean=0.5,0.5,0.5&std=0.25,0.25,0.25&size=12", "cpu")
    with pytest.raises(NotApplicable, match="is a TorchScript module: the colour-space folds rewrite the first convolution"):
        check_equivalence(model, torch.zeros(2, 3, 12, 12, dtype=torch.uint8), "rgb_to_gray")
    unread = weight_bias(model)
    assert isinstance(unread, FirstConvUnread) and "TorchScript module, whose modules cannot be hooked" in unread.reason


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.nn.utils.weight_norm, the older form, is deprecated
def test_a_weight_or_spectral_normed_first_conv_is_folded_exactly_and_left_as_it_was():
    """The copy's weight is set plainly: a parametrization (or the older pre-hook) would recompute it, or refuse it
    (KeyError: attribute 'weight' already exists; TypeError: cannot assign a tensor as parameter 'weight')."""
    from torch.nn.utils import parametrizations, weight_norm

    pre = Preprocessing(crop_size=12, resize_size=12)
    gray_pre = Preprocessing(crop_size=12, resize_size=12, mean=(0.5,), std=(0.25,))
    for wrap in (parametrizations.weight_norm, parametrizations.spectral_norm, weight_norm):
        torch.manual_seed(0)
        model = head(wrap(nn.Conv2d(3, 4, 3, padding=1)))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
        folded = rgb_to_gray(model, pre)
        error = (run(folded.model, folded.preprocessing, gray) - run(model, pre, gray.expand(-1, 3, -1, -1))).abs().max()
        assert error < 1e-12, (wrap.__name__, error)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        assert isinstance(model[0].weight, torch.Tensor)  # the original still computes its weight
        one = head(wrap(nn.Conv2d(1, 4, 3, padding=1)))
        rgb = torch.rand(2, 3, 12, 12, dtype=torch.float64)
        expanded = gray_to_rgb(one, gray_pre)
        luma = (rgb * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)).sum(1, keepdim=True)
        assert (run(expanded.model, expanded.preprocessing, rgb) - run(one, gray_pre, luma)).abs().max() < 1e-12


@pytest.mark.filterwarnings("ignore::FutureWarning")  # the older pre-hook forms are deprecated
def test_a_normed_float32_first_conv_is_folded_not_refused_as_weight_standardized():
    """A model's weights are float32: the check's float64 reference recomputed the weight or spectral norm in float64,
    1e-7 off the float32 weight the fold sums, so every such conv was refused as "weight-standardized". The folds must
    give the float32 original's logits on the gray image stacked three times (and on the luminance)."""
    from torch.nn.utils import parametrizations, spectral_norm, weight_norm

    pre = Preprocessing(crop_size=12, resize_size=12)
    gray_pre = Preprocessing(crop_size=12, resize_size=12, mean=(0.5,), std=(0.25,))
    for wrap in (parametrizations.weight_norm, parametrizations.spectral_norm, weight_norm, spectral_norm):
        torch.manual_seed(0)
        model = head(wrap(nn.Conv2d(3, 4, 3, padding=1))).float()
        gray = torch.rand(2, 1, 12, 12, dtype=torch.float64)
        folded = rgb_to_gray(model, pre)
        got = run(folded.model.double(), folded.preprocessing, gray)
        error = (got - run(copy.deepcopy(model).double(), pre, gray.expand(-1, 3, -1, -1))).abs().max()
        assert error < 1e-5, (wrap.__name__, error)
        one = head(wrap(nn.Conv2d(1, 4, 3, padding=1))).float()
        rgb = torch.rand(2, 3, 12, 12, dtype=torch.float64)
        expanded = gray_to_rgb(one, gray_pre)
        luma = (rgb * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)).sum(1, keepdim=True)
        error = (run(expanded.model.double(), expanded.preprocessing, rgb) - run(one.double(), gray_pre, luma)).abs().max()
        assert error < 1e-5, (wrap.__name__, error)


def test_the_report_names_the_first_conv_as_the_model_calls_it_in_both_directions():
    """gray_to_rgb expands the folded copy, whose zero-padded stem under ImageNet's mean/std is wrapped in a border
    map: the report named the wrapper's inner module (conv1.conv), which is not in the user's model."""
    model = load_model("tests.tiny_models:tiny?size=32", "cpu")
    model = replace(model, module=torchvision.models.resnet18(num_classes=5).eval())
    rgb = torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    names = {n for n, _ in model.module.named_modules()}
    for direction in ("rgb_to_gray", "gray_to_rgb"):
        result = check_equivalence(model, rgb, direction)
        assert result.conversion.offset_map or direction == "gray_to_rgb"  # the fold needs the border map
        assert result.conversion.first_conv == "conv1" and "conv1" in names, (direction, result.conversion.first_conv)


def test_an_hf_efficientnets_zero_padded_input_folds_exactly_both_ways(tmp_path):
    """transformers' EfficientNet zero-pads its input (ZeroPad2d) before the first conv: zero padding commutes with the
    folds (the padded sum is the sum padded), so it is folded, not refused; checked in float64 against the original."""
    pytest.importorskip("transformers", reason="transformers is in the hf extra; install visionaudit[hf]")
    from tests.hub_models import EFFICIENTNET_QUERY, tiny_efficientnet

    loaded = load_model(f"hf:{tiny_efficientnet(tmp_path / 'effnet')}?{EFFICIENTNET_QUERY}", "cpu")
    model, pre = loaded.module.double(), loaded.preprocessing
    assert isinstance(model.efficientnet.embeddings.padding, nn.ZeroPad2d)
    folded = rgb_to_gray(model, pre)
    assert folded.first_conv == "efficientnet.embeddings.convolution"
    gray = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    stacked = run(model, pre, gray.expand(-1, 3, -1, -1)).logits
    assert (run(folded.model, folded.preprocessing, gray).logits - stacked).abs().max() < 1e-12 * (1 + stacked.abs().max())
    one = folded.model
    expanded = gray_to_rgb(one, folded.preprocessing)
    rgb = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)).sum(1, keepdim=True)
    reference = run(one, folded.preprocessing, luma).logits
    assert (run(expanded.model, expanded.preprocessing, rgb).logits - reference).abs().max() < 1e-12 * (1 + reference.abs().max())


def test_steps_before_the_first_conv_other_than_constant_padding_are_refused_naming_them():
    pre = Preprocessing(crop_size=12, resize_size=12)
    torch.manual_seed(0)
    reflect = nn.Sequential(nn.ReflectionPad2d(1), head(nn.Conv2d(3, 4, 3))).double().eval()
    with pytest.raises(ConversionError, match="padded with values that are not one constant"):
        rgb_to_gray(reflect, pre)
    relu = nn.Sequential(nn.ReLU(), head(nn.Conv2d(3, 4, 3))).double().eval()  # the identity on inputs in [0, 1)
    with pytest.raises(ConversionError, match=r"changes the input .*a non-linear step"):
        rgb_to_gray(relu, pre)
