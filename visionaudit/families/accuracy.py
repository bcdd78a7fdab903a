"""Clean accuracy: top-k of logits against ImageNet labels; the family under every other audit."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from visionaudit.families import thresholds as f
from visionaudit.families.assessment import PerImage, require_count
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import Family, register_family
from visionaudit.models.topk import (  # noqa: F401 (public here too)
    top1_accuracy,
    top1_correct,
    topk_accuracy,
    topk_hits,
)


def clean_outcomes(sample_set: Any, logits: torch.Tensor, labels: torch.Tensor) -> PerImage:
    """What :func:`assess_clean_top1` judges: per image, top-1 right (``correct``) and the label among the 5
    largest logits (``top5``), on ``sample_set`` (the images ``logits`` scored)."""
    return PerImage(sample_set, {"correct": top1_correct(logits, labels), "top5": topk_hits(logits, labels, 5).cpu().numpy()})


def assess_clean_top1(record: AuditRecord, measured: PerImage, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """``measured.arrays``: ``correct`` (top-1 right, per image) and ``top5`` (label among the 5 largest logits)."""
    sample_set, arrays = measured.sample_set, measured.arrays
    correct = arrays["correct"]
    record.metric("n_images", len(correct))
    record.outcomes_on(sample_set, "clean", correct=correct)
    # Measured before the count is checked: a not_judged report keeps them (a baseline for a run of its size).
    record.metric("top5", float(arrays["top5"].mean()) if len(correct) else float("nan"))
    top1 = record.metric("clean_top1", float(correct.mean()) if len(correct) else float("nan"))
    require_count(record, thresholds, len(correct), "labelled images")
    if not record.check_min("clean_top1", top1, "min_top1", thresholds["min_top1"]):
        raise AssertionError(f"{context['model']}: clean top-1 {top1:.3f} on {context['set_name']} is below min_top1 "
                             f"{thresholds['min_top1']} (check its preprocessing: {context['preprocessing']})")


FAMILY = register_family(Family(
    name="accuracy",
    gates="clean top-1 on labelled natural images, through the model's own preprocessing",
    key_metric="clean_top1",
    higher_is_better=True,
    splits_by_image=True,
    assessors={"clean_top1": assess_clean_top1},
    metrics=("top5", "n_images"),
    thresholds={
        "min_top1": f.fraction("clean top-1 at least this", default=0.70),
        "min_images": f.min_images(default=50),
    },
    html_section="visionaudit.html.sections:accuracy",
))
