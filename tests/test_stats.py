"""Statistics against closed-form and textbook cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionaudit import stats


def test_mcnemar_exact_closed_form():
    # b = 1, c = 9: p = 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * (1 + 10) / 1024.
    assert stats.mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(5, 5) == 1.0 and stats.mcnemar_exact(0, 0) == 1.0
    # b = 0, c = 6: every discordant pair went one way: 2 / 2**6.
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_holm_textbook():
    p = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005}
    # Sorted: d 0.005*4 = 0.02, a 0.01*3 = 0.03, c 0.03*2 = 0.06, b max(0.04*1, 0.06) = 0.06.
    out = stats.holm(p, alpha=0.05)
    assert {k: round(v[0], 10) for k, v in out.items()} == {"d": 0.02, "a": 0.03, "c": 0.06, "b": 0.06}
    assert {k for k, v in out.items() if v[1]} == {"d", "a"}
    assert stats.holm({"x": 0.7, "y": 0.9})["x"] == (1.0, False)


def test_holm_refuses_a_nan_p_value():
    """Stop-33 review, nit 5: a NaN sorted anywhere and, min(1, m x NaN) being 1, made every later test
    non-significant (b's 0.01 became 1.0 beside a NaN). Now refused, naming it; the others alone are as by hand."""
    with pytest.raises(ValueError, match=r"not a number \(NaN\) for a, c: leave the comparisons"):
        stats.holm({"a": math.nan, "b": 0.01, "c": float("nan")})
    assert stats.holm({"b": 0.01, "d": 0.2}) == {"b": (0.02, True), "d": (0.2, False)}  # 2 x 0.01, max(0.2, 0.02)


def test_paired_bootstrap_ci():
    rng = np.random.default_rng(1)
    before = rng.random(2000) < 0.8
    after = before & (rng.random(2000) < 0.75)  # drops about 0.2
    lo, hi = stats.paired_bootstrap_ci(before, after, resamples=2000, seed=0)
    diff = before.astype(float) - after.astype(float)
    mean, se = diff.mean(), diff.std(ddof=1) / math.sqrt(diff.size)
    assert lo < mean < hi
    # The percentile interval of a mean of 2,000 values is close to the normal one.
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert stats.paired_bootstrap_ci(before, after, seed=0) == stats.paired_bootstrap_ci(before, after, seed=0)
    assert stats.paired_bootstrap_ci(np.ones(10), np.ones(10)) == (0.0, 0.0)


def test_wilson_interval_closed_form_and_exact_ends():
    """Wilson's bounds in closed form: k = n gives [n / (n + z^2), 1] and k = 0 gives [0, z^2 / (n + z^2)]; the ends
    are exactly 1 and 0 (float rounding left 0.9999999999999999 for k = n)."""
    z2 = 1.959963984540054 ** 2  # the 97.5 % normal quantile, squared
    for n in range(1, 60):
        lo, hi = stats.wilson_interval(n, n)
        assert hi == 1.0 and lo == pytest.approx(n / (n + z2), rel=1e-12)
        lo, hi = stats.wilson_interval(0, n)
        assert lo == 0.0 and hi == pytest.approx(z2 / (n + z2), rel=1e-12)
    # k = 1 of 2 (phat = 1/2): centre 1/2, half-width z * sqrt(1/8 + z^2/16) / (1 + z^2/2).
    half = math.sqrt(z2) * math.sqrt(1 / 8 + z2 / 16) / (1 + z2 / 2)
    assert stats.wilson_interval(1, 2) == (pytest.approx(0.5 - half, rel=1e-12), pytest.approx(0.5 + half, rel=1e-12))


def test_classwise_accuracy():
    acc = stats.classwise_accuracy(np.array([1, 0, 1, 1]), np.array([0, 0, 2, 2]), num_classes=4)
    assert acc[0] == 0.5 and acc[2] == 1.0 and math.isnan(acc[1]) and math.isnan(acc[3])


def test_ttest_two_sided():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50) + 0.2
    assert stats.ttest_two_sided(a, b) == pytest.approx(ttest_ind(a, b).pvalue)
    assert stats.ttest_two_sided(np.array([1.0, np.nan, 1.0]), np.array([1.0, 1.0])) == 1.0
    assert stats.ttest_two_sided(np.ones(5), np.zeros(5)) == 0.0
    assert math.isnan(stats.ttest_two_sided(np.array([1.0]), np.array([0.0, 1.0])))
