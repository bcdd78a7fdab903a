"""Stop-33 review, defect 1: shape bias and the mCE (or mean error) took their p-value from a bootstrap centred on
the observed change, about 2 e^-k with k images changed all one way, below 2 / 2^k, the floor of any valid paired
test (7 one-way changes: 0.0023 instead of 0.0156), which turned a within-noise change into a failing regression.
Both are now exact paired randomization tests; every p here is checked against a hand computation, a closed form
or a brute-force enumeration written in this file."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from visionaudit.data.imagenet16 import categories
from visionaudit.families.baseline import ModelOutcomes, compare_model, settings_from
from visionaudit.families.baseline import corruptions as corr
from visionaudit.families.baseline.resampling import swap_p
from visionaudit.families.baseline.statistics import (
    Result,
    Tolerance,
    shape_bias_change,
)
from visionaudit.families.corruption.imagenet_c import ALEXNET_ERRORS
from visionaudit.families.outcomes import Outcome
from visionaudit.families.registry import get_family

DEFAULTS = {name: field.default for name, field in get_family("baseline").thresholds.items()}
CATS = categories()


def _stimuli(n: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """``n`` conflicting cue-conflict ids with each one's shape, texture and a third ("other") category."""
    shapes, textures, others = ([CATS[(k + j) % 16] for k in range(n)] for j in (0, 1, 2))
    return [f"{s}/{s}{k}-{t}{k}.png" for k, (s, t) in enumerate(zip(shapes, textures))], shapes, textures, others


def _shape(ids, old, new, resamples=400, p_resamples=None) -> Result:
    return shape_bias_change(Result("shape_bias", "shape_bias", True, tolerance=Tolerance(0.02)), ids, old, new,
                             resamples, 0, p_resamples)


@pytest.mark.parametrize("to", ["texture", "other"])
def test_seven_one_way_shape_changes_give_2_over_128(to):
    """87 conflicting images, 15 shape / 48 texture / 24 other decisions (the review's run); 7 shape decisions become
    texture (or another category). The exact paired test's p is 2 x 2^-7: only swapping none or all of the 7
    images is as extreme (by hand: with j of them swapped the change is a monotone function of j, and j = 0 and
    j = 7 mirror each other). The old bootstrap gave 2 (1 - 7/87)^87 ~ 0.0014 here."""
    ids, shapes, textures, others = _stimuli(87)
    old = [shapes[k] if k < 15 else textures[k] if k < 63 else others[k] for k in range(87)]
    new = [(textures if to == "texture" else others)[k] if k < 7 else old[k] for k in range(87)]
    r = _shape(ids, old, new)
    assert r.p_value == 2 / 128 and r.p_resamples is None
    # 15 -> 8 shape hits; texture: 48 -> 55, the same 63 hits; other: 48 texture hits stay, 56 hits
    assert r.delta == pytest.approx(8 / 63 - 15 / 63 if to == "texture" else 8 / 56 - 15 / 63)
    assert "over the 7 images whose shape or texture hit changed, exact over the 128 swap patterns" in r.test


def test_a_small_case_by_hand():
    """Unchanged: 2 shape and 2 texture decisions. Changed: A and B shape -> texture, C texture -> other.
    Observed: old 4 shape / 3 texture (4/7), new 2 / 4 (1/3): change -5/21. The 8 swap patterns by hand
    (new side - old side): none -5/21; all +5/21; A: 3/6 - 3/7 = +1/14; B: +1/14; C: 2/7 - 4/6 = -8/21;
    A+B: 4/6 - 2/7 = +8/21; A+C and B+C: -1/14. |change| >= 5/21 for none, all, C and A+B: p = 4/8."""
    ids, shapes, textures, others = _stimuli(7)
    old = [shapes[0], shapes[1], textures[2], textures[3], shapes[4], shapes[5], textures[6]]
    new = old[:4] + [textures[4], textures[5], others[6]]
    r = _shape(ids, old, new)
    assert r.delta == pytest.approx(-5 / 21) and r.p_value == 0.5


