"""The corruption family's metrics against hand-computed and published values (AlexNet's errors, AugMix's mCE),
McNemar and Holm by hand, and the family's summary: the mCE over what was scored, each missing corruption named with
why."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionaudit.families import corruption as C
from visionaudit.families.corruption.imagenet_c import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    BENCHMARK,
    corruption_error,
    relative_corruption_error,
    summarize,
)

# google-research/augmix imagenet.py, ALEXNET_ERR ("Raw AlexNet errors taken from hendrycks/robustness"),
# typed from that source: per-corruption means, a transcription independent of the per-severity table.
AUGMIX_ALEXNET_ERR = [0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572,
                      0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500]


def augmix_compute_mce(corruption_accs: dict[str, list[float]]) -> float:
    """AugMix's compute_mce (imagenet.py), as written there: a reference implementation of the mCE."""
    mce = 0.0
    for i, name in enumerate(BENCHMARK):
        avg_err = 1 - np.mean(corruption_accs[name])
        mce += 100 * avg_err / AUGMIX_ALEXNET_ERR[i] / 15
    return mce


# -- metrics --------------------------------------------------------------------------------------------


def test_the_two_transcriptions_of_alexnets_errors_agree():
    assert list(ALEXNET_ERRORS) == ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                                    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform",
                                    "pixelate", "jpeg_compression"]
    for (name, per_severity), mean in zip(ALEXNET_ERRORS.items(), AUGMIX_ALEXNET_ERR):
        assert sum(per_severity) / 5 == pytest.approx(mean, abs=5e-7), name


def test_alexnet_scores_100_on_every_measure():
    """The normalization's fixed point: AlexNet's own errors give CE 100 everywhere, mCE and relative mCE 100."""
    errors = {c: dict(zip((1, 2, 3, 4, 5), e)) for c, e in ALEXNET_ERRORS.items()}
    s = summarize(errors, ALEXNET_CLEAN_ERROR)
    assert s.complete and not s.note and s.mce == pytest.approx(100) and s.relative_mce == pytest.approx(100)
    assert all(v == pytest.approx(100) for v in (*s.ce.values(), *s.relative_ce.values()))
    assert s.mean_error == pytest.approx(sum(AUGMIX_ALEXNET_ERR) / 15)


def test_ce_and_relative_ce_by_hand():
    # gaussian noise: AlexNet sums to 4.43214; a model at 0.5 on every severity with clean error 0.2
    errors = {s: 0.5 for s in (1, 2, 3, 4, 5)}
    assert corruption_error(errors, "gaussian_noise") == pytest.approx(100 * 2.5 / 4.43214)
    # relative: sum of (0.5 - 0.2) = 1.5 over sum of (AlexNet - 0.43478) = 4.43214 - 2.1739 = 2.25824
    assert relative_corruption_error(errors, 0.2, "gaussian_noise") == pytest.approx(100 * 1.5 / 2.25824)
    # two severities only: AlexNet's same two (0.69528 + 0.99452)
    assert corruption_error({1: 0.3, 5: 0.9}, "gaussian_noise") == pytest.approx(100 * 1.2 / 1.6898)


def test_mce_matches_augmix_reference_implementation():
    rng = np.random.default_rng(3)
    accs = {c: list(rng.uniform(0.05, 0.9, 5)) for c in BENCHMARK}
    errors = {c: {s + 1: 1 - a for s, a in enumerate(v)} for c, v in accs.items()}
    assert summarize(errors, 0.25).mce == pytest.approx(augmix_compute_mce(accs), rel=1e-6)


def test_fewer_corruptions_or_severities_are_marked_not_published():
    errors = {c: {s: 0.5 for s in (1, 2, 3, 4, 5)} for c in BENCHMARK if c != "frost"}
    s = summarize(errors, 0.2, {"frost": "not available: no frost pictures"})
    assert not s.complete and s.missing == {"frost": "not available: no frost pictures"} and "frost" not in s.ce
    assert "mCE over 14 of the 15 corruptions (not available: no frost pictures: frost): not the published mCE" in s.note
    fewer = summarize({c: errors[c] for c in ("fog", "snow")}, 0.2, {"frost": "not available: no pictures"})
    assert fewer.note.startswith("mCE over 2 of the 15 corruptions (not in the configured corruptions: "
                                 "gaussian_noise, shot_noise, ")
    assert "; not available: no pictures: frost)" in fewer.note
    assert s.mce == pytest.approx(sum(100 * 2.5 / sum(ALEXNET_ERRORS[c]) for c in errors) / 14)
    partial = summarize({c: {1: 0.4, 3: 0.6} for c in BENCHMARK}, 0.2)
    assert not partial.complete and "severities 1, 3 only" in partial.note
    with pytest.raises(ValueError, match="different severities"):
        summarize({"fog": {1: 0.4}, "snow": {1: 0.4, 2: 0.5}}, 0.2)


