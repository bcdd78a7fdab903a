"""Resampled p-values of the baseline gate: how many draws a Monte Carlo p-value needs among a model's
Holm-corrected comparisons (its floor below Holm's first step), the sign-flip test of a weighted paired change and
the paired permutation (swap) test of any statistic of the two releases' per-image outcomes.

The p-values are randomization tests that swap the two releases' outcomes image by image (under no change each
image's two outcomes are exchangeable), exact by enumeration for few changed images: with k changed images they
can go no lower than 2 / 2^k, the floor of any valid paired test. A bootstrap centred on the observed change is
not a test of no change: with k images changed all one way its "p" is about 2 e^-k (0.0023 for 7 images where
the exact test gives 0.0156), so the bootstrap gives the intervals only."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

SIGN_FLIP_EXACT = 20  # up to this many changed images the sign-flip and swap p-values are exact (2^20 patterns)
BLOCK_ELEMENTS = 20_000_000  # a bootstrap block's (resamples, images) draws: 160 MB of int64 at most


def block_rows(images: int, most: int) -> int:
    """How many resamples of ``images`` draws one block takes: at most ``most`` and :data:`BLOCK_ELEMENTS` draws in
    all (2000 x 50,000 images was 0.8 GB of indices and as much again of values), at least one."""
    return max(1, min(int(most), BLOCK_ELEMENTS // max(1, int(images))))


def p_resamples_for(m: int, alpha: float, resamples: int) -> int:
    """Resamples of a Monte Carlo p-value among ``m`` p-valued comparisons Holm-corrected at ``alpha``: at least
    ``resamples`` and ceil(20 m / alpha), so that the smallest p the resamples can give, 1 / (R + 1), is a twentieth
    of Holm's first step alpha / m (with 2000 resamples the floor 0.0005 is close to 0.05 / 91: such a comparison
    could hardly be significant among the 75 corruption conditions)."""
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
    rows = block_rows(w.size, 500)  # chunks keep memory bounded (500 below 40,000 changed images, as before)
    for start in range(0, resamples, rows):
        flips = rng.integers(0, 2, size=(min(rows, resamples - start), w.size)) * 2 - 1
        hits += int((np.abs(flips @ w) >= observed - eps).sum())
    return float(min(1.0, (hits + 1) / (resamples + 1)))


def swap_patterns(k: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Which of ``k`` changed images have their two outcomes swapped, in (rows, k) boolean blocks: all 2^k patterns
    when ``k`` <= :data:`SIGN_FLIP_EXACT` (the first row none swapped), else ``resamples`` random ones (seeded)."""
    if k <= SIGN_FLIP_EXACT:
        step = 1 << 16  # 2^16 patterns a block: 10 MB of int64 at 20 images
        for start in range(0, 1 << k, step):
            yield ((np.arange(start, min(1 << k, start + step))[:, None] >> np.arange(k)) & 1).astype(bool)
        return
    rng = np.random.default_rng(seed)
    rows = block_rows(k, 500)
    for start in range(0, resamples, rows):
        yield rng.integers(0, 2, size=(min(rows, resamples - start), k)).astype(bool)


def swap_p(statistic: Callable[[np.ndarray], np.ndarray], k: int, resamples: int, seed: int) -> float:
    """Two-sided paired permutation test of a change over ``k`` changed images: ``statistic(swapped)`` gives the
    change (candidate - baseline) for each row of a (rows, k) boolean array of images whose two releases' outcomes
    are swapped (a row with none swapped gives the observed change). p = P(|change| >= |observed|) under no change (each image's
    two outcomes equally likely either way): exact over the 2^k patterns up to :data:`SIGN_FLIP_EXACT` images, else
    (hits + 1) / (resamples + 1) from ``resamples`` random patterns. A pattern whose change is undefined (NaN: a side
    left with nothing to divide by) counts as extreme, the conservative side. No changed image: 1."""
    if k == 0:
        return 1.0
    observed = abs(float(statistic(np.zeros((1, k), dtype=bool))[0]))
    eps = 1e-12 * max(1.0, observed)  # changes equal in exact arithmetic count as equal
    hits = total = 0
    for swapped in swap_patterns(k, resamples, seed):
        change = np.abs(statistic(swapped))
        hits += int(((change >= observed - eps) | np.isnan(change)).sum())
        total += swapped.shape[0]
    if k <= SIGN_FLIP_EXACT:
        return float(min(1.0, hits / total))
    return float(min(1.0, (hits + 1) / (total + 1)))
