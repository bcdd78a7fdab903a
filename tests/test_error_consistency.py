"""Error consistency (visionaudit/error_consistency.py) against hand computations and a plain-Python bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from visionaudit.error_consistency import error_consistency, kappa_of, mean_kappa
from visionaudit.files import to_jsonable

T, F = True, False


def test_hand_computed_observed_expected_and_kappa():
    # both right, both right, 1 only, both wrong, 2 only: c_obs 3/5; p1 = p2 = 3/5, c_exp = .36 + .16 = .52
    ec = error_consistency([T, T, T, F, F], [T, T, F, F, T], resamples=0)
    assert (ec.n, ec.accuracy_1, ec.accuracy_2) == (5, 0.6, 0.6)
    assert ec.observed == pytest.approx(0.6) and ec.expected == pytest.approx(0.52)
    assert ec.kappa == pytest.approx(0.08 / 0.48) and ec.kappa_ci is None and ec.reason is None


def test_same_errors_give_one_opposite_errors_minus_one_and_independent_errors_zero():
    a = [T, F, T, T, F, T, F, T]
    assert error_consistency(a, a, resamples=0).kappa == pytest.approx(1.0)
    assert error_consistency([T, F], [F, T], resamples=0).kappa == pytest.approx(-1.0)
    # 1 right half the time, 2 right half the time, independently: every combination once
    assert error_consistency([T, T, F, F], [T, F, T, F], resamples=0).kappa == pytest.approx(0.0)
    # one always right, the other always wrong: c_obs = c_exp = 0, kappa 0 (defined)
    assert error_consistency([T, T, T], [F, F, F], resamples=0).kappa == pytest.approx(0.0)


@pytest.mark.parametrize("value, word", [(T, "right"), (F, "wrong")])
def test_both_always_right_or_wrong_is_undefined_with_the_reason_and_no_nan_in_json(value, word):
    ec = error_consistency([value] * 10, [value] * 10)
    assert ec.expected == 1.0 and ec.kappa is None and ec.kappa_ci is None
    assert f"both are {word} on all 10 trials" in ec.reason and "undefined" in ec.reason
    json.dumps(to_jsonable(ec.to_dict()), allow_nan=False)
    assert kappa_of(1.0, 1.0) is None


def test_no_trials_says_so_and_stays_json():
    ec = error_consistency([], [])
    assert ec.n == 0 and ec.kappa is None and ec.reason == "no paired trials"
    text = json.dumps(to_jsonable(ec.to_dict()), allow_nan=False)
    assert json.loads(text)["observed"] is None


def test_unpaired_lengths_are_refused():
    with pytest.raises(ValueError, match="3 outcomes against 2"):
        error_consistency([T, F, T], [T, F])


def _plain_bootstrap(a, b, resamples, seed):
    """The same resamples (numpy's generator, in the module's chunks of 250), each kappa computed in plain Python."""
    rng = np.random.default_rng(seed)
    kappas = []
    for start in range(0, resamples, 250):
        for row in rng.integers(0, len(a), size=(min(resamples, start + 250) - start, len(a))):
            x, y = [a[i] for i in row], [b[i] for i in row]
            p1, p2 = sum(x) / len(x), sum(y) / len(y)
            obs = sum(u == v for u, v in zip(x, y)) / len(x)
            exp = p1 * p2 + (1 - p1) * (1 - p2)
            if exp < 1:
                kappas.append((obs - exp) / (1 - exp))
    kappas.sort()
    return kappas


def test_bootstrap_interval_is_the_percentiles_of_resampled_kappas():
    rng = np.random.default_rng(5)
    a = list(rng.random(120) < 0.7)
    b = [x if rng.random() < 0.8 else not x for x in a]
    ec = error_consistency(a, b, resamples=400, seed=3)
    kappas = _plain_bootstrap(a, b, 400, 3)
    assert ec.undefined_resamples == 400 - len(kappas)
    assert ec.kappa_ci == pytest.approx(tuple(np.percentile(kappas, [2.5, 97.5])))
    assert ec.kappa_ci[0] < ec.kappa < ec.kappa_ci[1]
    assert error_consistency(a, b, resamples=400, seed=3) == ec  # seeded
    assert error_consistency(a, b, resamples=400, seed=4).kappa_ci != ec.kappa_ci


def test_rare_errors_leave_undefined_resamples_out_and_say_so():
    a = [T] * 99 + [F]
    ec = error_consistency(a, a, resamples=200, seed=0)
    assert ec.kappa == pytest.approx(1.0)
    # a resample misses the one error with probability (99/100)^100, about 0.37
    assert 40 < ec.undefined_resamples < 110 and ec.kappa_ci == (1.0, 1.0)


def test_mean_kappa_is_the_mean_of_the_pairs_kappas_with_an_interval_around_it():
    rng = np.random.default_rng(1)
    model = rng.random(200) < 0.6
    humans = [np.where(rng.random(200) < q, model, ~model) for q in (0.9, 0.7, 0.55)]
    mean, ci = mean_kappa([(model, h) for h in humans], resamples=300, seed=0)
    assert mean == pytest.approx(sum(error_consistency(model, h, 0).kappa for h in humans) / 3)
    assert ci[0] < mean < ci[1]
    assert mean_kappa([]) == (None, None)
    assert mean_kappa([([T, T], [T, T])]) == (None, None)  # every pair undefined
