"""The corruption family and error consistency in the baseline gate, on small synthetic reports: every number
checked against a hand computation or an independent reimplementation (scipy's binomtest for McNemar, numpy for
the mCE's paired bootstrap and for Cohen's kappa)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from visionaudit.families.baseline import (
    COMPARED,
    baseline_comparisons,
    compare_model,
    outcomes_from_report,
    settings_from,
)
from visionaudit.families.baseline import corruptions as corr
from visionaudit.families.corruption.imagenet_c import ALEXNET_ERRORS
from visionaudit.families.outcomes import encode_bits
from visionaudit.families.registry import get_family

N = 40
IDS = [f"n{1000000 + i:08d}_{i}.JPEG" for i in range(N)]
DEFAULTS = {name: field.default for name, field in get_family("baseline").thresholds.items()}


def _entry(spec, condition, bits, audit="corruption", role="corruption", alexnet=True):
    corruption, _, severity = condition.rpartition("-")
    metrics = {"error": float(1 - np.mean(bits))}
    if not alexnet:
        metrics["alexnet_normalized"] = False
    params = {"corruption": corruption, "severity": int(severity)} if audit == "corruption" else {}
    test = "test_corruption" if audit == "corruption" else "test_clean_top1"
    return {"nodeid": f"audits/test_{audit}.py::{test}[{spec}-{condition}]", "audit": audit, "model": spec,
            "outcome": "passed", "params": params, "metrics": metrics,
            "outcomes": {"set": role, "condition": condition, **encode_bits(bits)}}


def _report(conditions: dict[str, np.ndarray], spec="m", schema=5, alexnet=True, clean=None, role="corruption"):
    audits = [_entry(spec, c, b, alexnet=alexnet, role=role) for c, b in conditions.items()]
    if clean is not None:
        audits.append(_entry(spec, "clean-0", clean, audit="accuracy", role="labelled") | {
            "outcomes": {"set": "labelled", "condition": "clean", **encode_bits(clean)}})
    sets = {role: {"name": "s", "n": N, "subset": None, "seed": 0, "protocol": 2, "fingerprint": "f", "ids": IDS}}
    if clean is not None:
        sets["labelled"] = sets[role]
    return {"schema_version": schema, "run": {"seed": 0, "samples": None}, "models": {spec: {"loaded": True}},
            "audits": audits, "samples": sets}


def _settings(**bounds):
    return settings_from({**DEFAULTS, "bootstrap_resamples": 400, **bounds})


def _bits(wrong: list[int]) -> np.ndarray:
    out = np.ones(N, dtype=bool)
    out[wrong] = False
    return out


def test_conditions_pair_and_a_condition_on_one_side_only_is_not_a_pass():
    old = _report({"fog-1": _bits([0, 1, 2]), "fog-2": _bits(list(range(10))), "defocus_blur-1": _bits([5])})
    new = _report({"fog-1": _bits([0, 1, 2]), "fog-2": _bits(list(range(4, 20))), "snow-1": _bits([7])})
    results = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings())
    fog2 = results["corruption_fog_2"]
    # by hand: baseline wrong on 0..9 (error 10/40), candidate on 4..19 (16/40); right -> wrong 10..19 (10), wrong ->
    # right 0..3 (4)
    assert (fog2.baseline, fog2.candidate, fog2.delta) == pytest.approx((0.25, 0.4, 0.15))
    assert fog2.discordant == (10, 4) and fog2.lost_count == 10 and fog2.higher_is_better is False
    assert fog2.p_value == pytest.approx(sps.binomtest(4, 14, 0.5).pvalue)
    assert fog2.ci[0] < 0.15 < fog2.ci[1]
    assert results["corruption_fog_1"].verdict == "unchanged" and results["corruption_fog_1"].p_value == 1.0
    blur, snow = results["corruption_defocus_blur_1"], results["corruption_snow_1"]
    assert blur.verdict == snow.verdict == "not_compared"
    assert blur.missing_side == "candidate" and "the candidate has no per-image outcomes for defocus_blur-1" in blur.reason
    assert snow.missing_side == "baseline" and "the baseline has no per-image outcomes for snow-1" in snow.reason
    # Holm over the model's comparisons: the fixed ones found nothing (no clean outcomes), the corruption ones count.
    assert sorted(k for k, r in results.items() if r.p_value_holm is not None) == ["corruption_fog_1", "corruption_fog_2", "mce"]
    mce_p = results["mce"].p_value
    # Holm by hand (step-down: an adjusted p is never below the one before it)
    expected = min(1.0, 3 * fog2.p_value) if fog2.p_value <= mce_p else min(1.0, max(3 * mce_p, 2 * fog2.p_value))
    assert fog2.p_value_holm == pytest.approx(expected)


def _independent_mce(bits: dict[tuple[str, int], np.ndarray], idx: np.ndarray | None = None) -> float:
    """mCE by hand: per corruption 100 x (sum of its errors) / (sum of AlexNet's at the same severities), averaged."""
    per: dict[str, list[tuple[int, float]]] = {}
    for (c, s), b in bits.items():
        b = b if idx is None else b[idx]
        per.setdefault(c, []).append((s, 1.0 - b.mean()))
    return float(np.mean([100 * sum(e for _, e in v) / sum(ALEXNET_ERRORS[c][s - 1] for s, _ in v) for c, v in per.items()]))


def test_the_mce_change_by_an_exact_sign_flip_test_and_a_bootstrap_interval():
    rng = np.random.default_rng(3)
    old = {(c, s): rng.random(N) > 0.3 + 0.1 * s for c in ("fog", "contrast") for s in (1, 3)}
    new = {k: v & (rng.random(N) > 0.15) for k, v in old.items()}  # the candidate loses some images everywhere
    new[("snow", 1)] = rng.random(N) > 0.5  # the candidate only: left out of the paired mCE, and said
    as_report = lambda d: _report({f"{c}-{s}": b for (c, s), b in d.items()})  # noqa: E731
    resamples = 300
    results = compare_model(outcomes_from_report(as_report(old), "m"), outcomes_from_report(as_report(new), "m"),
                            _settings(bootstrap_resamples=resamples))
    r = results["mce"]
    common = {k: new[k] for k in old}
    assert r.baseline == pytest.approx(_independent_mce(old)) and r.candidate == pytest.approx(_independent_mce(common))
    assert r.delta == pytest.approx(r.candidate - r.baseline) and r.delta > 0 and r.higher_is_better is False
    assert "snow-1" in r.test and r.n == N
    # The interval: the same paired bootstrap by hand, images drawn with replacement (one draw for both sides), 300 draws.
    draw = np.random.default_rng(0)
    changes = np.array([_independent_mce(common, idx) - _independent_mce(old, idx)
                        for idx in draw.integers(0, N, size=(resamples, N))])
    assert r.ci == pytest.approx(tuple(np.percentile(changes, [2.5, 97.5])), abs=1e-9)
    # The p-value: an exact paired permutation test by hand. Each image's contribution to the change is the mCE's
    # change when only that image takes the candidate's outcomes (the mCE is linear in the errors); swapping an
    # image's two outcomes turns its contribution's sign, so p = P(|sum of +-contributions| >= |observed|) over
    # every sign pattern of the images that changed.
    contributions = []
    for i in range(N):
        one = {k: np.where(np.arange(N) == i, common[k], v) for k, v in old.items()}
        contributions.append(_independent_mce(one) - _independent_mce(old))
    moved = np.array([c for c in contributions if abs(c) > 1e-9])
    assert moved.sum() == pytest.approx(r.delta) and 0 < moved.size <= 20
    signs = np.array([[1 if (k >> j) & 1 else -1 for j in range(moved.size)] for k in range(2 ** moved.size)])
    p = np.mean(np.abs(signs @ moved) >= abs(moved.sum()) - 1e-9)
    assert r.p_value == pytest.approx(p) and r.p_resamples is None  # exact: no resamples
    assert f"sign-flip test on the {moved.size} images whose weighted error changed, exact" in r.test
    assert "mean_error" not in results  # an ImageNet-1k label space: its summary is the mCE


def test_the_mean_error_for_another_label_space_and_no_mce_across_kinds():
    old = {"fog-1": _bits([0, 1, 2, 3]), "frost-1": _bits([1, 2])}
    new = {"fog-1": _bits([0, 1]), "frost-1": _bits([1, 2, 3, 4, 5, 6])}
    a = outcomes_from_report(_report(old, alexnet=False), "m")
    results = compare_model(a, outcomes_from_report(_report(new, alexnet=False), "m"), _settings())
    r = results["mean_error"]
    assert (r.baseline, r.candidate) == pytest.approx(((4 + 2) / 80, (2 + 6) / 80)) and "mce" not in results
    mixed = compare_model(a, outcomes_from_report(_report(new), "m"), _settings())  # the candidate's is an mCE
    assert mixed["mce"].verdict == mixed["mean_error"].verdict == "not_compared"
    assert "label spaces of another kind" in mixed["mce"].reason


def test_comparison_names_follow_the_baseline_and_the_configured_conditions():
    held = _report({"fog-3": _bits([1]), "gaussian_noise-1": _bits([2])})
    names = baseline_comparisons(held, ["m"], [("fog", 3), ("speckle_noise", 2)])
    assert names == [*COMPARED, "corruption_gaussian_noise_1", "corruption_fog_3", "corruption_speckle_noise_2", "mce"]
    assert baseline_comparisons(_report({}), ["m"], [("fog", 3)]) == list(COMPARED)  # nothing held: nothing to hold to


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa as model-vs-human defines it, written out."""
    p1, p2 = a.mean(), b.mean()
    observed = np.mean(a == b)
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    return float((observed - expected) / (1 - expected))


def test_error_consistency_in_every_paired_comparison_and_its_bounds():
    """Equal accuracy (30 of 40 right on both sides), errors on other images: the accuracy holds, kappa is low."""
    old_clean, new_clean = _bits(list(range(10))), _bits(list(range(8, 18)))
    old_fog, new_fog = _bits([0, 1, 2, 3]), _bits([0, 1, 2, 3])
    old = _report({"fog-1": old_fog}, clean=old_clean)
    new = _report({"fog-1": new_fog}, clean=new_clean)
    results = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings())
    clean, fog = results["clean_top1"], results["corruption_fog_1"]
    kappa = _kappa(old_clean, new_clean)
    ec = clean.error_consistency
    assert ec["kappa"] == pytest.approx(kappa) and ec["n"] == N
    assert ec["observed"] == pytest.approx(np.mean(old_clean == new_clean)) and ec["expected"] == pytest.approx(0.75 ** 2
                                                                                                                + 0.25 ** 2)
    assert ec["kappa_ci"][0] < kappa < ec["kappa_ci"][1]
    assert kappa < 0.5 and clean.verdict == "warning" and "errors moved: kappa" in clean.reason and ec["below"] == "kappa_warning"
    assert fog.error_consistency["kappa"] == pytest.approx(1.0) and fog.verdict == "unchanged"
    strict = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings(min_kappa=0.6))
    assert strict["clean_top1"].verdict == "regression" and strict["clean_top1"].delta == 0.0
    assert "below min_kappa 0.6 (its clean_top1 was unchanged)" in strict["clean_top1"].reason
    assert "error_consistency" in strict["clean_top1"].to_dict()


def test_a_schema_5_baseline_without_error_consistency_is_read():
    """A schema-5 report holds corruption bits but no error_consistency nor top1: it is compared all the same."""
    old = _report({"fog-1": _bits([0, 1])}, schema=5)
    results = compare_model(outcomes_from_report(old, "m"),
                            outcomes_from_report(_report({"fog-1": _bits([0, 1])}, schema=6), "m"),
                            _settings())
    assert results["corruption_fog_1"].verdict == "unchanged" and results["mce"].verdict == "unchanged"
    assert results["corruption_fog_1"].error_consistency["kappa"] == pytest.approx(1.0)


def test_summary_and_compare_show_the_corruption_changes_and_kappa():
    from visionaudit.families.baseline.summary import summary_lines as _summary_lines
    from visionaudit.report.compare import render

    old = _report({"fog-1": _bits([0, 1]), "fog-3": _bits([0, 1, 2])}, clean=_bits(list(range(10))))
    new = _report({"fog-1": _bits([0, 1]), "fog-3": _bits(list(range(30)))}, clean=_bits(list(range(8, 18))))
    results = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings())
    entries = [{"audit": "baseline", "model": "m", "params": {"comparison": k},
                "metrics": {**r.to_dict(), "baseline_model": "m", "paired": True}} for k, r in results.items()]
    lines = _summary_lines({"audits": entries, "run": {}})
    kappa = _kappa(_bits(list(range(10))), _bits(list(range(8, 18))))
    fog = results["corruption_fog_3"]
    # clean_top1's kappa is judged and the lowest; fog-3's (a condition's, recorded, not judged) is higher
    assert fog.error_consistency["kappa"] == pytest.approx(_kappa(_bits([0, 1, 2]), _bits(list(range(30)))))
    assert fog.error_consistency["kappa"] > kappa
    assert lines[0].startswith("baseline, m vs m: ") and f"lowest judged kappa {kappa:.3f} [95% " in lines[0]
    assert lines[0].endswith("(clean_top1)") and "not judged" not in lines[0], lines[0]
    assert any(line.startswith("  corruption_fog_3: 0.075 -> 0.75, +0.6750") and "regression" in line for line in lines), lines
    assert any(line.startswith("  clean_top1: ") and line.endswith("warning; errors moved") for line in lines), lines
    table = render({"paired": True, "problems": [], "models": {"m": {"baseline_model": "m", "results": results}}})
    row = next(line for line in table.splitlines() if line.startswith("clean_top1"))
    assert f"{kappa:.3f} [95%" in row and "errors moved (kappa below kappa_warning)" in row


def test_the_summary_names_the_lowest_judged_kappa_not_a_conditions():
    """A condition's kappa is recorded, not judged (the corruption family is judged once, on the pooled mCE): the
    summary's lowest kappa is the lowest judged one, and a lower unjudged one is named as such."""
    from visionaudit.families.baseline.summary import summary_lines as _summary_lines

    clean = _bits(list(range(10)))
    old = _report({"fog-1": _bits([0, 1]), "fog-3": _bits([0, 1, 2, 3])}, clean=clean)
    new = _report({"fog-1": _bits([0, 1]), "fog-3": _bits([20, 21, 22, 23])}, clean=clean)
    results = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings())
    entries = [{"audit": "baseline", "model": "m", "params": {"comparison": k},
                "metrics": {**r.to_dict(), "baseline_model": "m", "paired": True}} for k, r in results.items()]
    line = _summary_lines({"audits": entries, "run": {}})[0]
    fog3 = _kappa(_bits([0, 1, 2, 3]), _bits([20, 21, 22, 23]))  # by hand: 32 of 40 agree, expected 0.82
    assert results["corruption_fog_3"].error_consistency["kappa"] == pytest.approx(fog3) and fog3 < 0
    mce = results["mce"].error_consistency["kappa"]
    assert fog3 < mce < 1.0  # clean's kappa is 1 (the same errors): the mCE's pooled kappa is the lowest judged
    assert f"lowest judged kappa {mce:.3f} [95% " in line and "(mce)" in line, line
    assert line.endswith(f"; lowest not judged kappa {fog3:.3f} [95% "
                         f"{results['corruption_fog_3'].error_consistency['kappa_ci'][0]:.3f}, "
                         f"{results['corruption_fog_3'].error_consistency['kappa_ci'][1]:.3f}] (corruption_fog_3)"), line