def test_holm_over_conditions_by_hand():
    out = C.holm_over_conditions({"fog-1": 0.01, "snow-2": 0.04, "frost-3": 0.03, "folder-1": math.nan}, alpha=0.05)
    # sorted 0.01, 0.03, 0.04: adjusted 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.06, 1 * 0.04) = 0.06; NaN left out
    assert out == {"fog-1": {"p_value_holm": pytest.approx(0.03), "significant": True},
                   "frost-3": {"p_value_holm": pytest.approx(0.06), "significant": False},
                   "snow-2": {"p_value_holm": pytest.approx(0.06), "significant": False}}


def test_clean_error_is_errors_over_n():
    """4 wrong of 25 is stored as 4/25 = 0.16, not 1 - mean's 0.16000000000000003; the mCE entry's clean and
    JPEG-only errors too."""
    from visionaudit.families.corruption.judging import _error

    clean = np.ones(25, dtype=bool)
    clean[[1, 5, 9, 20]] = False
    assert C.paired("fog", 1, clean.copy(), clean).clean_error == 4 / 25 == 0.16
    assert _error(clean) == 0.16 and _error(np.ones(3, dtype=bool)) == 0.0


def test_paired_condition_counts_and_mcnemar():
    clean = np.array([1, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
    corrupted = np.array([0, 0, 1, 1, 0, 0, 1, 0], dtype=bool)
    r = C.paired("fog", 2, corrupted, clean)
    assert r.discordant == (4, 1) and r.error == pytest.approx(5 / 8) and r.clean_error == pytest.approx(2 / 8)
    assert r.p_value == pytest.approx(12 / 32)  # P(|X - 2.5| >= 1.5), X ~ Bin(5, 1/2): 2 * (1 + 5) / 32


def test_aggregate_writes_holm_back_and_summarizes_from_entries():
    entries = [{"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05},
                "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 1e-4 if c == "fog" else 0.5, "n_images": 10,
                            "source": "kernels", "comparable": False}}
               for c in BENCHMARK for s in (1, 2, 3, 4, 5)]
    agg = C.FAMILY.aggregate(entries)["models"]["m"]
    assert agg["mce"] == pytest.approx(sum(250 / sum(ALEXNET_ERRORS[c]) for c in BENCHMARK) / 15)
    assert agg["significant"] == [f"fog-{s}" for s in (1, 2, 3, 4, 5)] and agg["complete"]  # 75 * 1e-4 < 0.05
    assert entries[0]["metrics"]["significant"] is False and entries[0]["metrics"]["p_value_holm"] == 1.0
    line = C.FAMILY.summary_lines({"aggregates": {"corruption": {"models": {"m": agg}}}})[0]
    assert line.startswith(f"corruption, m: mCE {agg['mce']:.1f}") and "not comparable with published ImageNet-C values" in line


def test_the_summary_says_why_each_corruption_is_missing():
    """Issue 23, item 13: corruptions deselected by -k were "not in the configured corruptions"."""
    def entry(model, c, s, outcome="passed", message=None, **metrics):
        scored = {"error": 0.5, "clean_error": 0.2, "p_value": 0.5} if outcome == "passed" else {}
        return {"model": model, "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": outcome,
                "message": message, "metrics": {**scored, **metrics}}

    skip = "fog at severity 1 is not configured for m ([audits.corruption])"
    entries = [entry("m", "gaussian_noise", 1), entry("m", "snow", 1),  # -k "noise-1 or snow-1 or fog-1 or frost-1"
               entry("m", "fog", 1, "skipped", skip), entry("m", "frost", 1, "error", "DataError: ...")]
    missing = C.FAMILY.aggregate([dict(e) for e in entries])["models"]["m"]["missing"]
    assert missing["fog"] == "not configured for m" and missing["frost"] == "not measured (its tests ended error)"
    assert missing["shot_noise"] == "not in this run's tests (deselected, e.g. by -k, or configured for no model)"
    assert "not in the configured corruptions" not in missing.values()
    # With the mCE's own account (it scores every configured corruption): deselected, or truly not configured.
    mce = {"model": "m", "params": {}, "thresholds": {}, "outcome": "passed", "message": None,
           "metrics": {"mce": 90.0,
                       "missing": {"zoom_blur": "not in the configured corruptions", "fog": "not in the configured corruptions"}}}
    missing = C.FAMILY.aggregate([dict(e) for e in entries] + [mce])["models"]["m"]["missing"]
    assert missing["shot_noise"] == "deselected: its tests were not collected in this run (-k, or the test paths given)"
    assert missing["zoom_blur"] == "not in the configured corruptions" and missing["fog"] == "not configured for m"
    note = C.FAMILY.aggregate([dict(e) for e in entries] + [mce])["models"]["m"]["note"]
    assert note.startswith("mCE over 2 of the 15 corruptions (deselected: its tests were not collected in this run")


@pytest.mark.parametrize("hole", ["crashed", "deselected"])
def test_one_missing_condition_is_named_not_called_different_severities(hole):
    """stop-33 review A5: one condition deselected or crashed made the summary say "no mCE (the corruptions were scored at
    different severities)" beside the mCE test's row showing its mCE."""
    entries = [{"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": "passed",
                "message": None, "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5}}
               for c in BENCHMARK for s in (1, 2, 3, 4, 5)]
    lost = next(i for i, e in enumerate(entries) if e["params"] == {"corruption": "gaussian_noise", "severity": 4})
    if hole == "crashed":
        entries[lost] = {**entries[lost], "outcome": "crashed", "message": "worker gw1 died", "metrics": {}}
    else:
        del entries[lost]
    mce = {"model": "m", "params": {}, "thresholds": {}, "outcome": "failed", "message": None,
           "metrics": {"mce": 129.3, "mce_ci": [120.0, 140.0]}}  # test_mce scored every condition itself
    agg = C.FAMILY.aggregate(entries + [mce])["models"]["m"]
    why = ("severity 4 not measured (its test ended crashed)" if hole == "crashed"
           else "severity 4 deselected (its test was not collected in this run)")
    assert "error" not in agg and agg["missing"] == {"gaussian_noise": why}
    others = [c for c in BENCHMARK if c != "gaussian_noise"]  # the 14 whole ones, by hand: CE = 5 * 50 / sum(AlexNet's)
    assert agg["mce"] == pytest.approx(sum(250 / sum(ALEXNET_ERRORS[c]) for c in others) / 14)
    assert agg["mce_ci"] is None  # test_mce's interval is over all 15: not this value's
    line = C.FAMILY.summary_lines({"aggregates": {"corruption": {"models": {"m": agg}}}})[0]
    assert "different severities" not in line and "no mCE" not in line
    assert line.startswith(f"corruption, m: mCE {agg['mce']:.1f}") and f"{why}: gaussian_noise" in line


def test_no_corruption_whole_names_the_holes():
    entries = [{"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": "passed",
                "message": None, "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5}}
               for c, s in (("fog", 1), ("snow", 3))]
    agg = C.FAMILY.aggregate(entries)["models"]["m"]
    assert agg["error"] == ("no corruption was scored at every severity (snow: severity 1 deselected (its test was not "
                            "collected in this run); fog: severity 3 deselected (its test was not collected in this run))")


def test_severities_skipped_as_not_configured_are_no_hole():
    """Stop-33 review R4: a model configured for severities 1 to 3 has its severity 4 and 5 tests skipped (``not
    configured for``); those are no hole: every corruption is whole at 1 to 3 and the mCE is over all 15 (a hole in
    each would leave no summary). A severity whose test crashed among them still is one."""
    def condition(c, s, outcome="passed"):
        scored = outcome == "passed"
        return {"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": outcome,
                "message": None if scored else f"{c} at severity {s} is not configured for m ([audits.corruption])",
                "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5} if scored else {}}
    entries = [condition(c, s, "passed" if s <= 3 else "skipped") for c in BENCHMARK for s in (1, 2, 3, 4, 5)]
    agg = C.FAMILY.aggregate([dict(e) for e in entries])["models"]["m"]
    assert "error" not in agg and not agg.get("missing"), agg
    assert agg["mce"] == pytest.approx(sum(150 / sum(ALEXNET_ERRORS[c][:3]) for c in BENCHMARK) / 15)  # by hand
    crashed = [{**e, "outcome": "crashed", "message": "worker gw1 died", "metrics": {}}
               if e["params"] == {"corruption": "fog", "severity": 2} else dict(e) for e in entries]
    assert C.FAMILY.aggregate(crashed)["models"]["m"]["missing"] == {"fog": "severity 2 not measured (its test ended crashed)"}


@pytest.mark.parametrize("imagenet", [True, False])
@pytest.mark.parametrize("configured", [["snow"], []])
def test_no_benchmark_corruption_scored_is_not_judged_saying_why(imagenet, configured):
    """Nothing to average (the configured corruptions none available, an ImageNet-C folder without them; or
    ``corruptions = []``, extras only): the mCE (or mean error) gate is not judged, naming why, not an error from
    averaging nothing (a ValueError with its traceback)."""
    from visionaudit.families.assessment import NotJudged
    from visionaudit.families.corruption.judging import (
        MceConditions,
        MceScore,
        assess_mce,
    )
    from visionaudit.families.records import AuditRecord

    clean = np.ones(10, dtype=bool)
    missing = {c: f"not available: {c}/1 is not in the ImageNet-C folder /data/c" for c in configured}
    score = MceScore({"n_images": 10}, 10, False, lambda: MceConditions({}, {}, missing, clean, None))
    bounds = {"min_images": 1, "max_mce": 100.0, "max_mean_error": 0.9, "max_mean_rise": 0.5, "bootstrap_resamples": 50,
              "alpha": 0.05, "corruptions": configured}
    record = AuditRecord("corruption", "m")
    with pytest.raises(NotJudged):
        assess_mce(record, score, bounds, {"model": "m", "seed": 0, "imagenet": imagenet})
    assert record.not_judged.startswith("no ImageNet-C benchmark corruption was scored, so there is no "
                                        + ("mCE" if imagenet else "mean error") + " to judge: ")
    if configured:
        assert "snow: not available: snow/1 is not in the ImageNet-C folder /data/c" in record.not_judged
    else:
        assert "[audits.corruption] corruptions is empty" in record.not_judged
