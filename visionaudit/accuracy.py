"""Clean accuracy: top-k of logits against ImageNet labels; the family under every other audit."""

from __future__ import annotations

import torch

from . import threshold_fields as f
from .families import Family, register_family


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Share of rows whose label is among the ``k`` largest logits."""
    if len(labels) == 0:
        raise ValueError("no labelled images to score")
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} rows of logits for {labels.shape[0]} labels")
    if k == 1:  # argmax: ties go to the first class, as everywhere else in the suite
        return float((logits.argmax(dim=1) == labels.to(logits.device)).float().mean())
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == labels.to(logits.device)[:, None]).any(dim=1)
    return float(hits.float().mean())


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return topk_accuracy(logits, labels, 1)


FAMILY = register_family(Family(
    name="accuracy",
    gates="clean top-1 on labelled natural images, through the model's own preprocessing",
    key_metric="clean_top1",
    higher_is_better=True,
    metrics=("top5", "n_images"),
    thresholds={
        "min_top1": f.fraction("clean top-1 at least this"),
        "min_images": f.min_images(),
    },
))
