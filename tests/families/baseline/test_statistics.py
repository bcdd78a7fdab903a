"""The baseline comparison's statistics, verdicts, per-image encodings and pairing rules, against
closed forms and independent references (scipy's binomial test, the two-proportion z formula)."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from tests.conftest import ROOT
from visionaudit.config import load_config
from visionaudit.data.fingerprint import PROTOCOL_VERSION, SampleSet
from visionaudit.data.imagenet16 import categories
from visionaudit.errors import DataError
from visionaudit.families.baseline import (
    COMPARED,
    ModelOutcomes,
    compare_model,
    settings_from,
)
from visionaudit.families.baseline.pairing import differences, model_pairs, read_report
from visionaudit.families.baseline.statistics import (
    Result,
    Tolerance,
    accuracy_change,
    class_of,
    judge,
    shape_bias_change,
    unpaired_change,
    vector_change,
)
from visionaudit.families.corruption.imagenet_c import ALL_CORRUPTIONS
from visionaudit.families.outcomes import decode, encode_bits, encode_decisions
from visionaudit.families.robustness.transforms import TRANSFORMS

DEFAULTS = load_config(None).thresholds("baseline", "m")  # the family's own defaults, no audit.toml
IDS = [f"n{1440764 + k % 10:08d}_{k}.JPEG" for k in range(200)]


def result(name="clean_top1", higher=True, tol=0.005) -> Result:
    return Result(name, name, higher, tolerance=Tolerance(tol))


# -- per-image encodings --------------------------------------------------------------------------------

def test_bits_round_trip_and_size():
    rng = np.random.default_rng(0)
    bits = rng.random(50_000) < 0.8
    encoded = encode_bits(bits)
    assert len(encoded["data"]) == math.ceil(50_000 / 8 / 3) * 4 == 8336  # "about 8 KB per 50,000 images"
    assert np.array_equal(decode(encoded), bits)
    assert np.array_equal(decode(encode_bits([True, False, True])), [True, False, True])  # a partial last byte


def test_decisions_round_trip_with_no_decision():
    names = list(categories())
    decisions = names + [None, names[3]]
    assert list(decode(encode_decisions(decisions))) == decisions


@pytest.mark.parametrize("bad, message", [
    ({"encoding": "bits", "n": 20, "data": base64.b64encode(b"\x01").decode()}, "8 bits for 20 images"),
    ({"encoding": "categories16", "n": 1, "data": base64.b64encode(b"\x40").decode()}, "do not decode"),
    ({"encoding": "bits", "n": 1, "data": "not base64!"}, "not readable"),
    ({"encoding": "rle", "n": 1, "data": ""}, "unknown encoding 'rle'"),
])
def test_corrupt_outcomes_are_named(bad, message):
    with pytest.raises(DataError, match=message):
        decode({"condition": "clean", **bad})


def test_class_of_sample_ids():
    assert class_of("n01440764_10026.JPEG") == "n01440764"
    assert class_of("n01440764/ILSVRC2012_val_00000293.JPEG") == "n01440764"
    assert class_of("airplane/airplane1-bicycle2.png") == "airplane"


# -- the statistics -----------------------------------------------------------------------------------

def test_paired_accuracy_matches_an_exact_binomial_test():
    old = np.ones(200, dtype=bool)
    old[190:] = False  # 10 wrong in the baseline...
    new = old.copy()
    new[190:193] = True  # ...of which 3 now right
    new[:12] = False  # and 12 right -> wrong
    r = accuracy_change(result(), IDS, old, new, resamples=500, seed=0)
    assert r.discordant == (12, 3)
    assert r.delta == pytest.approx((new.sum() - old.sum()) / 200)
    assert r.p_value == pytest.approx(sps.binomtest(3, 15, 0.5).pvalue)  # McNemar's exact test is this binomial test
    assert r.lost_count == 12 and r.lost == IDS[:12]
    assert r.ci[0] < r.delta < r.ci[1]
    # Net losses per class: ids 0..11 lose classes 0..9, 0, 1; ids 190..192 win back classes 0, 1, 2, so class 2
    # is even and the other nine lost one each (the five shown).
    assert len(r.classes_lost) == 5 and all(k == 1 for _, k in r.classes_lost)
    assert "n01440766" not in dict(r.classes_lost)


def test_identical_outcomes_change_nothing():
    bits = np.random.default_rng(1).random(200) < 0.7
    r = judge({"clean_top1": accuracy_change(result(), IDS, bits, bits, 500, 0)}, 0.05)["clean_top1"]
    assert (r.delta, r.p_value, r.ci, r.discordant, r.verdict, r.lost_count) == (0.0, 1.0, (0.0, 0.0), (0, 0), "unchanged", 0)


def _cues(n: int) -> tuple[list[str], list[str], list[str]]:
    """Sample ids of ``n`` cue-conflict images, with their shapes and textures."""
    cats = categories()
    shapes, textures = [cats[k % 16] for k in range(n)], [cats[(k + 1) % 16] for k in range(n)]
    return [f"{s}/{s}{k}-{t}{k}.png" for k, (s, t) in enumerate(zip(shapes, textures))], shapes, textures


def test_shape_bias_bootstrap_closed_forms():
    ids, shapes, textures = _cues(160)
    ids, shapes, textures = ids + ["cat/cat1-cat2.png"], shapes + ["cat"], textures + ["cat"]  # cues that agree: dropped
    same = shape_bias_change(result("shape_bias", tol=0.02), ids, shapes, shapes, 400, 0)
    assert (same.baseline, same.candidate, same.delta, same.p_value, same.ci, same.n) == (1.0, 1.0, 0.0, 1.0, (0.0, 0.0), 160)
    flipped = shape_bias_change(result("shape_bias", tol=0.02), ids, textures, shapes, 400, 0)
    assert (flipped.baseline, flipped.candidate, flipped.delta, flipped.ci) == (0.0, 1.0, 1.0, (1.0, 1.0))
    # 160 changed images: 400 random swap patterns, none as extreme as the observed one (only swapping all or none
    # of the 160 is), so the Monte Carlo floor 1 / (400 + 1)
    assert flipped.p_value == pytest.approx(1 / 401) and flipped.p_resamples == 400


def test_shape_bias_bootstrap_interval_matches_the_normal_approximation():
    """Half the images flip from texture to shape: the interval of the change is close to the delta
    method's, computed here by hand."""
    ids, shapes, textures = _cues(400)
    rng = np.random.default_rng(3)
    old = [s if rng.random() < 0.3 else t for s, t in zip(shapes, textures)]
    new = [s if (o == s or rng.random() < 0.2) else o for o, s in zip(old, shapes)]
    r = shape_bias_change(result("shape_bias", tol=0.02), ids, old, new, 4000, 0)
    d = np.array([(n == s) - (o == s) for o, n, s in zip(old, new, shapes)], dtype=float)  # every image is a hit of one cue
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert r.delta == pytest.approx(d.mean())
    assert r.ci[0] == pytest.approx(d.mean() - half, abs=0.01) and r.ci[1] == pytest.approx(d.mean() + half, abs=0.01)


