"""Corruption comparisons the baseline gate does not judge, saying why and the fix: a condition this run did not
score, images or a measurement of another kind (kernels against a folder, another folder, another protocol; another
feed alone is compared and named), no benchmark severity in common."""

from __future__ import annotations

import json

import pytest
from scipy import stats as sps

from tests.families.baseline.test_corruption_comparisons import (
    DEFAULTS,
    IDS,
    _bits,
    _independent_mce,
    _report,
    _settings,
)
from visionaudit.families.assessment import NotJudged
from visionaudit.families.baseline import (
    COMPARED,
    BaselineComparison,
    assess_comparison,
    baseline_comparisons,
    compare_model,
    outcomes_from_report,
)
from visionaudit.families.baseline import corruptions as corr
from visionaudit.families.records import AuditRecord


def test_a_condition_this_run_did_not_score_is_not_judged_saying_why():
    from visionaudit.data.fingerprint import SampleSet
    from visionaudit.families.baseline import ModelOutcomes

    old = outcomes_from_report(_report({"fog-1": _bits([0]), "fog-3": _bits([1])}), "m")
    live = ModelOutcomes("m", corruption_summary="mce")  # this run's side: no report behind it
    live.add(SampleSet("corruption", "s", tuple(IDS), "f", None, 0), "fog-1", _bits([0]))
    results = compare_model(old, live, _settings(), ["corruption_fog_3"])
    r = results["corruption_fog_3"]
    assert r.verdict == "not_compared" and r.missing_side == "candidate" and r.reason.startswith("this run did not score fog-3")
    assert results["corruption_fog_1"].verdict == "unchanged"
    assert results["mce"].verdict == "unchanged" and "over the 1 benchmark conditions both scored" in results["mce"].test
    assert "fog-3" in results["mce"].test  # left out of the paired mCE, and said


def test_corruptions_scored_on_other_images_are_not_judged_naming_the_fix():
    """Review 26, finding 5: this run scored the corruptions on 30 of the baseline's 40 images (another
    [audits.corruption] images): not a silent skip (setup -> not applicable) but not judged, with the fix."""
    from visionaudit.data.fingerprint import SampleSet
    from visionaudit.families.baseline import ModelOutcomes

    old = outcomes_from_report(_report({"fog-1": _bits([0]), "fog-3": _bits([1])}), "m")
    live = ModelOutcomes("m", corruption_summary="mce")
    fewer = SampleSet("corruption", "s", tuple(IDS[:30]), "f", None, 0)
    live.add(fewer, "fog-1", _bits([0])[:30])
    live.add(fewer, "fog-3", _bits([1])[:30])
    results = compare_model(old, live, _settings())
    for name in ("corruption_fog_1", "corruption_fog_3", "mce"):
        r = results[name]
        assert r.verdict == "not_compared" and r.missing_side == "candidate", (name, r.missing_side, r.reason)
        assert "10 only in the baseline, 0 only here" in r.reason
        assert "set [audits.corruption] images = 40 as in the baseline" in r.reason
        assert "ImageNet-C folder" not in r.reason


def test_a_folder_run_on_other_images_is_told_to_score_the_same_folder():
    """Review 2, finding 7: ImageNet-C folder runs take no [audits.corruption] images; the fix for a folder run that
    scored other images than the folder baseline is the same folder and the same --audit-samples."""
    old = outcomes_from_report(_report({"fog-1": _bits([0]), "fog-3": _bits([1])}, role="imagenet-c"), "m")
    other = _report({"fog-1": _bits([0]), "fog-3": _bits([1])}, role="imagenet-c")
    other["samples"]["imagenet-c"]["ids"] = IDS[:30] + [f"n09999999_{i}.JPEG" for i in range(10)]
    results = compare_model(old, outcomes_from_report(other, "m"), _settings())
    for name in ("corruption_fog_1", "corruption_fog_3", "mce"):
        r = results[name]
        assert r.verdict == "not_compared" and r.missing_side == "candidate", (name, r.missing_side, r.reason)
        assert "10 only in the baseline, 10 only here" in r.reason
        assert "score the same ImageNet-C folder as the baseline (--audit-imagenet-c) with the same --audit-samples" in r.reason
        assert "images = " not in r.reason


