"""Colour-space conversion of a model's first convolution, exact.

**RGB model to grayscale** (:func:`rgb_to_gray`). For a gray image ``g`` stacked three times, the original first conv
sees ``x_i = (g - m_i) / s_i`` and computes ``y(g) = conv(x(g))``. Everything up to the first conv is affine in ``g``,
and every padding mode (zeros, reflect, replicate, circular, and static "same" padding modules) is linear, so with the
converted input ``g_n = (g - m*) / s*`` and kernel ``w' = s* * sum_i w_i / s_i`` (bias unchanged):

    y(g) = conv'(g_n) + [conv(x(g = m*)) - conv'(0)]

The bracket is zero when every channel has the same mean and std (then ``m* = m``, ``s* = s``, and the fold is the
familiar "sum the kernels, keep the bias"). Otherwise it is a fixed map: constant inside the image but different along
zero-padded borders, because a padded zero means a different pixel value in each channel — which is where the naive
fold goes wrong. A spatially constant bracket is added to the bias; a map is kept as a buffer (for the converted input
size only) by :class:`BorderOffset`.

**Grayscale model to RGB** (:func:`gray_to_rgb`): a model trained on luminance ``T = sum_i l_i rgb_i`` (by default
ITU-R BT.601's weights, :data:`visionaudit.preprocessing.LUMA_BT601`: what the suite feeds a 1-channel model) becomes
an RGB model with kernels ``l_i * w``, each channel normalized with the gray mean and std. With ``sum l_i = 1`` it is
exact, borders included (a padded zero means ``rgb_i = m`` in every channel, so ``T = m`` as in the original).

The conv is found from the computation (:mod:`visionaudit.models.first_conv`); the converted conv is a copy of the
original module (class, ``Conv2dStaticSamePadding`` included, stride, padding, padding mode, dilation, groups, bias; a
weight or spectral norm's weight made plain); the original is not modified. Constant padding before the conv (any value:
HF EfficientNet's ``nn.ZeroPad2d``) is taken as the conv's own; a fold that is not exact is refused.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

from visionaudit.data.image_sets import ImageSet
from visionaudit.errors import VisionAuditError
from visionaudit.families import thresholds as f
from visionaudit.families.assessment import Deferred, NotApplicable, NotJudged
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import Family, register_family
from visionaudit.families.rounding import rounding_alone
from visionaudit.models.controls import CONTROL_ZOO  # noqa: F401  (the controls its audit parametrizes over)
from visionaudit.preprocessing import LUMA_BT601, Preprocessing, luminance

if TYPE_CHECKING:  # torch and the models are imported where a model is converted: the descriptor is read on the xdist
    import torch  # controller, which never imports torch (benchmarks/phases.py times the start-up)
    from torch import nn

    from visionaudit.models.inference import LogitComparison
    from visionaudit.models.loading import LoadedModel

DIRECTIONS = ("rgb_to_gray", "gray_to_rgb")
# Whether the logits depend on the input at all (their spread over images) needs two images; with fewer,
# equivalence would prove nothing, and the gate is not judged rather than failed with a misleading reason.
MIN_IMAGES = 2


class ConversionError(VisionAuditError, ValueError):
    """The model cannot be converted exactly; the message names what stands in the way."""


def __getattr__(name: str):
    # BorderOffset is an nn.Module: defined on first use, as this module is read for its descriptor without torch.
    if name == "BorderOffset":
        return _border_offset()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _border_offset() -> type:
    from torch import nn

    class BorderOffset(nn.Module):
        """The converted conv plus a fixed output map (the zero-padded borders' correction)."""

        def __init__(self, conv: nn.Conv2d, offset: torch.Tensor) -> None:
            super().__init__()
            self.conv = conv
            self.register_buffer("offset", offset)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            if y.shape[-2:] != self.offset.shape[-2:]:
                raise RuntimeError(f"this converted model was folded for first-conv outputs of {tuple(self.offset.shape[-2:])}, "
                                   f"got {tuple(y.shape[-2:])}: convert it again for this input size")
            return y + self.offset.to(y.dtype)

        @property
        def in_channels(self) -> int:  # what _swap tells a Hugging Face model's num_channels
            return self.conv.in_channels

    BorderOffset.__module__, BorderOffset.__qualname__ = __name__, "BorderOffset"  # found by name, as a module-level class
    return BorderOffset


@dataclass
class Conversion:
    model: nn.Module  # the converted copy, eval mode
    preprocessing: Preprocessing  # what the converted model's input expects
    first_conv: str
    params_saved: int
    macs_saved: int  # multiply-adds saved per image at the input size
    offset_map: bool  # whether a border map was needed (input size fixed)


def _conv_copy(conv: nn.Conv2d, weight: torch.Tensor, in_channels: int) -> nn.Conv2d:
    from torch import nn

    from visionaudit.models.first_conv import plain_copy

    new = plain_copy(conv)  # a weight or spectral norm would recompute the weight set here
    new.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
    new.in_channels = in_channels
    return new


def _first(model: nn.Module, pre: Preprocessing, size: int) -> tuple:
    """The first conv (refused when its input is the model's changed, constant-padded aside), device, output size, padding."""
    import torch

    from visionaudit.models.first_conv import find_first_conv

    device = next(iter(model.parameters()), torch.empty(0)).device
    first = find_first_conv(model, (1, pre.channels, size, size), device)
    if not first.input_is_model_input and first.in_channels != pre.channels:
        raise ConversionError(f"the first nn.Conv2d to run ({first.name}) takes {first.in_channels} channels, not the model's "
                              f"{pre.channels}: something else reads the input first (a functional conv2d, a Conv3d, a Linear "
                              "patch embedding); the folds rewrite the nn.Conv2d that reads the input")
    pad = first.padding
    if pad is not None and pad.value is None:  # a reflection or replication: the border map below pads with one constant
        raise ConversionError(f"the input is padded with values that are not one constant before the first convolution "
                              f"({first.name}); the folds allow constant padding only (nn.ZeroPad2d, a ConstantPad2d): "
                              "pad with a constant, or fold the padding into the convolution, then convert")
    if not first.input_is_model_input and pad is None:
        raise ConversionError(f"something between the input and the first convolution ({first.name}) changes the input (a "
                              "per-channel affine such as inception_v3's transform_input=True, a normalization layer, a "
                              "non-linear step, a resizing module): fold an affine into the model's mean/std, then convert; "
                              "constant padding is allowed")
    conv = first.module

    # The constant padding the converted model keeps: its border differs from the original's by a map independent of the
    # image (zero for zeros and one mean/std over the channels), which the border offset adds back: exact either way.
    def lead(x: torch.Tensor) -> torch.Tensor:
        return x if pad is None else torch.nn.functional.pad(x, pad.pads, value=pad.value)

    with torch.inference_mode():
        out_hw = conv(lead(torch.zeros(1, pre.channels, size, size, device=device, dtype=conv.weight.dtype))).shape[-2:]
    return first, conv, device, (int(out_hw[0]), int(out_hw[1])), lead


def _check_fold(first: str, conv: nn.Module, expect: torch.Tensor, got: torch.Tensor, converted: nn.Module,
                probe: torch.Tensor) -> None:
    """Refuse an inexact fold: ``expect``/``got`` the original and folded conv in float64, ``probe`` an input the copy takes."""
    import torch

    if not torch.allclose(got, expect, rtol=1e-9, atol=1e-9 * (1 + float(expect.abs().max()))):
        raise ConversionError(f"{first} ({type(conv).__name__}) does not compute with its weight as stored (a weight-"
                              "standardized convolution, such as timm's StdConv2d or ScaledStdConv2d, for one), so its "
                              "kernels cannot be folded over the input channels")
    try:
        with torch.inference_mode():
            converted(probe)
    except Exception as e:  # noqa: BLE001  (whatever stops it: the reason is the model's own message)
        raise ConversionError(f"folding {first} alone does not convert this model: the folded copy fails on "
                              f"{probe.shape[1]}-channel input ({type(e).__name__}: {str(e).strip()[:200]}); something "
                              "else reads the model's input too (a second convolution, a skip from the input)") from None


def rgb_to_gray(model: nn.Module, preprocessing: Preprocessing, input_size: int | None = None) -> Conversion:
    """An exact grayscale copy of an RGB ``model`` (see the module docstring for the method)."""
    import torch
    from torch import nn

    from visionaudit.models.first_conv import conv_macs, swap_module

    if preprocessing.channels != 3:
        raise ConversionError(f"rgb_to_gray needs a 3-channel model; this one takes {preprocessing.channels}")
    size = input_size or preprocessing.crop_size
    first, conv, device, out_hw, lead = _first(model, preprocessing, size)
    if conv.in_channels != 3 or conv.groups != 1:
        raise ConversionError(f"{first.name} has in_channels={conv.in_channels}, groups={conv.groups}; rgb_to_gray folds a "
                              "3-channel, ungrouped first conv")
    m, s = (torch.tensor(v, dtype=torch.float64) for v in (preprocessing.mean, preprocessing.std))
    m_star, s_star = float(m.mean()), float(s.mean())
    w = conv.weight.detach().double()
    w_new = s_star * (w / s.to(w.device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    new_conv = _conv_copy(conv, w_new, 1)

    # The bracket of the docstring, in float64 with the modules themselves (any linear padding, the constant's too).
    # ref: the weight conv computes with, plainly (a weight norm recomputed in float64 would differ by 1e-7); cand: the
    # unrounded fold (a copy of the float64 ref keeps float64), so that _check_fold sees float64 rounding only
    ref = _conv_copy(conv, conv.weight.detach(), 3).double()
    cand = _conv_copy(ref, w_new, 1)
    with torch.inference_mode():
        x_at_mstar = ((m_star - m) / s).to(device).view(1, 3, 1, 1).expand(1, 3, size, size)
        offset = ref(lead(x_at_mstar)) - cand(lead(torch.zeros(1, 1, size, size, dtype=torch.float64, device=device)))
    converted = copy.deepcopy(model).eval()
    flat = offset.flatten(2)
    needs_map = bool((flat.amax(2) - flat.amin(2)).abs().max() > 1e-9 * (1 + flat.abs().max()))
    if needs_map:
        swap_module(converted, first.name, _border_offset()(new_conv, offset.to(conv.weight.dtype)))
    else:
        per_channel = flat[0, :, 0].to(conv.weight.dtype)
        if new_conv.bias is None:
            if per_channel.abs().max() > 0:
                new_conv.bias = nn.Parameter(per_channel.clone(), requires_grad=False)
        else:
            new_conv.bias = nn.Parameter(new_conv.bias.detach() + per_channel, requires_grad=False)
        swap_module(converted, first.name, new_conv)
    with torch.inference_mode():  # the fold on a random gray image (its own generator: the global one is the caller's)
        g = torch.rand(1, 1, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        x = ((g * s_star + m_star - m.view(1, 3, 1, 1)) / s.view(1, 3, 1, 1)).to(device)
        expect, got = ref(lead(x)), cand(lead(g.to(device))) + offset
    _check_fold(first.name, conv, expect, got, converted, torch.zeros(1, 1, size, size, device=device, dtype=conv.weight.dtype))
    gray_pre = replace(preprocessing, mean=(m_star,), std=(s_star,), source=f"{preprocessing.source}; converted to grayscale")
    added = 0 if conv.bias is not None or new_conv.bias is None else new_conv.bias.numel()  # a bias the fold added
    return Conversion(converted, gray_pre, first.name, conv.weight.numel() - new_conv.weight.numel() - added,
                      conv_macs(conv, 3, out_hw) - conv_macs(new_conv, 1, out_hw), needs_map)


def naive_rgb_to_gray(model: nn.Module, preprocessing: Preprocessing) -> Conversion:
    """The folklore fold, for comparison: sum the kernels, keep the bias, feed gray normalized with the
    average mean and std, ignoring that each channel was normalized differently."""
    from visionaudit.models.first_conv import conv_macs, swap_module

    first, conv, _, out_hw, _ = _first(model, preprocessing, preprocessing.crop_size)
    new_conv = _conv_copy(conv, conv.weight.detach().sum(dim=1, keepdim=True), 1)
    converted = copy.deepcopy(model).eval()
    swap_module(converted, first.name, new_conv)
    mean, std = sum(preprocessing.mean) / 3, sum(preprocessing.std) / 3
    return Conversion(converted, replace(preprocessing, mean=(mean,), std=(std,)), first.name, conv.weight.numel()
                      - new_conv.weight.numel(), conv_macs(conv, 3, out_hw) - conv_macs(new_conv, 1, out_hw), False)


def gray_to_rgb(model: nn.Module, preprocessing: Preprocessing, lambdas: tuple[float, float, float] = LUMA_BT601) -> Conversion:
    """An exact RGB copy of a grayscale ``model`` trained on ``T = sum_i lambdas_i * rgb_i``. The default weights are
    the luminance the suite feeds a 1-channel model (BT.601), so that the copy on RGB images equals the gray model as
    the suite runs it; a model trained on another luminance (BT.709's 0.2126, 0.7152, 0.0722) passes its own."""
    import torch

    from visionaudit.models.first_conv import conv_macs, swap_module

    if preprocessing.channels != 1:
        raise ConversionError(f"gray_to_rgb needs a 1-channel model; this one takes {preprocessing.channels}")
    if abs(sum(lambdas) - 1.0) > 1e-6:
        raise ConversionError(f"the luminance weights {lambdas} must sum to 1 for an exact expansion (they sum to "
                              f"{sum(lambdas)})")
    first, conv, device, out_hw, lead = _first(model, preprocessing, preprocessing.crop_size)
    if conv.in_channels != 1 or conv.groups != 1:
        raise ConversionError(f"{first.name} has in_channels={conv.in_channels}, groups={conv.groups}; gray_to_rgb expands a "
                              "1-channel, ungrouped first conv")
    lam = torch.tensor(lambdas, dtype=torch.float64, device=device).view(1, 3, 1, 1)
    new_conv = _conv_copy(conv, conv.weight.detach().double() * lam, 3)
    converted = copy.deepcopy(model).eval()
    swap_module(converted, first.name, new_conv)
    size = preprocessing.crop_size
    with torch.inference_mode():  # normalized RGB: the gray model sees its luminance (the lambdas sum to 1)
        x = torch.rand(1, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).to(device)
        ref = _conv_copy(conv, conv.weight.detach(), 1).double()  # plain and unrounded, as in rgb_to_gray
        expect, got = ref(lead((x * lam).sum(dim=1, keepdim=True))), _conv_copy(ref, ref.weight.detach() * lam, 3)(lead(x))
    _check_fold(first.name, conv, expect, got, converted, torch.zeros(1, 3, size, size, device=device, dtype=conv.weight.dtype))
    rgb_pre = replace(preprocessing, mean=preprocessing.mean * 3, std=preprocessing.std * 3,
                      source=f"{preprocessing.source}; expanded to RGB")
    return Conversion(converted, rgb_pre, first.name, conv.weight.numel() - new_conv.weight.numel(),
                      conv_macs(conv, 1, out_hw) - conv_macs(new_conv, 3, out_hw), False)


# -- the audit's measurement ------------------------------------------------------------------------


@dataclass
class Equivalence:
    """A folded model against the original on the same images (see :func:`check_equivalence`)."""

    direction: str
    n_images: int
    logits: LogitComparison
    conversion: Conversion
    naive_max_abs_diff: float | None  # rgb_to_gray only: the folklore fold's error, for comparison


def audit_inputs(model: LoadedModel, image_set: ImageSet, n_real: int, n_random: int, seed: int) -> torch.Tensor:
    """uint8 colour images at the model's geometry: a stratified subset of real ones, then uniform noise."""
    import torch

    from visionaudit.data.image_sets import load_images
    from visionaudit.data.streaming import as_tensor

    real = as_tensor(load_images(image_set.stratified_subset(n_real, seed), model.preprocessing.geometry))  # a configured few
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (n_random, *real.shape[1:]), generator=gen, dtype=torch.uint8)
    return torch.cat([real, noise])


def zoo_inputs(model: LoadedModel, image_set: ImageSet, n_real: int, n_random: int, seed: int) -> torch.Tensor:
    """:func:`audit_inputs` for a random-init control, made fit to compare first: zero weight matrices get small
    random values (else its logits could ignore the input) and BatchNorm statistics come from these inputs."""
    from visionaudit.models.controls import calibrate_batchnorm, nondegenerate

    nondegenerate(model.module)
    rgb = audit_inputs(model, image_set, n_real, n_random, seed)
    calibrate_batchnorm(model.module, model.preprocessing.normalize(rgb.to(model.device)))
    return rgb


def check_equivalence(model: LoadedModel, rgb: torch.Tensor, direction: str) -> Equivalence:
    """Fold ``model`` and compare logits with the original on ``rgb`` (uint8 colour images).

    rgb_to_gray: the original on the gray image (the rounded BT.601 luminance) stacked three times vs the folded
    model on the gray image. gray_to_rgb: the folded (grayscale) model on the colour image, fed as the suite feeds
    any 1-channel model (the unrounded luminance, :meth:`Preprocessing.normalize`), vs its RGB expansion (default
    weights) on the colour image.
    """
    import torch

    from visionaudit.models.inference import compare_outputs, predict_logits
    from visionaudit.models.onnx_model import OnnxModule

    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)}")
    if isinstance(model.module, (OnnxModule, torch.jit.ScriptModule)):  # a TorchScript module cannot be hooked or rewritten
        kind = "an ONNX graph (run by ONNX Runtime)" if isinstance(model.module, OnnxModule) else "a TorchScript module"
        raise NotApplicable(f"{model.id} is {kind}: the colour-space folds rewrite the first convolution of a torch "
                            "model; audit the torch model it was exported from")
    gray = luminance(rgb).round().clamp(0, 255).to(torch.uint8)
    folded = rgb_to_gray(model.module, model.preprocessing)
    gray_model = replace(model, module=folded.model, preprocessing=folded.preprocessing)
    naive_error = None
    if direction == "rgb_to_gray":
        reference = predict_logits(model, gray.expand(-1, 3, -1, -1), what="conversion rgb_to_gray: the gray images as RGB")
        converted = predict_logits(gray_model, gray, what="conversion rgb_to_gray: folded to 1 channel")
        naive = naive_rgb_to_gray(model.module, model.preprocessing)
        naive_logits = predict_logits(replace(model, module=naive.model, preprocessing=naive.preprocessing), gray,
                                      what="conversion rgb_to_gray: the naive fold")
        naive_error = compare_outputs(model, reference, naive_logits).max_abs_diff  # in the same form as the fold's
        result = folded
    else:
        # named as in the model, not as in the fold (a border map's inner conv); normalize() feeds the reference the luminance
        result = replace(gray_to_rgb(folded.model, folded.preprocessing), first_conv=folded.first_conv)
        reference = predict_logits(gray_model, rgb, what="conversion gray_to_rgb: the 1-channel model")
        converted = predict_logits(replace(model, module=result.model, preprocessing=result.preprocessing), rgb,
                                   what="conversion gray_to_rgb: expanded to 3 channels")
    return Equivalence(direction, len(rgb), compare_outputs(model, reference, converted), result, naive_error)


# -- judging: the assessors its audit hands the measured equivalence --------------------------------


def _judge(record: AuditRecord, measured: Deferred, thresholds: Mapping[str, Any], context: Mapping[str, Any],
           absolute: bool) -> None:
    """``measured.measure()`` gives the :class:`Equivalence` (:func:`check_equivalence`)."""
    record.metric("n_images", measured.n_images)  # kept even when the fold or the comparison fails
    for name in ("max_rel_diff", *(("max_abs_diff",) if absolute else ()), "min_top1_agreement"):  # not judged too
        record.threshold(name, thresholds[name])
    if measured.n_images < MIN_IMAGES:
        count = "real_images" if absolute else "zoo_images"
        record.not_judged = (f"{measured.n_images} image(s): whether the logits depend on the input at all (their "
                             f"spread over images) needs at least {MIN_IMAGES}, else equivalence would prove nothing; "
                             f"raise {count} or random_images in [audits.conversion]")
        raise NotJudged(record.not_judged)
    result: Equivalence = measured.measure()
    logits = result.logits
    # A model whose logits ignore the input would make the comparison pass vacuously.
    spread = record.metric("reference_spread", logits.reference_spread)
    if not spread > 0:
        raise AssertionError(f"{context['model']}: its logits are the same for every image, so equivalence would prove nothing")
    if result.naive_max_abs_diff is not None:
        record.metric("naive_max_abs_diff", result.naive_max_abs_diff)
    for name in ("first_conv", "params_saved", "macs_saved"):
        record.metric(name, getattr(result.conversion, name))
    record.metric("border_offset_map", result.conversion.offset_map)
    # Relative to the logits' scale for every model (random-init controls can have huge logits);
    # absolute too for real models, whose logits have a meaningful scale.
    ok = record.check_max("max_rel_diff", logits.max_rel_diff, "max_rel_diff", thresholds["max_rel_diff"])
    if absolute:
        ok &= record.check_max("max_abs_diff", logits.max_abs_diff, "max_abs_diff", thresholds["max_abs_diff"])
    else:
        record.metric("max_abs_diff", logits.max_abs_diff)
    ok &= record.check_min("top1_agreement", logits.top1_agreement, "min_top1_agreement", thresholds["min_top1_agreement"])
    if not ok:
        raise AssertionError(f"{context['model']} {result.direction}: converted logits differ by up to {logits.max_abs_diff:.3g} "
                             f"({logits.max_rel_diff:.3g} of the largest logit) (top-1 agreement {logits.top1_agreement:.3f}) "
                             f"on {result.n_images} images"
                             + rounding_alone(logits.reference_rounding, logits.max_rel_diff, context["model"]))


def assess_configured_model(record: AuditRecord, measured: Deferred, thresholds: Mapping[str, Any],
                            context: Mapping[str, Any]) -> None:
    """A configured model: relative and absolute logit differences, and top-1 agreement."""
    _judge(record, measured, thresholds, context, absolute=True)


def assess_zoo(record: AuditRecord, measured: Deferred, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """A random-init control: relative differences only (its logits' scale means nothing), and top-1 agreement."""
    _judge(record, measured, thresholds, context, absolute=False)


FAMILY = register_family(Family(
    name="conversion",
    gates="the colour-space folds of the first conv (`rgb_to_gray`, `gray_to_rgb`) give the original logits, on "
          "grayscale images of the labelled set (`--audit-images`) and random inputs, for the configured models and the "
          "18-architecture zoo",
    key_metric="max_abs_diff",
    higher_is_better=False,
    assessors={"configured_model": assess_configured_model, "zoo": assess_zoo},
    metrics=("max_rel_diff", "top1_agreement", "params_saved", "macs_saved", "naive_max_abs_diff", "border_offset_map"),
    thresholds={
        "max_abs_diff": f.nonnegative("float32 logits, converted vs original (configured models)", default=1e-3),
        "max_rel_diff": f.nonnegative("max |diff| / max |logit| (every model, random-init zoo included)", default=1e-4),
        "min_top1_agreement": f.fraction("share of images whose top-1 class is unchanged", default=0.99),
        "real_images": f.count("grayscale labelled images (--audit-images) per configured model", default=64),
        "zoo_images": f.count("real images per random-init zoo architecture", default=8),
        "random_images": f.whole("uniform random inputs, beside the real ones", default=4),
    },
    moved_keys={
        "deployment_images": "[audits.deployment] images",
        "deployment_max_abs_diff": "[audits.deployment] max_abs_diff",
        "deployment_min_top1_agreement": "[audits.deployment] min_top1_agreement",
    },
    html_section="visionaudit.html.sections:conversion_and_deployment",
))