def test_unpaired_two_proportion_z_test():
    r = unpaired_change(result(), (80, 100), (70, 100))
    pooled = 150 / 200
    z = 0.10 / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert r.p_value == pytest.approx(2 * (1 - sps.norm.cdf(z)))
    assert r.p_value == pytest.approx(0.1025, abs=1e-4) and "unpaired" in r.test


@pytest.mark.parametrize("delta, p, tol, verdict", [
    (-0.02, 0.001, 0.005, "regression"),  # worse, beyond tolerance, significant
    (-0.02, 0.5, 0.005, "warning"),  # beyond tolerance, not significant
    (-0.003, 0.001, 0.005, "warning"),  # significant, within tolerance
    (-0.003, 0.5, 0.005, "unchanged"),
    (0.02, 0.001, 0.005, "improvement"),
    (0.003, 0.5, 0.005, "unchanged"),
])
def test_verdicts(delta, p, tol, verdict):
    r = result(tol=tol)
    r.baseline, r.candidate, r.delta, r.p_value = 0.8, 0.8 + delta, delta, p
    assert judge({"clean_top1": r}, 0.05)["clean_top1"].verdict == verdict


def test_lower_is_better_and_relative_tolerance():
    r = Result("m", "m", False, tolerance=Tolerance(0.01, relative=0.5))
    r.baseline, r.candidate, r.delta, r.p_value = 0.1, 0.14, 0.04, 1e-6  # worse by 0.04: beyond 0.01 but not 0.5 x 0.1
    assert judge({"m": r}, 0.05)["m"].verdict == "warning"
    r.candidate, r.delta, r.p_value = 0.2, 0.1, 1e-6
    assert judge({"m": r}, 0.05)["m"].verdict == "regression"


