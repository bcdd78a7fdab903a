"""Review 26, finding 1: with the default 15 x 5 corruption conditions the model's Holm family holds 91 p-valued
comparisons; a bootstrap p floored at 2 / 2001 could never pass Holm's first step 0.05 / 91, so a clear corruption
or shape-bias regression passed. The p-values' resamples now follow the family's size (p_resamples_for)."""

from __future__ import annotations

import math

import numpy as np

from visionaudit.data.imagenet16 import categories
from visionaudit.families.baseline import ModelOutcomes, compare_model, settings_from
from visionaudit.families.baseline.corruptions import ALL_CONDITIONS
from visionaudit.families.corruption.imagenet_c import BENCHMARK, SEVERITIES
from visionaudit.families.outcomes import Outcome
from visionaudit.families.registry import get_family

DEFAULTS = {name: field.default for name, field in get_family("baseline").thresholds.items()}
N = 100
IDS = [f"n{1000000 + i:08d}_{i}.JPEG" for i in range(N)]
DEFAULT_CONDITIONS = [(c, s) for c in BENCHMARK for s in SEVERITIES]  # [audits.corruption]'s defaults: 15 x 5


def _side(conditions: dict[tuple[str, int], np.ndarray], report: bool, cues=None) -> ModelOutcomes:
    o = ModelOutcomes("m", ended={} if report else None, corruption_summary="mce")
    for (c, s), bits in conditions.items():
        o.outcomes[f"{c}-{s}"] = Outcome("corruption", f"{c}-{s}", IDS, np.asarray(bits, dtype=bool))
    if cues is not None:
        ids, decisions = cues
        o.outcomes["cue-conflict"] = Outcome("cue-conflict", "cue-conflict", ids, np.asarray(decisions, dtype=object))
    return o


def _baseline_bits(seed: int = 0) -> dict[tuple[str, int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return {(c, s): rng.random(N) > 0.2 + 0.1 * s for c, s in DEFAULT_CONDITIONS}


def test_the_default_conditions_are_the_benchmark_grid():
    assert len(DEFAULT_CONDITIONS) == 75 and set(DEFAULT_CONDITIONS) <= set(ALL_CONDITIONS)


def test_a_uniformly_worse_candidate_is_a_regression_on_the_mce():
    old = _baseline_bits()
    new = {}
    for k, bits in old.items():  # loses 6 images in every condition (right -> wrong), wins none
        b = bits.copy()
        b[np.flatnonzero(b)[:6]] = False
        new[k] = b
    results = compare_model(_side(old, True), _side(new, False), settings_from(DEFAULTS))
    r = results["mce"]
    # m: 15 fixed comparisons with a p-value (channel shares have none) + 75 conditions + the mCE = 91
    assert r.p_resamples == math.ceil(20 * 91 / 0.05) == 36400
    assert r.delta > 1.0 and r.ci[0] > 1.0  # beyond the mCE tolerance (1 point)
    assert r.p_value_holm < 0.05 and r.verdict == "regression", r.reason


def test_an_unchanged_candidate_is_still_unchanged():
    old = _baseline_bits(1)
    results = compare_model(_side(old, True), _side({k: v.copy() for k, v in old.items()}, False), settings_from(DEFAULTS))
    assert results["mce"].verdict == "unchanged" and results["mce"].delta == 0.0 and results["mce"].p_value == 1.0
    assert all(results[f"corruption_{c}_{s}"].verdict == "unchanged" for c, s in DEFAULT_CONDITIONS)


def _cues(n: int) -> tuple[list[str], list[str], list[str]]:
    cats = categories()
    shapes, textures = [cats[k % 16] for k in range(n)], [cats[(k + 1) % 16] for k in range(n)]
    return [f"{s}/{s}{k}-{t}{k}.png" for k, (s, t) in enumerate(zip(shapes, textures))], shapes, textures


def test_a_shape_bias_regression_still_fails_beside_the_75_corruption_comparisons():
    """A candidate that turns 60 of 400 shape decisions into texture ones (shape bias 0.6 -> 0.45, far beyond the
    0.02 tolerance), every corruption condition unchanged: the shape-bias comparison is still a regression."""
    ids, shapes, textures = _cues(400)
    old = [s if k % 5 < 3 else t for k, (s, t) in enumerate(zip(shapes, textures))]  # shape bias 0.6
    new = [t if k % 20 in (0, 1, 2) else o for k, (o, t) in enumerate(zip(old, textures))]  # 60 shape -> texture
    bits = _baseline_bits(2)
    results = compare_model(_side(bits, True, (ids, old)), _side({k: v.copy() for k, v in bits.items()}, False, (ids, new)),
                            settings_from(DEFAULTS))
    r = results["shape_bias"]
    assert r.delta == -0.15 or abs(r.delta + 0.15) < 1e-12
    assert sum(1 for x in results.values() if x.p_value_holm is not None) == 77  # shape bias, 75 conditions, mCE
    assert r.p_resamples == math.ceil(20 * 91 / 0.05)
    assert r.verdict == "regression", r.reason
