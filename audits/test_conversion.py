"""Conversion equivalence: a folded first convolution, or a deployment form, gives the original logits.

rgb_to_gray: the original on the gray image stacked three times vs the converted model on the gray
image. gray_to_rgb: a grayscale model (the rgb_to_gray result) on the luminance image vs its RGB
expansion on the colour image. On real images (grayscale imagenet-sample) and random inputs, for the
configured models and a zoo of torchvision architectures with random weights.
"""

from dataclasses import replace

import pytest
import torch

from visionaudit import datasets
from visionaudit.deployment import DEPLOYMENTS, Unsupported, convert
from visionaudit.conversion import gray_to_rgb, luminance, naive_rgb_to_gray, rgb_to_gray
from visionaudit.inference import predict_logits
from visionaudit.models import load_model
from visionaudit.zoo import CONTROL_ZOO, calibrate_batchnorm, nondegenerate

pytestmark = pytest.mark.audit("conversion")
DIRECTIONS = ["rgb_to_gray", "gray_to_rgb"]


def _compare(reference: torch.Tensor, converted: torch.Tensor) -> dict:
    diff = (reference - converted).abs()
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(diff.max() / reference.abs().max().clamp_min(1e-12)),
        "top1_agreement": float((reference.argmax(1) == converted.argmax(1)).float().mean()),
    }


def _audit(model, rgb: torch.Tensor, direction: str, record, thresholds, absolute: bool):
    """rgb: uint8 colour images at the model's geometry (real ones, then random ones)."""
    gray = luminance(rgb).round().clamp(0, 255).to(torch.uint8)
    folded = rgb_to_gray(model.module, model.preprocessing)
    gray_model = replace(model, module=folded.model, preprocessing=folded.preprocessing)
    if direction == "rgb_to_gray":
        reference = predict_logits(model, gray.expand(-1, 3, -1, -1))
        converted = predict_logits(gray_model, gray)
        naive = naive_rgb_to_gray(model.module, model.preprocessing)
        naive_logits = predict_logits(replace(model, module=naive.model, preprocessing=naive.preprocessing), gray)
        record.metric("naive_max_abs_diff", float((reference - naive_logits).abs().max()))
        result = folded
    else:
        expanded = gray_to_rgb(folded.model, folded.preprocessing)
        reference = predict_logits(gray_model, luminance(rgb))  # unrounded T(rgb): the exact counterpart
        converted = predict_logits(replace(model, module=expanded.model, preprocessing=expanded.preprocessing), rgb)
        result = expanded
    metrics = _compare(reference, converted)
    # A model whose logits ignore the input would make the comparison pass vacuously.
    spread = record.metric("reference_spread", float(reference.std(dim=0).max()))
    assert spread > 0, f"{model.id}: its logits are the same for every image, so equivalence would prove nothing"
    record.metric("first_conv", result.first_conv)
    record.metric("params_saved", result.params_saved)
    record.metric("macs_saved", result.macs_saved)
    record.metric("border_offset_map", result.offset_map)
    # Relative to the logits' scale for every model (random-init controls can have huge logits);
    # absolute too for real models, whose logits have a meaningful scale.
    ok = record.check_max("max_rel_diff", metrics["max_rel_diff"], "max_rel_diff", thresholds["max_rel_diff"])
    if absolute:
        ok &= record.check_max("max_abs_diff", metrics["max_abs_diff"], "max_abs_diff", thresholds["max_abs_diff"])
    else:
        record.metric("max_abs_diff", metrics["max_abs_diff"])
    ok &= record.check_min("top1_agreement", metrics["top1_agreement"], "min_top1_agreement", thresholds["min_top1_agreement"])
    assert ok, (f"{model.id} {direction}: converted logits differ by up to {metrics['max_abs_diff']:.3g} "
                f"({metrics['max_rel_diff']:.3g} of the largest logit) "
                f"(top-1 agreement {metrics['top1_agreement']:.3f}) on {len(rgb)} images")


def _images(model, labelled_images, n_real: int, n_random: int, seed: int) -> torch.Tensor:
    real = datasets.load_images(labelled_images.stratified_subset(n_real, seed), model.preprocessing.geometry)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (n_random, *real.shape[1:]), generator=gen, dtype=torch.uint8)
    return torch.cat([real, noise])


def _require_rgb(model):
    if model.preprocessing.channels != 3:
        pytest.skip(f"{model.id} takes {model.preprocessing.channels} channel(s); the colour-space audits start from RGB")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_configured_model(model, labelled_images, audit_seed, record, thresholds, direction):
    _require_rgb(model)
    rgb = _images(model, labelled_images, thresholds["real_images"], thresholds["random_images"], audit_seed)
    record.metric("n_images", len(rgb))
    _audit(model, rgb, direction, record, thresholds, absolute=True)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("arch", CONTROL_ZOO)
def test_zoo(arch, direction, audit_device, labelled_images, audit_seed, record, thresholds):
    torch.manual_seed(0)
    model = load_model(f"torchvision:{arch}:none", audit_device)
    nondegenerate(model.module)
    record.model, record.model_info = model.id, model.to_dict()
    rgb = _images(model, labelled_images, thresholds["zoo_images"], thresholds["random_images"], audit_seed)
    calibrate_batchnorm(model.module, model.preprocessing.normalize(rgb.to(model.device)))
    record.metric("n_images", len(rgb))
    _audit(model, rgb, direction, record, thresholds, absolute=False)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_deployment(model, labelled_images, evaluate, audit_seed, record, thresholds, deployment):
    """The model as it ships (TorchScript, torch.export, ONNX Runtime, bf16/fp16, channels_last) vs as loaded."""
    subset = labelled_images.stratified_subset(thresholds["deployment_images"], audit_seed)
    ev = evaluate(model, subset)
    example = model.preprocessing.normalize(ev.images[:2].to(model.device))
    try:
        shipped = convert(model.module, deployment, example)
    except Unsupported as e:
        pytest.skip(f"{model.id} {deployment}: {e}")
    logits = predict_logits(replace(model, module=shipped), ev.images)
    # The suite already feeds CPU models channels_last input; channels_last is judged against plain NCHW.
    reference = predict_logits(model, ev.images, memory_format=torch.contiguous_format) if deployment == "channels_last" else ev.logits
    metrics = _compare(reference, logits)
    record.metric("n_images", len(subset))
    record.metric("max_rel_diff", metrics["max_rel_diff"])
    ok = record.check_max("max_abs_diff", metrics["max_abs_diff"], "max_abs_diff", thresholds["deployment_max_abs_diff"][deployment])
    ok &= record.check_min("top1_agreement", metrics["top1_agreement"], "min_top1_agreement",
                           thresholds["deployment_min_top1_agreement"][deployment])
    assert ok, (f"{model.id} as {deployment}: logits differ by up to {metrics['max_abs_diff']:.3g}, "
                f"top-1 agreement {metrics['top1_agreement']:.3f} on {len(subset)} real images")