def _with_protocol(report, source="kernels", jpeg=True, feed="as stored (224)"):
    for e in report["audits"]:
        if e["audit"] == "corruption":
            e["metrics"].update({"source": source, "subset": None, "comparable": False,
                                 "protocol": {"decode": {"resize": 256, "size": 224}, "jpeg_round_trip": jpeg,
                                              "jpeg_quality": 85 if jpeg else None, "feed": feed}})
    return report


def test_corruptions_measured_another_way_are_not_paired_naming_both_values():
    """Review 26, finding 2b: a baseline scored with the JPEG round trip against a candidate without it (or from
    another source) is not the same measurement: not judged, the reason naming both values; the same protocol pairs."""
    conditions = {"fog-1": _bits([0, 1]), "fog-3": _bits([1, 2, 3])}
    old = outcomes_from_report(_with_protocol(_report(conditions)), "m")
    assert old.corruption_protocol == {"source": "kernels", "decode": {"resize": 256, "size": 224}, "jpeg_round_trip": True,
                                       "jpeg_quality": 85, "feed": "as stored (224)"}
    no_jpeg = outcomes_from_report(_with_protocol(_report(conditions), jpeg=False), "m")
    results = compare_model(old, no_jpeg, _settings())
    for name in ("corruption_fog_1", "corruption_fog_3", "mce"):
        r = results[name]
        assert r.verdict == "not_compared" and r.missing_side == "candidate", (name, r.reason)
        assert "jpeg_round_trip True in the baseline, False here" in r.reason
        assert "jpeg_quality 85 in the baseline, None here" in r.reason
    folder = outcomes_from_report(_with_protocol(_report(conditions), source="ImageNet-C folder /data/imagenet-c"), "m")
    assert "source 'kernels' in the baseline, 'ImageNet-C folder' here" in compare_model(old, folder, _settings())["mce"].reason
    same = compare_model(old, outcomes_from_report(_with_protocol(_report(conditions)), "m"), _settings())
    assert same["mce"].verdict == same["corruption_fog_3"].verdict == "unchanged"
    # another folder path is the same source
    a = outcomes_from_report(_with_protocol(_report(conditions), source="ImageNet-C folder /a"), "m")
    b = outcomes_from_report(_with_protocol(_report(conditions), source="ImageNet-C folder /b"), "m")
    assert compare_model(a, b, _settings())["mce"].verdict == "unchanged"


def test_another_feed_alone_is_compared_and_named():
    """Review 2, finding 3: the feed is the model's own resize/crop; a release that changes its input size is compared
    (as clean top-1 and the transforms are), both feeds named in the summary's description, not refused forever."""
    conditions = {"fog-1": _bits([0, 1]), "fog-3": _bits([1, 2, 3])}
    old = outcomes_from_report(_with_protocol(_report(conditions)), "m")
    new = outcomes_from_report(_with_protocol(_report(conditions), feed="resize 274, crop 260"), "m")
    assert new.corruption_protocol["feed"] == "resize 274, crop 260"  # recorded
    results = compare_model(old, new, _settings())
    for name in ("corruption_fog_1", "corruption_fog_3", "mce"):
        assert results[name].verdict == "unchanged", (name, results[name].reason)
    assert "the model's feed 'as stored (224)' in the baseline, 'resize 274, crop 260' here" in results["mce"].test
    assert "feed" not in results["corruption_fog_1"].reason
    # with another JPEG round trip as well, only that is the reason
    other = outcomes_from_report(_with_protocol(_report(conditions), jpeg=False, feed="resize 274, crop 260"), "m")
    r = compare_model(old, other, _settings())["mce"]
    assert r.missing_side == "candidate" and "jpeg_round_trip" in r.reason and "feed" not in r.reason