def _brute_force_p(s0, t0, s1, t1) -> Fraction:
    """The paired permutation test by enumeration in exact fractions: every subset of the changed images swapped."""
    changed = [k for k in range(len(s0)) if (s0[k], t0[k]) != (s1[k], t1[k])]

    def change(swapped) -> Fraction:
        sides = [[s0[:], t0[:]], [s1[:], t1[:]]]
        for k in swapped:
            sides[0][0][k], sides[1][0][k] = s1[k], s0[k]
            sides[0][1][k], sides[1][1][k] = t1[k], t0[k]
        (os_, ot), (ns, nt) = [[sum(x) for x in side] for side in sides]
        return Fraction(ns, ns + nt) - Fraction(os_, os_ + ot)

    observed = abs(change(()))
    patterns = [c for r in range(len(changed) + 1) for c in itertools.combinations(changed, r)]
    return Fraction(sum(abs(change(c)) >= observed for c in patterns), len(patterns))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_cases_match_a_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    ids, shapes, textures, others = _stimuli(40)
    pick = lambda k, u: shapes[k] if u < 0.3 else textures[k] if u < 0.8 else others[k]  # noqa: E731
    old = [pick(k, u) for k, u in enumerate(rng.random(40))]
    new = [pick(k, rng.random()) if rng.random() < 0.25 else o for k, o in enumerate(old)]  # about 10 redrawn
    s0, t0 = [int(d == s) for d, s in zip(old, shapes)], [int(d == t) for d, t in zip(old, textures)]
    s1, t1 = [int(d == s) for d, s in zip(new, shapes)], [int(d == t) for d, t in zip(new, textures)]
    expected = _brute_force_p(s0, t0, s1, t1)
    assert 0 < sum((a, b) != (c, d) for a, b, c, d in zip(s0, t0, s1, t1)) <= 16
    assert _shape(ids, old, new).p_value == pytest.approx(float(expected), abs=1e-12)


def test_beyond_20_changed_images_a_seeded_monte_carlo():
    """30 changed images, 20 shape -> texture and 10 texture -> shape, every other decision a texture hit: the
    hits stay 100, so the change is (shape hits gained - lost) / 100 and the test is the sign test,
    p = P(|2X - 30| >= 10), X ~ Bin(30, 1/2) (scipy's binomial), matched within Monte Carlo error."""
    ids, shapes, textures, _ = _stimuli(100)
    old = [shapes[k] if k < 20 else textures[k] for k in range(100)]
    new = [textures[k] if k < 20 else shapes[k] if k < 30 else textures[k] for k in range(100)]
    r = _shape(ids, old, new, p_resamples=20_000)
    exact = 2 * sps.binom.cdf(10, 30, 0.5)
    assert r.p_resamples == 20_000 and "20000 random swap patterns" in r.test
    assert r.p_value == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20_000))
    assert _shape(ids, old, new, p_resamples=20_000).p_value == r.p_value  # seeded


def test_swap_p_counts_an_undefined_change_as_extreme():
    """A statistic that is NaN for some swap patterns (a side with nothing to divide by) counts them as extreme."""
    stat = lambda m: np.where(m[:, 0], np.nan, np.where(m[:, 1], -1.0, 1.0))  # noqa: E731
    assert swap_p(stat, 2, 100, 0) == 1.0  # all four patterns: |+-1| >= 1 or NaN
    assert swap_p(lambda m: np.where(m.all(axis=1), 1.0, 0.5), 3, 100, 0) == 1.0  # observed 0.5: every pattern
    assert swap_p(lambda m: np.where(m.any(axis=1), 0.1, 1.0), 3, 100, 0) == 1 / 8
    assert swap_p(lambda m: np.zeros(len(m)), 0, 100, 0) == 1.0


# -- the mCE and the mean error -----------------------------------------------------------------------------------

KEYS = [("gaussian_noise", 3), ("fog", 3), ("contrast", 3)]


def _summary(kind, old, new) -> Result:
    return corr.summary_change(Result(kind, kind, False, tolerance=Tolerance(1.0)), kind, KEYS, old, new, 500, 0,
                               p_resamples=5000)