def test_holm_over_one_models_comparisons():
    rs = {}
    for k, p in enumerate([0.01, 0.02, 0.03]):
        r = result(f"c{k}")
        r.baseline, r.candidate, r.delta, r.p_value = 0.9, 0.8, -0.1, p
        rs[f"c{k}"] = r
    judge(rs, 0.05)
    assert [rs[k].p_value_holm for k in ("c0", "c1", "c2")] == pytest.approx([0.03, 0.04, 0.04])  # 3p, 2p, max(., p)
    assert all(r.verdict == "regression" for r in rs.values())


def test_channel_shares_by_tolerance_alone():
    moved = vector_change(Result("channel_shares", "shares", None, tolerance=Tolerance(0.005)), [0.3, 0.4, 0.3],
                          [0.29, 0.42, 0.29])
    still = vector_change(Result("channel_shares", "shares", None, tolerance=Tolerance(0.005)), [0.3, 0.4, 0.3],
                          [0.301, 0.398, 0.301])
    judge({"a": moved, "b": still}, 0.05)
    assert moved.verdict == "regression" and still.verdict == "unchanged" and moved.p_value_holm is None


def test_missing_conditions_are_not_compared_and_name_the_side():
    old, new = ModelOutcomes("a"), ModelOutcomes("b")
    ss = SampleSet("labelled", "s", tuple(IDS), "f", None, 0)
    old.add(ss, "clean", np.ones(200, bool))
    new.add(ss, "clean", np.ones(200, bool))
    new.add(ss, "rotation", np.ones(200, bool))
    results = compare_model(old, new, settings_from(DEFAULTS))
    assert set(results) == set(COMPARED) and results["clean_top1"].verdict == "unchanged"
    rotation = results["top1_rotation"]
    assert rotation.verdict == "not_compared" and rotation.missing_side == "baseline"
    assert rotation.reason.startswith("the baseline has no per-image outcomes for rotation")
    old.add(ss, "zoom", np.ones(200, bool))
    assert compare_model(old, new, settings_from(DEFAULTS))["top1_zoom"].missing_side == "candidate"


def test_stimuli_scored_another_way_are_not_compared_but_the_rest_is():
    old, new = ModelOutcomes("a"), ModelOutcomes("b")
    labelled = SampleSet("labelled", "s", tuple(IDS), "f", None, 0)
    edges = SampleSet("edges", "e", tuple(f"{c}/{c}1.png" for c in categories()), "g", None, 0)
    for side, mode in ((old, "native"), (new, "model_input")):
        side.add(labelled, "clean", np.ones(200, bool))
        side.add(edges, "edges", np.array(list(categories()), dtype=object))
        side.stimulus_protocol = {"stimulus_geometry": mode, "aggregation": "mean"}
    results = compare_model(old, new, settings_from(DEFAULTS))
    assert results["clean_top1"].verdict == "unchanged"
    assert results["edges_accuracy"].missing_side == "setup" and "scored another way" in results["edges_accuracy"].reason


