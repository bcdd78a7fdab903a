"""The paired p-values' switch from exact enumeration to Monte Carlo (stop 34): up to `SIGN_FLIP_EXACT` (20) changed
images the sign-flip and swap tests enumerate every pattern, beyond it they draw `resamples` random ones. Each side of
the switch (20 and 21 changed images) is checked against a reference written here: the exact distribution of a
signed sum counted by dynamic programming over integer weights (not by enumerating patterns, as the code does), or
the binomial sign test's closed form (scipy) where the test reduces to it. At 20 the p-value is that exact value; at
21 it is a Monte Carlo estimate, (hits + 1) / (R + 1), within its sampling error of the exact value (which it can
never equal: the exact one is a multiple of 1 / 2^21, the estimate of 1 / 20001)."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from visionaudit.data.imagenet16 import categories
from visionaudit.families.baseline import corruptions as corr
from visionaudit.families.baseline.resampling import (
    SIGN_FLIP_EXACT,
    sign_flip_p,
    swap_p,
)
from visionaudit.families.baseline.statistics import (
    Result,
    Tolerance,
    balanced_accuracy_change,
    shape_bias_change,
)

R = 20_000  # Monte Carlo patterns beyond the switch
SCALE = 13  # weights a / 13: floats that are not integers, their exact distribution counted on the integers a


def _weights(k: int) -> tuple[list[int], list[int]]:
    """``k`` integer weights (1, 2, ..., k, reordered) and signs, two in three +: a p-value of 0.1 to 0.4, where a Monte
    Carlo estimate has a sampling error to check against and a wrong branch shows."""
    a = [(11 * i) % k + 1 for i in range(k)]  # 11 is prime to 20 and 21: every weight once
    signs = [1 if i % 3 else -1 for i in range(k)]
    return a, signs


def _exact_p(a: list[int], signs: list[int]) -> Fraction:
    """P(|sum +-a_i| >= |observed|) with each sign + or - equally likely: the distribution of the signed sum built one
    weight at a time (counts of each reachable sum), in integers."""
    counts = Counter({0: 1})
    for x in a:
        step: Counter = Counter()
        for total, n in counts.items():
            step[total + x] += n
            step[total - x] += n
        counts = step
    observed = abs(sum(x * s for x, s in zip(a, signs)))
    return Fraction(sum(n for total, n in counts.items() if abs(total) >= observed), 2 ** len(a))


def _within_sampling_error(p: float, exact: float, resamples: int) -> bool:
    """A Monte Carlo (hits + 1) / (R + 1) within 4 standard errors of ``exact`` (plus its +1's bias)."""
    return abs(p - exact) <= 4 * math.sqrt(exact * (1 - exact) / resamples) + 1 / (resamples + 1)


def test_the_switch_is_at_20_changed_images():
    assert SIGN_FLIP_EXACT == 20


def test_the_reference_by_hand():
    """Weights 1, 2, 3: the sums +-1 +-2 +-3 are 6, 4, 2, 0, 0, -2, -4, -6. All +: |sum| >= 6 in 2 of 8;
    signs +, -, + (observed 2): in 6 of 8; +, +, - (observed 0): in all 8."""
    assert _exact_p([1, 2, 3], [1, 1, 1]) == Fraction(2, 8)
    assert _exact_p([1, 2, 3], [1, -1, 1]) == Fraction(6, 8)
    assert _exact_p([1, 2, 3], [1, 1, -1]) == 1


# -- sign_flip_p -----------------------------------------------------------------------------------------------------

def test_sign_flip_p_at_20_is_exact():
    a, signs = _weights(20)
    exact = _exact_p(a, signs)
    assert 0.02 < exact < 0.5
    w = np.array(a, dtype=np.float64) / SCALE
    p = sign_flip_p(w, np.array(signs, dtype=np.float64), R, 0)
    assert p == pytest.approx(float(exact), abs=1e-12)
    assert sign_flip_p(w, np.array(signs, dtype=np.float64), 50, 7) == p  # no draws: resamples and seed change nothing


def test_sign_flip_p_at_21_is_monte_carlo_within_its_error():
    a, signs = _weights(21)
    exact = float(_exact_p(a, signs))
    assert 0.02 < exact < 0.5
    w, s = np.array(a, dtype=np.float64) / SCALE, np.array(signs, dtype=np.float64)
    p = sign_flip_p(w, s, R, 0)
    assert p != exact and round(p * (R + 1)) == pytest.approx(p * (R + 1), abs=1e-6)  # (hits + 1) / (R + 1)
    assert _within_sampling_error(p, exact, R), (p, exact)
    assert sign_flip_p(w, s, R, 0) == p  # seeded


# -- swap_p --------------------------------------------------------------------------------------------------------

def _linear(a: list[int], signs: list[int]):
    """A change that is a signed sum: swapping image i's two outcomes turns its term's sign (as the mCE's does)."""
    d = np.array([x * s for x, s in zip(a, signs)], dtype=np.float64) / SCALE
    return lambda swapped: (1 - 2 * swapped.astype(np.float64)) @ d


def test_swap_p_at_20_is_exact():
    a, signs = _weights(20)
    p = swap_p(_linear(a, signs), 20, R, 0)
    assert p == pytest.approx(float(_exact_p(a, signs)), abs=1e-12)
    assert swap_p(_linear(a, signs), 20, 50, 3) == p


def test_swap_p_at_21_is_monte_carlo_within_its_error():
    a, signs = _weights(21)
    exact = float(_exact_p(a, signs))
    p = swap_p(_linear(a, signs), 21, R, 0)
    assert p != exact and round(p * (R + 1)) == pytest.approx(p * (R + 1), abs=1e-6)
    assert _within_sampling_error(p, exact, R), (p, exact)


# -- through the comparisons: balanced accuracy (sign flip) and shape bias (swap), against the sign test ----------

def _sign_test(lost: int, won: int) -> float:
    """Two-sided binomial sign test over the changed images: the closed form both comparisons reduce to here."""
    return float(min(1.0, 2 * sps.binom.cdf(min(lost, won), lost + won, 0.5)))


def _is_the_sign_test(r, lost: int, won: int, exact_says: tuple[str, ...], sampled_says: str) -> None:
    """``r``'s p-value over ``lost`` + ``won`` changed images: the sign test's, exactly, up to the switch (its test
    saying each of ``exact_says``), beyond it a Monte Carlo estimate within its sampling error (saying ``sampled_says``)."""
    expected = _sign_test(lost, won)
    if lost + won <= 20:
        assert r.p_value == pytest.approx(expected, abs=1e-12) and r.p_resamples is None
        assert all(said in r.test for said in exact_says), r.test
    else:
        assert r.p_resamples == R and sampled_says in r.test, r.test
        assert r.p_value != expected and _within_sampling_error(r.p_value, expected, R), (r.p_value, expected)


@pytest.mark.parametrize("lost, won", [(15, 5), (16, 5)])
def test_balanced_accuracy_either_side_of_the_switch(lost, won):
    """One image per class (equal weights): the sign-flip test is the sign test on the changed images."""
    n = 60
    ids = [f"n{1440764 + k:08d}_x.JPEG" for k in range(n)]
    old = np.arange(n) < 30
    new = old.copy()
    new[:lost] = False  # right -> wrong
    new[30:30 + won] = True  # wrong -> right
    r = balanced_accuracy_change(Result("balanced_accuracy", "balanced_accuracy", True, tolerance=Tolerance(0.005)),
                                 ids, [i[:9] for i in ids], old, new, 200, 0, R)
    _is_the_sign_test(r, lost, won, (f"sign-flip test on the {lost + won} changed images", ", exact,"),
                      f"{R} random sign patterns")


@pytest.mark.parametrize("lost, won", [(15, 5), (16, 5)])
def test_shape_bias_either_side_of_the_switch(lost, won):
    """``lost`` shape decisions become texture, ``won`` texture ones become shape, every other decision a texture hit:
    the hits stay n, so the change is (won - lost) / n and the swap test is the sign test."""
    cats = categories()
    n = 100
    ids = [f"{cats[k % 16]}/{cats[k % 16]}{k}-{cats[(k + 1) % 16]}{k}.png" for k in range(n)]
    shape, texture = [cats[k % 16] for k in range(n)], [cats[(k + 1) % 16] for k in range(n)]
    old = [shape[k] if k < lost else texture[k] for k in range(n)]
    new = [texture[k] if k < lost else shape[k] if k < lost + won else texture[k] for k in range(n)]
    r = shape_bias_change(Result("shape_bias", "shape_bias", True, tolerance=Tolerance(0.02)), ids, old, new, 200, 0, R)
    assert r.delta == pytest.approx((won - lost) / n)
    _is_the_sign_test(r, lost, won, (f"exact over the {2 ** (lost + won)} swap patterns",), f"{R} random swap patterns")


@pytest.mark.parametrize("lost, won", [(15, 5), (16, 5)])
def test_the_corruption_summary_either_side_of_the_switch(lost, won):
    """The mean error over one condition: each changed image's weighted change is +-1/n, so the sign-flip test over
    them is the sign test."""
    n = 80
    old = (np.arange(n) < 40)[None, :]
    new = old.copy()
    new[0, :lost] = False
    new[0, 40:40 + won] = True
    r = corr.summary_change(Result("mean_error", "mean_error", False, tolerance=Tolerance(0.01)), "mean_error",
                            [("fog", 3)], old, new, 200, 0, p_resamples=R)
    assert r.delta == pytest.approx((lost - won) / n)
    _is_the_sign_test(r, lost, won, (f"sign-flip test on the {lost + won} images whose weighted error changed, exact",),
                      f"{R} random sign patterns")
