"""Statistics for paired classifier outcomes: exact McNemar, Holm, paired bootstrap, class-wise t-test."""

from __future__ import annotations

import math
import warnings

import numpy as np

# scipy.stats (a second or two to import) is imported by the functions that need it: the families import this module
# when their descriptors are read, on the xdist controller too, which computes no statistic at start-up.


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    ``b``: right before, wrong after; ``c``: wrong before, right after. Under the null each
    discordant pair goes either way with probability 1/2: p = P(|X - n/2| >= |b - n/2|), X ~ Bin(b + c, 1/2).
    """
    n = b + c
    if n == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue)


def holm(p_values: dict[str, float], alpha: float = 0.05) -> dict[str, tuple[float, bool]]:
    """Holm-Bonferroni step-down: ``{name: (adjusted p, rejected)}``, family-wise error at ``alpha``.

    A NaN p-value is refused (ValueError naming it): it would sort anywhere and, as min(1, m x NaN) is 1, raise
    every later step's adjusted p to 1, silently. A caller leaves out what it could not test, and says so."""
    undefined = sorted(k for k, p in p_values.items() if math.isnan(p))
    if undefined:
        raise ValueError(f"Holm's correction got a p-value that is not a number (NaN) for {', '.join(map(str, undefined))}:"
                         " leave the comparisons that could not be tested out of the family")
    order = sorted(p_values, key=lambda k: (p_values[k], k))
    m = len(order)
    out: dict[str, tuple[float, bool]] = {}
    running = 0.0
    for rank, name in enumerate(order):
        adjusted = min(1.0, (m - rank) * p_values[name])
        running = max(running, adjusted)  # adjusted p-values are monotone in the step-down order
        out[name] = (running, running <= alpha)
    return out


def paired_bootstrap_ci(before: np.ndarray, after: np.ndarray, resamples: int = 2000, level: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean(before - after) over images resampled with replacement (pairs kept)."""
    diff = np.asarray(before, dtype=np.float64) - np.asarray(after, dtype=np.float64)
    if diff.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 500):  # chunks keep memory bounded for large image sets
        stop = min(resamples, start + 500)
        idx = rng.integers(0, diff.size, size=(stop - start, diff.size))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return (float(lo), float(hi))


def classwise_accuracy(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy per class (NaN for classes without images)."""
    correct = np.asarray(correct, dtype=np.float64)
    labels = np.asarray(labels)
    totals = np.bincount(labels, minlength=num_classes).astype(np.float64)
    hits = np.bincount(labels, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / totals, np.nan)


def ttest_two_sided(a: np.ndarray, b: np.ndarray) -> float:
    """The study's test: two-sided independent t-test of two samples of class-wise accuracies.

    NaNs (classes without images) are dropped; two samples with no variance and equal means give 1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        return math.nan
    if np.all(a == a[0]) and np.all(b == b[0]):
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():
        # Class-wise accuracies of a few images are 0/1 and often nearly constant: scipy warns, the p holds.
        warnings.simplefilter("ignore", RuntimeWarning)
        from scipy import stats

        return float(stats.ttest_ind(a, b).pvalue)


def binomial_greater_p(k: int, n: int, p: float) -> float:
    """One-sided binomial p-value P(X >= k), X ~ Bin(n, p): is ``k`` of ``n`` more than chance ``p`` gives?"""
    if n == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(k, n, p, alternative="greater").pvalue)


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion k / n (NaN, NaN when n is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    # norm.ppf's own function, without scipy.stats' import (half a second)
    from scipy.special import ndtri

    z = float(ndtri(0.5 + level / 2))
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At k == 0 (k == n) the bound is exactly 0 (1) in closed form; float rounding would leave 1e-17 (0.9999999999999999).
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))
