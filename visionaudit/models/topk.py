"""Top-k of logits against labels: per image right or wrong, and the share right. What every family that
scores a classification starts from (accuracy, robustness, channel-bias ablation, the baseline gate)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only tensors' own methods are called: the families import this on the xdist controller without torch
    import torch


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Per row: whether its label is among the ``k`` largest logits (bool, on the logits' device)."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} rows of logits for {labels.shape[0]} labels")
    if k == 1:  # argmax: ties go to the first class, as everywhere else in the suite
        return logits.argmax(dim=1) == labels.to(logits.device)
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels.to(logits.device)[:, None]).any(dim=1)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Share of rows whose label is among the ``k`` largest logits."""
    if len(labels) == 0:
        raise ValueError("no labelled images to score")
    hits = topk_hits(logits, labels, k)
    return int(hits.sum()) / hits.numel()  # exact count over count: a float32 mean stores 7/60 as 0.11666667461395264


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return topk_accuracy(logits, labels, 1)


def top1_correct(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per image: the top-1 class is the label (what a later release is compared with, image by image)."""
    return topk_hits(logits, labels, 1).cpu().numpy()