@pytest.mark.parametrize("lost", [4, 7])
def test_one_way_mce_changes_give_the_sign_tests_floor(lost):
    """``lost`` images each lose one condition (right -> wrong), nothing else moves: the exact sign-flip test over
    them gives 2 / 2^lost whatever their weights (only all + or all - reach the observed sum of positive weights).
    4 images: 0.125, where the bootstrap said about 0.04 (the review's s13.py)."""
    rng = np.random.default_rng(0)
    old = rng.random((3, 200)) < 0.6
    old[np.arange(lost) % 3, np.arange(lost)] = True  # image j right in condition j mod 3...
    new = old.copy()
    new[np.arange(lost) % 3, np.arange(lost)] = False  # ...and lost there
    for kind in ("mce", "mean_error"):
        r = _summary(kind, old, new)
        assert r.p_value == 2 / 2 ** lost and r.p_resamples is None and r.delta > 0, kind
        assert f"sign-flip test on the {lost} images whose weighted error changed, exact" in r.test


def test_the_mce_p_by_hand_with_unequal_weights():
    """Three changed images: one loses gaussian_noise-3 (weight w_g = 100 / (3 x AlexNet's error there)), one loses
    fog-3 (w_f), one wins contrast-3 back (-w_c). p = share of the 8 sign patterns with |+-w_g +-w_f +-w_c| >=
    |w_g + w_f - w_c|, counted here from the AlexNet constants."""
    old = np.ones((3, 50), dtype=bool)
    old[2, 2] = False
    new = old.copy()
    new[0, 0] = new[1, 1] = False
    new[2, 2] = True
    w = [100 / (3 * ALEXNET_ERRORS[c][s - 1]) for c, s in KEYS]
    observed = abs(w[0] + w[1] - w[2])
    expected = sum(abs(a * w[0] + b * w[1] + c * w[2]) >= observed - 1e-9
                   for a, b, c in itertools.product((1, -1), repeat=3)) / 8
    r = _summary("mce", old, new)
    assert r.delta == pytest.approx((w[0] + w[1] - w[2]) / 50)
    assert r.p_value == pytest.approx(expected) and expected in (0.25, 0.5, 0.75, 1.0)


# -- the gate: what the old bootstrap failed now warns ----------------------------------------------------------

def _side(cues, bits, report: bool) -> ModelOutcomes:
    o = ModelOutcomes("m", ended={} if report else None, corruption_summary="mce")
    ids, decisions = cues
    o.outcomes["cue-conflict"] = Outcome("cue-conflict", "cue-conflict", ids, np.asarray(decisions, dtype=object))
    images = [f"n{1000000 + i:08d}_{i}.JPEG" for i in range(bits.shape[1])]
    for (c, s), row in zip(CONDITIONS, bits):
        o.outcomes[f"{c}-{s}"] = Outcome("corruption", f"{c}-{s}", images, row)
    return o


CONDITIONS = [(c, s) for c in ("gaussian_noise", "fog", "contrast", "snow") for s in (1, 2, 3)]


def test_seven_shape_changes_among_14_comparisons_warn_instead_of_failing():
    """The review's run in small: shape bias 15/63 -> 8/56 (7 shape decisions turned to other categories, beyond the
    0.02 tolerance) among 14 p-valued comparisons (12 unchanged corruption conditions, the mCE, shape bias). The
    bootstrap's p (0.002 x 14 < 0.05) made it a regression; the exact p 2/128 x 14 = 0.22: a warning."""
    ids, shapes, textures, others = _stimuli(87)
    old = [shapes[k] if k < 15 else textures[k] if k < 63 else others[k] for k in range(87)]
    new = [others[k] if k < 7 else old[k] for k in range(87)]
    bits = np.random.default_rng(4).random((len(CONDITIONS), 60)) < 0.7
    results = compare_model(_side((ids, old), bits, True), _side((ids, new), bits.copy(), False), settings_from(DEFAULTS))
    assert sum(1 for r in results.values() if r.p_value_holm is not None) == 14
    r = results["shape_bias"]
    assert r.delta == pytest.approx(8 / 56 - 15 / 63) and r.p_value == 2 / 128
    assert r.p_value_holm == pytest.approx(14 * 2 / 128)
    assert r.verdict == "warning", r.reason
    assert all(x.verdict == "unchanged" for k, x in results.items() if k != "shape_bias" and x.p_value_holm is not None)
