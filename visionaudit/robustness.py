"""Transform robustness: accuracy with and without each transform, on the same images, paired.

Per model and transform: ``clean_top1``, ``top1``, ``drop``, ``drop_ci`` (95 % paired bootstrap over
images), ``flip_rate`` (share of images whose prediction changes), ``p_value`` (exact McNemar on the
paired correct/incorrect outcomes) and ``p_value_ttest`` (the study's two-sided t-test on class-wise
accuracies). ``significant`` is Holm-corrected over the transforms of one model
(:func:`holm_over_transforms`); across models, :func:`classes_affected` is the study's per-class test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import stats
from .inference import predict_logits
from .models import LoadedModel
from .transforms import get as get_transform


@dataclass
class TransformResult:
    transform: str
    severity: float
    n_images: int
    clean_top1: float
    top1: float
    drop: float
    drop_ci: tuple[float, float]
    flip_rate: float
    p_value: float
    p_value_ttest: float
    discordant: tuple[int, int]  # (right -> wrong, wrong -> right)
    classwise_clean: list[float] = field(repr=False)
    classwise_transformed: list[float] = field(repr=False)


def evaluate_transform(
    model: LoadedModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    clean_logits: torch.Tensor,
    transform: str,
    severity: float = 1.0,
    seed: int = 0,
    batch_size: int | None = None,
    resamples: int = 2000,
) -> TransformResult:
    """One transform at one severity, paired with the clean pass (``clean_logits``, computed once)."""
    kernel = get_transform(transform)
    logits = predict_logits(model, images, batch_size, transform=lambda b, idx: kernel(b, idx, seed, severity))
    clean_pred, pred = clean_logits.argmax(1), logits.argmax(1)
    before = (clean_pred == labels).numpy()
    after = (pred == labels).numpy()
    b = int((before & ~after).sum())
    c = int((~before & after).sum())
    num_classes = max(model.num_classes, int(labels.max()) + 1)
    cw_before = stats.classwise_accuracy(before, labels.numpy(), num_classes)
    cw_after = stats.classwise_accuracy(after, labels.numpy(), num_classes)
    return TransformResult(
        transform=transform,
        severity=severity,
        n_images=len(labels),
        clean_top1=float(before.mean()),
        top1=float(after.mean()),
        drop=float(before.mean() - after.mean()),
        drop_ci=stats.paired_bootstrap_ci(before, after, resamples=resamples, seed=seed),
        flip_rate=float((clean_pred != pred).float().mean()),
        p_value=stats.mcnemar_exact(b, c),
        p_value_ttest=stats.ttest_two_sided(cw_before, cw_after),
        discordant=(b, c),
        classwise_clean=cw_before.tolist(),
        classwise_transformed=cw_after.tolist(),
    )


def holm_over_transforms(p_values: dict[str, float], alpha: float = 0.05) -> dict[str, dict[str, float | bool]]:
    """``{transform: {"p_value_holm": adjusted p, "significant": bool}}`` for one model."""
    return {name: {"p_value_holm": p, "significant": sig} for name, (p, sig) in stats.holm(p_values, alpha).items()}


def classes_affected(clean: list[list[float]], transformed: list[list[float]], alpha: float = 0.05) -> dict:
    """The study's per-class test across models: for each class, clean accuracies of the models vs
    transformed ones, two-sided t-test; returns the count and the classes with p < ``alpha``.

    ``clean`` and ``transformed`` hold one class-wise accuracy list per model (two models at least).
    """
    a = np.asarray(clean, dtype=np.float64)
    b = np.asarray(transformed, dtype=np.float64)
    if a.shape[0] < 2:
        raise ValueError("the per-class test across models needs at least two models")
    affected = [k for k in range(a.shape[1]) if (p := stats.ttest_two_sided(a[:, k], b[:, k])) == p and p < alpha]
    return {"classes_affected": len(affected), "classes": affected, "models": int(a.shape[0])}