def test_not_a_number_is_never_a_verdict():
    empty = unpaired_change(result(), (0, 0), (5, 10))  # no images on the baseline's side
    shares = vector_change(Result("channel_shares", "shares", None, tolerance=Tolerance(0.005)), [0.3, None, 0.3],
                           [0.3, 0.4, 0.3])
    judge({"a": empty, "b": shares}, 0.05)
    assert (empty.verdict, shares.verdict) == ("not_compared", "not_compared")
    assert "not a finite number" in empty.reason and Tolerance(0.01).exceeded_by(math.nan, 0.5) is False


def test_a_partial_tolerance_table_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text('[audits.baseline]\ntolerance = { top1_rotation = 0.02 }\nbootstrap_resamples = 100\n'
                    '[models.efficientnet_lite0.baseline]\ntolerance = { shape_bias = 0.05 }\n')
    config = load_config(path)
    s = settings_from(config.thresholds("baseline", "other"))
    assert s.tolerances["top1_rotation"].absolute == 0.02 and s.tolerances["top1_zoom"].absolute == 0.01
    assert s.tolerances["clean_top1"].absolute == 0.005 and s.tolerances["shape_bias"].absolute == 0.02
    assert s.resamples == 100 and s.alpha == 0.05
    m = settings_from(config.thresholds("baseline", "efficientnet_lite0"))
    assert m.tolerances["shape_bias"].absolute == 0.05 and m.tolerances["top1_rotation"].absolute == 0.02


def test_improvement_on_a_lower_is_better_metric():
    r = Result("m", "m", False, tolerance=Tolerance(0.01))
    r.baseline, r.candidate, r.delta, r.p_value = 0.3, 0.2, -0.1, 1e-4
    assert judge({"m": r}, 0.05)["m"].verdict == "improvement"


def test_without_a_config_the_family_defaults_apply():
    """What `visionaudit compare` uses without --config: the baseline family's defaults (the values the
    README documents), the same as the shipped audit.toml gives, which no longer repeats them."""
    s = settings_from(DEFAULTS)
    assert {n: t.absolute for n, t in s.tolerances.items()} == {
        "clean_top1": 0.005, "balanced_accuracy": 0.005, "per_class_accuracy": 0.05, **{f"top1_{t}": 0.01 for t in TRANSFORMS},
        "shape_bias": 0.02, "edges_accuracy": 0.03, "silhouettes_accuracy": 0.03, "channel_shares": 0.005,
        **{f"corruption_{c}_{k}": 0.02 for c in ALL_CORRUPTIONS for k in range(1, 6)}, "mce": 1.0, "mean_error": 0.01}
    assert all(t.relative is None for t in s.tolerances.values()) and (s.alpha, s.resamples) == (0.05, 2000)
    assert s.min_class_images == 10 and (s.min_kappa, s.kappa_warning) == (-1.0, 0.5)
    assert dict(load_config(ROOT / "audit.toml").thresholds("baseline", "efficientnet_lite0")) == dict(DEFAULTS)


# -- pairing ------------------------------------------------------------------------------------------

def _report(seed=0, samples=None, ids=IDS, fingerprint="f1", protocol=PROTOCOL_VERSION):
    return {"schema_version": 3, "run": {"seed": seed, "samples": samples}, "audits": [],
            "models": {"m": {"loaded": True}, "c": {"loaded": True}},
            "samples": {"labelled": {"name": "s", "n": len(ids), "subset": samples, "seed": seed, "protocol": protocol,
                                     "fingerprint": fingerprint, "ids": list(ids)}}}


def test_pairable_reports_have_no_differences():
    run = {"labelled": SampleSet("labelled", "s", tuple(IDS), "f1", None, 0)}
    assert differences(_report(), run, 0, None) == []


