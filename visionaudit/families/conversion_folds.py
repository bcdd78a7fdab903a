"""Colour-space conversion of a model's first convolution, exact: the folds and the check of their equivalence
(the conversion family's measurement; its descriptor and assessors are in visionaudit/families/conversion.py).

**RGB model to grayscale** (:func:`rgb_to_gray`). For a gray image ``g`` stacked three times, the
original first conv sees ``x_i = (g - m_i) / s_i`` and computes ``y(g) = conv(x(g))``. Everything up to
the first conv is affine in ``g``, and every padding mode (zeros, reflect, replicate, circular, and
static "same" padding modules) is linear, so with the converted input ``g_n = (g - m*) / s*`` and
kernel ``w' = s* * sum_i w_i / s_i`` (bias unchanged):

    y(g) = conv'(g_n) + [conv(x(g = m*)) - conv'(0)]

The bracket is zero when every channel has the same mean and std (then ``m* = m``, ``s* = s``, and the
fold is the familiar "sum the kernels, keep the bias"). Otherwise it is a fixed map: constant inside
the image but different along zero-padded borders, because a padded zero means a different pixel value
in each channel — which is where the naive fold goes wrong. A spatially constant bracket is added to
the bias; a map is kept as a buffer (for the converted input size only) by :class:`BorderOffset`.

**Grayscale model to RGB** (:func:`gray_to_rgb`): a model trained on luminance ``T = sum_i l_i rgb_i``
becomes an RGB model with kernels ``l_i * w``, each channel normalized with the gray mean and std.
With ``sum l_i = 1`` it is exact, borders included (a padded zero means ``rgb_i = m`` in every channel,
so ``T = m`` as in the original).

The conv is found from the computation (:mod:`visionaudit.models.first_conv`); the converted conv is a copy
of the original module, so its class (``Conv2dStaticSamePadding`` included), stride, padding, padding
mode, dilation, groups and bias are kept. The original model is not modified.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import nn

from visionaudit.data.image_sets import ImageSet, load_images
from visionaudit.data.streaming import as_tensor
from visionaudit.errors import VisionAuditError
from visionaudit.families.assessment import NotApplicable
from visionaudit.families.conversion import DIRECTIONS
from visionaudit.models.controls import calibrate_batchnorm, nondegenerate
from visionaudit.models.first_conv import find_first_conv
from visionaudit.models.inference import LogitComparison, compare_logits, predict_logits
from visionaudit.models.loading import LoadedModel
from visionaudit.models.onnx_model import OnnxModule
from visionaudit.preprocessing import Preprocessing

LUMINANCE = (0.2126, 0.7152, 0.0722)


class ConversionError(VisionAuditError, ValueError):
    """The model cannot be converted exactly; the message names what stands in the way."""


class BorderOffset(nn.Module):
    """The converted conv plus a fixed output map (the zero-padded borders' correction)."""

    def __init__(self, conv: nn.Conv2d, offset: torch.Tensor) -> None:
        super().__init__()
        self.conv = conv
        self.register_buffer("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.shape[-2:] != self.offset.shape[-2:]:
            raise RuntimeError(
                f"this converted model was folded for first-conv outputs of {tuple(self.offset.shape[-2:])}, got "
                f"{tuple(y.shape[-2:])}: convert it again for this input size"
            )
        return y + self.offset.to(y.dtype)


@dataclass
class Conversion:
    model: nn.Module  # the converted copy, eval mode
    preprocessing: Preprocessing  # what the converted model's input expects
    first_conv: str
    params_saved: int
    macs_saved: int  # multiply-adds saved per image at the input size
    offset_map: bool  # whether a border map was needed (input size fixed)


def _swap(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    old = model.get_submodule(name)
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    # Hugging Face models check the input's channels against a ``num_channels`` kept by the modules around the first
    # conv (ViT's patch embeddings) and in their config: the copy's must say the new count, else it refuses its input.
    before, after = getattr(old, "in_channels", None), getattr(new, "in_channels", None)
    parts = parent_name.split(".") if parent_name else []
    for owner in [model, *(model.get_submodule(".".join(parts[:i + 1])) for i in range(len(parts)))]:
        if getattr(owner, "num_channels", None) == before and isinstance(before, int):
            owner.num_channels = after
    config = getattr(model, "config", None)
    if getattr(config, "num_channels", None) == before and isinstance(before, int):
        config.num_channels = after


def _conv_copy(conv: nn.Conv2d, weight: torch.Tensor, in_channels: int) -> nn.Conv2d:
    new = copy.deepcopy(conv)
    new.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
    new.in_channels = in_channels
    return new


def _first(model: nn.Module, pre: Preprocessing, size: int) -> tuple:
    """The first conv (refused when the input reaches it changed), its device and output size."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    first = find_first_conv(model, (1, pre.channels, size, size), device)
    if not first.input_is_model_input:
        raise ConversionError(
            f"something between the input and the first convolution ({first.name}) changes the input (for example a "
            "per-channel affine such as inception_v3's transform_input=True); turn it off and fold it into the "
            "model's mean/std, then convert"
        )
    conv = first.module
    with torch.inference_mode():
        out_hw = conv(torch.zeros(1, pre.channels, size, size, device=device, dtype=conv.weight.dtype)).shape[-2:]
    return first, conv, device, (int(out_hw[0]), int(out_hw[1]))


def _macs(conv: nn.Conv2d, in_channels: int, out_hw: tuple[int, int]) -> int:
    kh, kw = conv.kernel_size
    return conv.out_channels * (in_channels // conv.groups) * kh * kw * out_hw[0] * out_hw[1]


def rgb_to_gray(model: nn.Module, preprocessing: Preprocessing, input_size: int | None = None) -> Conversion:
    """An exact grayscale copy of an RGB ``model`` (see the module docstring for the method)."""
    if preprocessing.channels != 3:
        raise ConversionError(f"rgb_to_gray needs a 3-channel model; this one takes {preprocessing.channels}")
    size = input_size or preprocessing.crop_size
    first, conv, device, out_hw = _first(model, preprocessing, size)
    if conv.in_channels != 3 or conv.groups != 1:
        raise ConversionError(f"{first.name} has in_channels={conv.in_channels}, groups={conv.groups}; rgb_to_gray folds a 3-channel, ungrouped first conv")
    m = torch.tensor(preprocessing.mean, dtype=torch.float64)
    s = torch.tensor(preprocessing.std, dtype=torch.float64)
    m_star, s_star = float(m.mean()), float(s.mean())
    w = conv.weight.detach().double()
    w_new = s_star * (w / s.to(w.device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    new_conv = _conv_copy(conv, w_new, 1)

    # The bracket of the docstring, in float64 with the modules themselves (any linear padding).
    ref, cand = copy.deepcopy(conv).double(), copy.deepcopy(new_conv).double()
    with torch.inference_mode():
        x_at_mstar = ((m_star - m) / s).to(device).view(1, 3, 1, 1).expand(1, 3, size, size)
        offset = ref(x_at_mstar) - cand(torch.zeros(1, 1, size, size, dtype=torch.float64, device=device))
    converted = copy.deepcopy(model).eval()
    flat = offset.flatten(2)
    needs_map = bool((flat.amax(2) - flat.amin(2)).abs().max() > 1e-9 * (1 + flat.abs().max()))
    if needs_map:
        _swap(converted, first.name, BorderOffset(new_conv, offset.to(conv.weight.dtype)))
    else:
        per_channel = flat[0, :, 0].to(conv.weight.dtype)
        if new_conv.bias is None:
            if per_channel.abs().max() > 0:
                new_conv.bias = nn.Parameter(per_channel.clone(), requires_grad=False)
        else:
            new_conv.bias = nn.Parameter(new_conv.bias.detach() + per_channel, requires_grad=False)
        _swap(converted, first.name, new_conv)
    gray_pre = replace(preprocessing, mean=(m_star,), std=(s_star,), source=f"{preprocessing.source}; converted to grayscale")
    return Conversion(
        model=converted,
        preprocessing=gray_pre,
        first_conv=first.name,
        params_saved=conv.weight.numel() - new_conv.weight.numel() - (0 if conv.bias is not None or new_conv.bias is None else new_conv.bias.numel()),
        macs_saved=_macs(conv, 3, out_hw) - _macs(new_conv, 1, out_hw),
        offset_map=needs_map,
    )


def naive_rgb_to_gray(model: nn.Module, preprocessing: Preprocessing) -> Conversion:
    """The folklore fold, for comparison: sum the kernels, keep the bias, feed gray normalized with the
    average mean and std, ignoring that each channel was normalized differently."""
    first, conv, _, out_hw = _first(model, preprocessing, preprocessing.crop_size)
    new_conv = _conv_copy(conv, conv.weight.detach().sum(dim=1, keepdim=True), 1)
    converted = copy.deepcopy(model).eval()
    _swap(converted, first.name, new_conv)
    mean = sum(preprocessing.mean) / 3
    std = sum(preprocessing.std) / 3
    return Conversion(converted, replace(preprocessing, mean=(mean,), std=(std,)), first.name,
                      conv.weight.numel() - new_conv.weight.numel(), _macs(conv, 3, out_hw) - _macs(new_conv, 1, out_hw), False)


def gray_to_rgb(model: nn.Module, preprocessing: Preprocessing, lambdas: tuple[float, float, float] = LUMINANCE) -> Conversion:
    """An exact RGB copy of a grayscale ``model`` trained on ``T = sum_i lambdas_i * rgb_i``."""
    if preprocessing.channels != 1:
        raise ConversionError(f"gray_to_rgb needs a 1-channel model; this one takes {preprocessing.channels}")
    if abs(sum(lambdas) - 1.0) > 1e-6:
        raise ConversionError(f"the luminance weights {lambdas} must sum to 1 for an exact expansion (they sum to {sum(lambdas)})")
    first, conv, device, out_hw = _first(model, preprocessing, preprocessing.crop_size)
    if conv.in_channels != 1:
        raise ConversionError(f"{first.name} takes {conv.in_channels} channels; gray_to_rgb expands a 1-channel first conv")
    if conv.groups != 1:
        raise ConversionError(f"{first.name} is grouped (groups={conv.groups}); gray_to_rgb expands an ungrouped first conv")
    lam = torch.tensor(lambdas, dtype=torch.float64, device=device).view(1, 3, 1, 1)
    new_conv = _conv_copy(conv, conv.weight.detach().double() * lam, 3)
    converted = copy.deepcopy(model).eval()
    _swap(converted, first.name, new_conv)
    rgb_pre = replace(preprocessing, mean=preprocessing.mean * 3, std=preprocessing.std * 3, source=f"{preprocessing.source}; expanded to RGB")
    return Conversion(converted, rgb_pre, first.name, conv.weight.numel() - new_conv.weight.numel(),
                      _macs(conv, 1, out_hw) - _macs(new_conv, 3, out_hw), False)


def luminance(images: torch.Tensor, lambdas: tuple[float, float, float] = LUMINANCE) -> torch.Tensor:
    """uint8 RGB ``(N, 3, H, W)`` to float luminance in [0, 255], ``(N, 1, H, W)``."""
    lam = torch.tensor(lambdas, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.float() * lam).sum(dim=1, keepdim=True)


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
    real = as_tensor(load_images(image_set.stratified_subset(n_real, seed), model.preprocessing.geometry))  # a configured few
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (n_random, *real.shape[1:]), generator=gen, dtype=torch.uint8)
    return torch.cat([real, noise])


def zoo_inputs(model: LoadedModel, image_set: ImageSet, n_real: int, n_random: int, seed: int) -> torch.Tensor:
    """:func:`audit_inputs` for a random-init control, made fit to compare first: zero weight matrices get small
    random values (else its logits could ignore the input) and BatchNorm statistics come from these inputs."""
    nondegenerate(model.module)
    rgb = audit_inputs(model, image_set, n_real, n_random, seed)
    calibrate_batchnorm(model.module, model.preprocessing.normalize(rgb.to(model.device)))
    return rgb


def check_equivalence(model: LoadedModel, rgb: torch.Tensor, direction: str) -> Equivalence:
    """Fold ``model`` and compare logits with the original on ``rgb`` (uint8 colour images).

    rgb_to_gray: the original on the gray image stacked three times vs the folded model on the gray
    image. gray_to_rgb: the folded (grayscale) model on the unrounded luminance image, its exact
    counterpart, vs its RGB expansion on the colour image.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)}")
    if isinstance(model.module, OnnxModule):
        raise NotApplicable(f"{model.id} is an ONNX graph (run by ONNX Runtime): the colour-space folds rewrite the first "
                            "convolution of a torch model; audit the torch model it was exported from")
    gray = luminance(rgb).round().clamp(0, 255).to(torch.uint8)
    folded = rgb_to_gray(model.module, model.preprocessing)
    gray_model = replace(model, module=folded.model, preprocessing=folded.preprocessing)
    naive_error = None
    if direction == "rgb_to_gray":
        reference = predict_logits(model, gray.expand(-1, 3, -1, -1))
        converted = predict_logits(gray_model, gray)
        naive = naive_rgb_to_gray(model.module, model.preprocessing)
        naive_logits = predict_logits(replace(model, module=naive.model, preprocessing=naive.preprocessing), gray)
        naive_error = float((reference - naive_logits).abs().max())
        result = folded
    else:
        result = gray_to_rgb(folded.model, folded.preprocessing)
        reference = predict_logits(gray_model, luminance(rgb))
        converted = predict_logits(replace(model, module=result.model, preprocessing=result.preprocessing), rgb)
    return Equivalence(direction, len(rgb), compare_logits(reference, converted), result, naive_error)
