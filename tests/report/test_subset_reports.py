"""Reports of a subset of the tests (run.selection, stop 41) read by compare, the baseline gate's reasons and merge: a
subset baseline is compared on what it holds and says so; what it did not select is "not in that run", never "recorded
none" (a test that ran and recorded nothing); a subset that compares nothing is no pass; merge keeps each shard's
selection."""

from __future__ import annotations

import numpy as np

from tests.report.test_verdict import SAMPLES, entry
from tests.synthetic_runs import varied_runs
from visionaudit.families.baseline import (
    COMPARED,
    ModelOutcomes,
    outcomes_from_report,
    uncompared,
)
from visionaudit.families.outcomes import encode_bits
from visionaudit.report.assembly import assemble
from visionaudit.report.compare import compare_reports, render
from visionaudit.report.merge import merge_reports
from visionaudit.report.summaries import verdict_line

BITS = np.arange(40) % 3 > 0  # 27 of 40 right: enough to compare


def _clean() -> dict:
    return entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed",
                 outcomes={"set": "labelled", "condition": "clean", **encode_bits(BITS)})


def _transform(name: str, outcome: str = "passed", measured: bool = True) -> dict:
    extra = {"outcomes": {"set": "labelled", "condition": name, **encode_bits(BITS)}} if measured else {}
    return entry(f"audits/test_robustness.py::test_transform[m-{name}]", "robustness", outcome, params={"transform": name},
                 **extra)


def _report(audits: list[dict], selection: dict | None) -> dict:
    return assemble({"seed": 0, "samples": 40, "selection": selection}, {"m": {"loaded": True}}, audits, samples=SAMPLES)


CLEAN_ONLY = {"selected": 1, "deselected": 151, "by": ["-k test_clean_top1"]}
ROTATION_ONLY = {"selected": 1, "deselected": 151, "by": ["-k rotation"]}


def test_a_subset_baseline_is_compared_on_what_it_holds_and_says_it_was_a_subset():
    old, new = _report([_clean()], CLEAN_ONLY), _report([_clean(), _transform("zoom")], None)
    assert old["verdict"] == "pass" and verdict_line(old) == ("verdict: PASS (1 passed); a subset: 1 of 152 tests selected "
                                                              "by -k test_clean_top1")
    comparison = compare_reports(old, new)
    results = comparison["models"]["m"]["results"]
    assert results["clean_top1"].verdict == "unchanged"
    assert results["top1_zoom"].reason == ("the baseline has no per-image outcomes for zoom (its robustness audit was not "
                                           "in that run (a subset, by -k test_clean_top1))")
    assert comparison["verdict"] == "pass" and comparison["baseline_selection"] == CLEAN_ONLY
    assert render(comparison).splitlines()[-2:] == [
        "OLD was a subset: 1 of 152 tests selected by -k test_clean_top1: only the tests it ran are compared",
        "PASS: 0 regression(s)"]


def test_a_test_the_subset_baseline_did_not_select_is_not_in_that_run_not_recorded_none():
    """Issue: a baseline made with -k rotation said "its zoom test recorded none": its entries were looked up by test
    function (test_transform), which had run, for rotation."""
    old, new = _report([_transform("rotation")], ROTATION_ONLY), _report([_clean(), _transform("zoom")], None)
    comparison = compare_reports(old, new)
    zoom = comparison["models"]["m"]["results"]["top1_zoom"]
    assert zoom.reason == ("the baseline has no per-image outcomes for zoom (its zoom test (test_transform) was not in that "
                           "run (a subset, by -k rotation))")
    assert "recorded none" not in render(comparison)
    # The subset held nothing this run measured: nothing compared, so no pass.
    assert comparison["verdict"] == "incomplete" and "m vs m: nothing compared" in comparison["verdict_reason"]
    assert render(comparison).splitlines()[-2].startswith("OLD was a subset: 1 of 152 tests selected by -k rotation")


def _reason(audits: list[dict], selection: dict | None = None) -> str:
    report = {"samples": SAMPLES, "run": {"selection": selection}, "audits": audits}
    missing = uncompared.missing(outcomes_from_report(report, "m"), ModelOutcomes("m"), COMPARED["top1_zoom"])
    assert missing is not None and missing[1] == "baseline"
    return missing[0].removeprefix("the baseline has no per-image outcomes for zoom ")


def test_a_tests_reason_is_that_of_its_own_condition():
    # zoom ran and recorded nothing: said so; rotation's error is not zoom's.
    assert _reason([_transform("rotation", "error", False), _transform("zoom", measured=False)]) == (
        "(its zoom test (test_transform) recorded none)")
    assert _reason([_transform("rotation", "error", False), _transform("zoom", "skipped", False)]) == (
        "(its zoom test (test_transform) ended 1 skipped)")
    # Not in a report that does not say its selection (before schema 8): not in that run, as before.
    assert _reason([_transform("rotation")]) == "(its zoom test (test_transform) was not in that run)"


def test_merge_counts_the_merged_tests_against_shard_1s_selection_and_says_parts_selected_differently():
    whole, parts = varied_runs(3)
    n = len(whole["audits"])
    for part in parts:
        part["run"]["selection"] = {"selected": len(part["audits"]), "deselected": 5, "by": ["-k accuracy"]}
    merged = merge_reports(parts, ["p1", "p2"])
    assert merged["run"]["selection"] == {"selected": n, "deselected": 5, "by": ["-k accuracy"]}
    assert f"a subset: {n} of {n + 5} tests selected by -k accuracy" in verdict_line(merged)
    parts[1]["run"]["selection"] = {"selected": len(parts[1]["audits"]), "deselected": 5, "by": ["-k 'accuracy or x'"]}
    merged = merge_reports(parts, ["p1", "p2"])
    assert merged["run"]["selection"]["by"] == ["-k accuracy", "-k 'accuracy or x'"]
    assert ("the parts were selected differently (p1: -k accuracy; p2: -k 'accuracy or x'); run.selection counts the merged "
            "tests against shard 1's") in merged["run"]["notes"]
    for part in parts:  # parts from before schema 8: the merge does not say either
        del part["run"]["selection"]
    assert merge_reports(parts, ["p1", "p2"])["run"]["selection"] is None
    # Only shard 1 from before schema 8 (review 41, F2): the whole is not known, so neither is whether it is a subset.
    parts[1]["run"]["selection"] = {"selected": len(parts[1]["audits"]), "deselected": 5, "by": ["-k accuracy"]}
    merged = merge_reports(parts, ["p1", "p2"])
    assert merged["run"]["selection"] is None
    assert ("shard 1 (p1) does not record its selection (a report before schema 8): whether the merge is a subset is "
            "not known (p1: not recorded; p2: -k accuracy)") in merged["run"]["notes"]
