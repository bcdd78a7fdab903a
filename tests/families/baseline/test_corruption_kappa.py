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


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa as model-vs-human defines it, written out."""
    p1, p2 = a.mean(), b.mean()
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    return float((np.mean(a == b) - expected) / (1 - expected))


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
    assert ec["kappa"] == pytest.approx(_kappa(a.ravel(), b.ravel())) and ec["kappa"] > 0.5
    assert (ec["n"], ec["images"], ec["conditions"]) == (75 * N, N, 75)
    assert ec["observed"] == pytest.approx(np.mean(a == b))
    # the interval by hand: images drawn with replacement, each bringing its 75 conditions (same draws)
    idx = np.random.default_rng(0).integers(0, N, size=(resamples, N))
    by_hand = [_kappa(a[:, i].ravel(), b[:, i].ravel()) for i in idx]
    assert ec["kappa_ci"] == pytest.approx(list(np.percentile(by_hand, [2.5, 97.5])))
    assert ec["below"] is None and mce.verdict == "unchanged"


def test_a_pooled_kappa_below_the_bounds_is_a_warning_then_a_regression():
    old, new = _moved(30, severities=(1, 2, 3, 4, 5))
    pooled = _kappa(_stack(old).ravel(), _stack(new).ravel())
    assert pooled < 0.5
    r = compare_model(_side(old, True), _side(new, False), settings_from(DEFAULTS))["mce"]
    assert r.delta == 0.0 and r.verdict == "warning" and r.error_consistency["below"] == "kappa_warning"
    assert f"pooled kappa {pooled:.3f}" in r.reason and "100 paired images x 75 conditions" in r.reason
    strict = compare_model(_side(old, True), _side(new, False), settings_from({**DEFAULTS, "min_kappa": 0.6}))["mce"]
    assert strict.verdict == "regression" and "below min_kappa 0.6" in strict.reason