def test_a_lost_corruption_image_is_named_by_both_sides_top1():
    """The images a corruption condition lost carry each side's top-1 class (the baseline's from its report's
    outcomes.top1, this run's from the live side), like the clean and transform comparisons'."""
    from visionaudit.data.fingerprint import SampleSet
    from visionaudit.families.baseline import ModelOutcomes
    from visionaudit.families.outcomes import encode_labels

    report = _report({"fog-1": _bits([0])}, schema=6)
    report["audits"][0]["outcomes"]["top1"] = encode_labels([7] * N)  # named by index: the report names no classes
    live = ModelOutcomes("m", corruption_summary="mce")
    sample_set = SampleSet("corruption", "s", tuple(IDS), "f", None, 0)
    live.add(sample_set, "fog-1", _bits([0, 3, 5]))
    live.add_top1(sample_set, "fog-1", np.array(["tench"] * 3 + ["goldfish"] * (N - 3), dtype=object))
    r = compare_model(outcomes_from_report(report, "m"), live, _settings())["corruption_fog_1"]
    assert r.lost_count == 2
    assert r.lost_examples == [{"id": IDS[k], "set": "corruption", "condition": "fog-1", "baseline_top1": "7",
                                "candidate_top1": name} for k, name in ((3, "goldfish"), (5, "goldfish"))]


