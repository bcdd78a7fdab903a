"""The conversion family: the colour-space folds of a model's first convolution (``rgb_to_gray``, ``gray_to_rgb``)
give the original logits. Its descriptor and assessors; the folds and their measurement are in
visionaudit/families/conversion_folds.py, imported where a model is converted (the descriptor is read on the xdist
controller, which never imports torch).
"""

from __future__ import annotations

from typing import Any, Mapping

from visionaudit.families import thresholds as f
from visionaudit.families.assessment import Deferred
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import Family, register_family
from visionaudit.models.controls import CONTROL_ZOO  # noqa: F401  (the controls its audit parametrizes over)

DIRECTIONS = ("rgb_to_gray", "gray_to_rgb")


# -- judging: the assessors its audit hands the measured equivalence --------------------------------


def _judge(record: AuditRecord, measured: Deferred, thresholds: Mapping[str, Any], context: Mapping[str, Any],
           absolute: bool) -> None:
    """``measured.measure()`` gives the ``Equivalence`` (visionaudit.families.conversion_folds.check_equivalence)."""
    record.metric("n_images", measured.n_images)  # kept even when the fold or the comparison fails
    result = measured.measure()
    logits = result.logits
    # A model whose logits ignore the input would make the comparison pass vacuously.
    spread = record.metric("reference_spread", logits.reference_spread)
    if not spread > 0:
        raise AssertionError(f"{context['model']}: its logits are the same for every image, so equivalence would prove nothing")
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
    if not ok:
        raise AssertionError(f"{context['model']} {result.direction}: converted logits differ by up to {logits.max_abs_diff:.3g} "
                             f"({logits.max_rel_diff:.3g} of the largest logit) "
                             f"(top-1 agreement {logits.top1_agreement:.3f}) on {result.n_images} images")


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
          "grayscale imagenet-sample images and random inputs, for the configured models and the 18-architecture zoo",
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
