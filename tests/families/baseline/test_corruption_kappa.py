"""Review 26, finding 9: the corruption family's error consistency is judged once, on the pooled (image,
condition) outcomes of the conditions both sides scored, on the mCE entry; each condition's kappa is recorded, not
judged (75 judgements drew dozens of warnings at the near-chance severities)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.families.baseline.test_holm_power import (
    DEFAULT_CONDITIONS,
    DEFAULTS,
    N,
    _side,
)
from visionaudit.families.baseline import compare_model, settings_from
from visionaudit.families.baseline.consistency import pooled_consistency


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa as model-vs-human defines it, written out."""
    p1, p2 = a.mean(), b.mean()
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    return float((np.mean(a == b) - expected) / (1 - expected))


def _pooled(a: np.ndarray, b: np.ndarray) -> float:
    """The pooled kappa of (conditions, images) matrices, written out: observed over every (image, condition) pair,
    expected within each condition (each condition's own accuracies), averaged over the conditions."""
    observed = np.mean(a == b)
    expected = np.mean([p1 * p2 + (1 - p1) * (1 - p2) for p1, p2 in zip(a.mean(axis=1), b.mean(axis=1))])
    return float((observed - expected) / (1 - expected))


def _moved(swap: int, severities=(4, 5), seed: int = 0):
    """Baseline bits per condition, and a candidate of the same accuracy in every condition whose errors moved at
    ``severities``: ``swap`` right images turn wrong and ``swap`` wrong ones right."""
    rng = np.random.default_rng(seed)
    old = {(c, s): rng.random(N) > 0.1 * s + 0.05 for c, s in DEFAULT_CONDITIONS}
    new = {}
    for (c, s), bits in old.items():
        b = bits.copy()
        if s in severities:
            k = min(swap, int(bits.sum()), int((~bits).sum()))  # as many each way: the accuracy holds
            b[np.flatnonzero(bits)[:k]] = False
            b[np.flatnonzero(~bits)[:k]] = True
        new[(c, s)] = b
    return old, new


def _stack(d):
    return np.stack([d[k] for k in DEFAULT_CONDITIONS])


def test_kappa_is_judged_once_on_the_pooled_conditions():
    old, new = _moved(13)
    resamples = 400
    results = compare_model(_side(old, True), _side(new, False), settings_from({**DEFAULTS, "bootstrap_resamples": resamples}))
    low = [k for k in DEFAULT_CONDITIONS if k[1] in (4, 5)]
    assert all(_kappa(old[k], new[k]) < 0.5 for k in low)  # each moved condition alone is below kappa_warning
    for c, s in DEFAULT_CONDITIONS:
        r = results[f"corruption_{c}_{s}"]
        assert r.error_consistency["kappa"] == pytest.approx(_kappa(old[(c, s)], new[(c, s)]))  # recorded
        assert r.verdict == "unchanged" and "below" not in r.error_consistency  # not judged
    mce = results["mce"]
    ec = mce.error_consistency
    a, b = _stack(old), _stack(new)
    assert ec["kappa"] == pytest.approx(_pooled(a, b)) and ec["kappa"] > 0.5
    assert (ec["n"], ec["images"], ec["conditions"]) == (75 * N, N, 75)
    assert ec["observed"] == pytest.approx(np.mean(a == b))
    # the interval by hand: images drawn with replacement, each bringing its 75 conditions (same draws)
    idx = np.random.default_rng(0).integers(0, N, size=(resamples, N))
    by_hand = [_pooled(a[:, i], b[:, i]) for i in idx]
    assert ec["kappa_ci"] == pytest.approx(list(np.percentile(by_hand, [2.5, 97.5])))
    assert ec["below"] is None and mce.verdict == "unchanged"


def test_a_pooled_kappa_below_the_bounds_is_a_warning_then_a_regression():
    old, new = _moved(30, severities=(1, 2, 3, 4, 5))
    pooled = _pooled(_stack(old), _stack(new))
    assert pooled < 0.5
    r = compare_model(_side(old, True), _side(new, False), settings_from(DEFAULTS))["mce"]
    assert r.delta == 0.0 and r.verdict == "warning" and r.error_consistency["below"] == "kappa_warning"
    assert f"pooled kappa {pooled:.3f}" in r.reason and "100 paired images x 75 conditions" in r.reason
    strict = compare_model(_side(old, True), _side(new, False), settings_from({**DEFAULTS, "min_kappa": 0.6}))["mce"]
    assert strict.verdict == "regression" and "below min_kappa 0.6" in strict.reason


def test_errors_independent_within_conditions_of_other_difficulty_are_not_agreement():
    """Review 2, finding 1: both releases right on the easy conditions and wrong on the hard ones, errors independent
    within each, agree no more than chance; accuracies pooled over the conditions made that kappa 0.64."""
    rng = np.random.default_rng(3)
    n, accuracies = 20_000, [0.9, 0.1]
    a = np.stack([rng.random(n) < p for p in accuracies])
    b = np.stack([rng.random(n) < p for p in accuracies])
    assert _kappa(a.ravel(), b.ravel()) > 0.6  # the flat pooling's inflation
    ec = pooled_consistency(a, b, 200, 0)
    assert ec["kappa"] == pytest.approx(_pooled(a, b)) and abs(ec["kappa"]) < 0.03
    assert ec["kappa_ci"][0] < 0 < ec["kappa_ci"][1]


def test_independent_errors_within_conditions_warn_on_the_summary():
    rng = np.random.default_rng(4)
    right = {1: 0.97, 2: 0.97, 3: 0.5, 4: 0.03, 5: 0.03}  # severities 1-2 easy, 4-5 hard for both
    old = {(c, s): rng.random(N) < right[s] for c, s in DEFAULT_CONDITIONS}
    new = {(c, s): rng.random(N) < right[s] for c, s in DEFAULT_CONDITIONS}  # errors independent within each
    assert _kappa(_stack(old).ravel(), _stack(new).ravel()) > 0.5 > _pooled(_stack(old), _stack(new))
    r = compare_model(_side(old, True), _side(new, False), settings_from(DEFAULTS))["mce"]
    assert r.error_consistency["below"] == "kappa_warning" and r.verdict in ("warning", "regression", "improvement")
    assert "errors moved" in r.reason