def test_the_live_side_protocol_is_the_one_its_entries_record():
    """The live side reads Corrupted.protocol_metrics, what every corruption entry records: the same protocol."""
    from types import SimpleNamespace

    from visionaudit.families.baseline.corruptions import protocol_of
    from visionaudit.families.corruption.judging import Corrupted

    described = {"decode": "ImageNet-C files as stored", "jpeg_round_trip": False, "feed": "as stored (224)", "clean": "x"}
    run = SimpleNamespace(n_images=7, describe=lambda jpeg: described)
    live = protocol_of(Corrupted(run, None, "ImageNet-C folder /x", None, True).protocol_metrics(False))
    assert live == {"source": "ImageNet-C folder", "decode": "ImageNet-C files as stored", "jpeg_round_trip": False,
                    "feed": "as stored (224)"}
    entry_metrics = {"n_images": 7, "source": "ImageNet-C folder /y", "subset": None, "comparable": True, "protocol": described}
    assert protocol_of(entry_metrics) == live
    # the live side holds tuples where a saved report holds lists: still the same protocol
    kernels = {"decode": {"size": 224, "resize": 256}, "jpeg_round_trip": True, "jpeg_quality": 85, "feed": {"size": (224, 224)}}
    live = protocol_of({"source": "kernels", "protocol": kernels})
    saved = protocol_of(json.loads(json.dumps({"source": "kernels", "protocol": kernels})))
    assert live == saved and corr.protocol_difference(saved, live) is None


def test_folder_runs_pair_with_folder_runs_and_never_with_kernel_runs():
    """Issue 26: an ImageNet-C folder run (--audit-imagenet-c, sample set imagenet-c) keeps per-image outcomes; against a
    folder baseline its conditions and summary are compared. Against a kernels run (or the reverse) they are other
    images and another measurement: not compared, saying so, though the ids match (the folder keeps the val names)."""
    old_bits, new_bits = {"fog-1": _bits([0, 1, 2]), "fog-2": _bits(list(range(10)))}, {"fog-1": _bits([0]),
                                                                                        "fog-2": _bits(list(range(4, 20)))}
    folder_old, folder_new = _report(old_bits, role="imagenet-c"), _report(new_bits, role="imagenet-c")
    assert baseline_comparisons(folder_old, ["m"]) == [*COMPARED, "corruption_fog_1", "corruption_fog_2", "mce"]
    results = compare_model(outcomes_from_report(folder_old, "m"), outcomes_from_report(folder_new, "m"), _settings())
    fog2 = results["corruption_fog_2"]
    assert fog2.discordant == (10, 4) and fog2.p_value == pytest.approx(sps.binomtest(4, 14, 0.5).pvalue)
    assert results["mce"].verdict != "not_compared" and results["mce"].delta == pytest.approx(
        _independent_mce({k: v for k, v in zip([("fog", 1), ("fog", 2)], new_bits.values())})
        - _independent_mce({k: v for k, v in zip([("fog", 1), ("fog", 2)], old_bits.values())}))
    kernels_old, kernels_new = _report(old_bits), _report(new_bits)
    for old, new, first, second in ((kernels_old, folder_new, "the corruption kernels", "ImageNet-C folder"),
                                    (folder_old, kernels_new, "ImageNet-C folder", "the corruption kernels")):
        results = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings())
        for name in ("corruption_fog_1", "corruption_fog_2", "mce"):
            r = results[name]
            assert r.verdict == "not_compared" and r.missing_side == "candidate", (name, r.verdict)  # not judged
            assert "other images and another measurement" in r.reason and r.reason.index(first) < r.reason.index(second), r.reason
            assert "run both with --audit-imagenet-c (the same folder) or both without" in r.reason
            assert r.error_consistency is None and not r.lost_examples
            with pytest.raises(NotJudged, match="run both with --audit-imagenet-c"):  # the gate is not a pass (review2, 2)
                assess_comparison(AuditRecord("baseline", "m"), BaselineComparison(r, "m", True), DEFAULTS,
                                  {"model": "m", "comparison": name})


def test_no_benchmark_severity_in_common_is_not_judged_naming_the_fix():
    """Review 2, finding 2: a run that scored none of the baseline's severities could have scored them; its summary
    is the candidate's side (not judged), never skipped while the gate passes on the clean comparisons."""
    old, new = _report({"fog-1": _bits([0, 1])}), _report({"fog-2": _bits([0])})
    r = compare_model(outcomes_from_report(old, "m"), outcomes_from_report(new, "m"), _settings())["mce"]
    assert r.verdict == "not_compared" and r.missing_side == "candidate", (r.missing_side, r.reason)
    assert "at the same severities" in r.reason and "[audits.corruption] corruptions, severities" in r.reason
    with pytest.raises(NotJudged):
        assess_comparison(AuditRecord("baseline", "m"), BaselineComparison(r, "m", True), DEFAULTS,
                          {"model": "m", "comparison": "mce"})