def test_the_bootstrap_blocks_are_bounded_and_do_not_change_the_draws(monkeypatch):
    """Review 2, finding 6: the mCE bootstrap drew (2000, images) blocks, 0.8 GB of indices at 50,000 images; blocks
    are now sized by an element budget, and the interval and p are the same whatever the block size."""
    from visionaudit.families.baseline import resampling
    from visionaudit.families.baseline.consistency import pooled_consistency
    from visionaudit.families.baseline.statistics import Result

    assert resampling.block_rows(50_000, 2000) * 50_000 <= 20_000_000 and resampling.block_rows(10, 2000) == 2000
    rng = np.random.default_rng(5)
    keys = [("fog", 1), ("fog", 2), ("snow", 1), ("snow", 2)]
    old, new = rng.random((4, 37)) < 0.6, rng.random((4, 37)) < 0.5

    def draws():
        mce = corr.summary_change(Result("mce", "mce", False), "mce", keys, old, new, 300, 0, p_resamples=1100)
        return mce.ci, mce.p_value, pooled_consistency(old, new, 300, 0)["kappa_ci"]

    whole = draws()
    monkeypatch.setattr(resampling, "BLOCK_ELEMENTS", 37 * 7)  # blocks of 7 resamples
    assert resampling.block_rows(37, 2000) == 7
    assert draws() == whole
