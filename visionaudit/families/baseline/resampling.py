"""Resampled p-values of the baseline gate: how many draws a bootstrap or Monte Carlo p-value needs among a model's
Holm-corrected comparisons (its floor below Holm's first step), and the sign-flip test of a weighted paired change."""

from __future__ import annotations

import math

import numpy as np

SIGN_FLIP_EXACT = 20  # up to this many changed images the sign-flip p is exact (2^20 sign patterns)
BLOCK_ELEMENTS = 20_000_000  # a bootstrap block's (resamples, images) draws: 160 MB of int64 at most


def block_rows(images: int, most: int) -> int:
    """How many resamples of ``images`` draws one block takes: at most ``most`` and :data:`BLOCK_ELEMENTS` draws in
    all (2000 x 50,000 images was 0.8 GB of indices and as much again of values), at least one."""
    return max(1, min(int(most), BLOCK_ELEMENTS // max(1, int(images))))


def p_resamples_for(m: int, alpha: float, resamples: int) -> int:
    """Resamples of a bootstrap or Monte Carlo p-value among ``m`` p-valued comparisons Holm-corrected at ``alpha``:
    at least ``resamples`` and ceil(20 m / alpha), so that the smallest p the resamples can give, 2 / (R + 1), is a
    tenth of Holm's first step alpha / m (with 2000 resamples the floor 0.001 is above 0.05 / 91: such a comparison
    could never be significant among the 75 corruption conditions)."""
    return max(int(resamples), math.ceil(20 * max(1, int(m)) / alpha))


def sign_flip_p(weights: np.ndarray, signs: np.ndarray, resamples: int, seed: int) -> float:
    """Two-sided sign-flip (randomization) test of a weighted sum of paired changes: each changed image adds
    ``weight * sign``; under no change each sign is + or - with equal chance. p = P(|sum w s| >= |observed|),
    exact by enumeration for up to ``SIGN_FLIP_EXACT`` changed images, else Monte Carlo (hits + 1) / (resamples + 1).
    With equal weights this is exact McNemar."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return 1.0
    observed = abs(float(np.dot(w, signs)))
    eps = 1e-12 * max(1.0, float(w.sum()))  # sums equal in exact arithmetic count as equal
    if w.size <= SIGN_FLIP_EXACT:
        patterns = ((np.arange(2 ** w.size)[:, None] >> np.arange(w.size)) & 1) * 2 - 1
        return float(min(1.0, np.mean(np.abs(patterns @ w) >= observed - eps)))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 500):  # chunks keep memory bounded
        flips = rng.integers(0, 2, size=(min(500, resamples - start), w.size)) * 2 - 1
        hits += int((np.abs(flips @ w) >= observed - eps).sum())
    return float(min(1.0, (hits + 1) / (resamples + 1)))