def test_every_difference_is_named():
    run = {"labelled": SampleSet("labelled", "s", tuple(IDS[:-1] + ["extra.JPEG"]), "f2", None, 0)}
    problems = differences(_report(), run, 0, None)
    assert problems == ["labelled images differ (data fingerprint f1 vs f2): 1 only in the baseline, 1 only in this run "
                        f"(e.g. {IDS[-1]})"]
    assert "the same 200 sample ids, but files with other contents" in differences(
        _report(), {"labelled": SampleSet("labelled", "s", tuple(IDS), "f2", None, 0)}, 0, None)[0]
    assert differences(_report(seed=1), run, 0, None)[0].startswith("seed: the baseline ran with seed 1, this run with 0")
    assert differences(_report(samples=200), run, 0, None)[0] == (
        "subset: the baseline scored a subset of 200 images per set (--audit-samples 200), this run the whole sets")
    assert "protocol 1" in differences(_report(protocol=1), run, 0, None)[0]


def test_model_pairs():
    report = _report()
    report["audits"] = [{"model": "c", "control": "control (random init)"}]
    assert model_pairs(["m"], report) == {"m": "m"}
    assert model_pairs(["new"], report, baseline_as="m") == {"new": "m"}
    assert model_pairs(["new"], report, pairs={"new": "m"}) == {"new": "m"}
    with pytest.raises(DataError,
                       match=r"new: the baseline has no model new\. The baseline holds m: pair with --audit-baseline-as"):
        model_pairs(["new"], report)
    with pytest.raises(DataError, match="--audit-baseline-as pairs one model, and this run has 2"):
        model_pairs(["a", "b"], report, baseline_as="m")


def test_unreadable_baselines_say_why(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_report(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="not readable JSON"):
        read_report(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"schema_version": 2, "audits": []}))
    with pytest.raises(DataError, match="schema 2, which holds no per-image outcomes"):
        read_report(tmp_path / "old.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match="not a visionaudit report"):
        read_report(tmp_path / "other.json")


def test_a_journal_rebuilds_a_report_that_serves_as_a_baseline(tmp_path):
    """A killed run's journal keeps the image sets and outcomes: its rebuilt report pairs like any other."""
    from visionaudit.families.baseline import outcomes_from_report
    from visionaudit.report.assembly import blank_entry
    from visionaudit.report.journal import JournalWriter, rebuild

    ss = SampleSet("labelled", "s", tuple(IDS), "f1", None, 0)
    bits = np.arange(200) % 3 > 0
    entry = {**blank_entry("audits/test_accuracy.py::test_clean_top1[m]", {"audit": "accuracy", "model": "m"}, "passed"),
             "outcomes": {"set": "labelled", "condition": "clean", **encode_bits(bits)}}
    journal = JournalWriter(tmp_path / "r.json.journal.jsonl")
    journal.write("run", run={"seed": 0, "samples": None}, models=["m"])
    journal.write("collected", nodeids=[entry["nodeid"]])
    journal.write("samples", samples={"labelled": ss.to_dict()})
    journal.write("finished", entry=entry)
    journal.close()
    report = rebuild(tmp_path / "r.json.journal.jsonl")
    assert report["samples"]["labelled"]["ids"] == IDS
    clean = outcomes_from_report(report, "m").outcomes["clean"]
    assert clean.ids == tuple(IDS) and np.array_equal(clean.values, bits)


def test_a_results_tolerance_in_the_report_is_its_two_keys():
    """The report's tolerance is {"absolute", "relative"} by name: a field added to Tolerance (here a subclass's) does
    not enter every report's JSON without a schema bump."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class MoreTolerance(Tolerance):
        note: str = "internal"

    tolerance = Result("a", "accuracy", True, tolerance=MoreTolerance(0.01, 0.5)).to_dict()["tolerance"]
    assert tolerance == {"absolute": 0.01, "relative": 0.5}
    assert Result("a", "accuracy", True).to_dict()["tolerance"] is None
