"""The verdict rule, core-level: a pass is never on nothing (issue 23, items 1 and 2).

A model whose tests all ended skipped or not judged, a baseline gate that compared nothing, a baseline
report that is itself not a pass, and `visionaudit compare` on the same cases; a not_judged gate keeps
what it measured, and its outcomes serve as a baseline. (End to end, with the real audits:
tests/families/baseline/test_baseline_gate.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.accuracy import assess_clean_top1
from visionaudit.families.assessment import NotJudged, PerImage
from visionaudit.families.baseline import COMPARED, outcomes_from_report
from visionaudit.families.outcomes import encode_bits
from visionaudit.families.records import AuditRecord
from visionaudit.report.assembly import (
    REASON_CHARS,
    assemble,
    blank_entry,
    short_reason,
    verdict_reasons,
)
from visionaudit.report.compare import compare_reports, render
from visionaudit.report.summaries import (
    markdown_summary,
    markdown_text,
    summary_rows,
    terminal_lines,
    verdict_line,
)
from visionaudit.report.summaries import (
    tests_cell as column_of,  # pytest would collect a test_-like name
)

IDS = [f"n{1440764 + k % 10:08d}_{k}.JPEG" for k in range(40)]
SAMPLES = {"labelled": {"name": "s", "n": len(IDS), "subset": 40, "seed": 0, "protocol": 2, "fingerprint": "f1", "ids": IDS}}


def entry(nodeid: str, audit: str, outcome: str, model: str = "m", message: str | None = None, **extra) -> dict:
    return {**blank_entry(nodeid, {"audit": audit, "model": model}, outcome, message), **extra}


def baseline_entries(outcome: str = "skipped") -> list[dict]:
    message = "not compared with m: the baseline has no per-image outcomes for clean"
    return [entry(f"audits/test_baseline.py::test_against_baseline[m-{name}]", "baseline", outcome, message=message)
            for name in COMPARED]


def report(audits: list[dict], run: dict | None = None) -> dict:
    return assemble({"seed": 0, "samples": 40, **(run or {})}, {"m": {"loaded": True}}, audits, samples=SAMPLES)


# -- the run's verdict ------------------------------------------------------------------------------------

def test_a_model_that_judged_nothing_does_not_pass():
    skipped = [entry("audits/test_deployment.py::test_fp16[m]", "deployment", "skipped", message="no GPU here"),
               entry("audits/test_channel_bias.py::test_weight_shares[m]", "channel_bias", "skipped", message="1 channel")]
    data = report(skipped)
    assert data["verdict"] == "incomplete"
    assert data["verdict_reason"] == "m: none of its 2 test(s) judged anything (2 skipped; first: 1 channel)"
    assert "\n" not in data["verdict_reason"]
    assert verdict_line(data) == f"verdict: INCOMPLETE (2 skipped); not a pass: {data['verdict_reason']}"
    # One judged gate is enough: a family that does not apply here (deployment without a GPU) is not a hole.
    judged = report([*skipped, entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed")])
    assert judged["verdict"] == "pass" and judged["verdict_reason"] is None


def test_the_page_says_why_it_is_not_a_pass():
    pytest.importorskip("jinja2")  # the html extra
    from visionaudit.html.page import render

    data = report([entry("audits/test_deployment.py::test_fp16[m]", "deployment", "skipped", message="no GPU here")])
    assert f'<p id="verdict-reason"><strong>Not a pass:</strong> {data["verdict_reason"]}</p>' in render(data)


def test_a_baseline_gate_that_compared_nothing_does_not_pass():
    clean = entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed")
    data = report([clean, *baseline_entries()])
    assert data["verdict"] == "incomplete"
    assert data["verdict_reason"].startswith(f"m: its baseline gate judged none of its {len(COMPARED)} test(s) "
                                             f"({len(COMPARED)} skipped; first: not compared with m: the baseline has no")
    # One comparison made is a comparison: the rest may be absent from the baseline.
    some = baseline_entries()
    some[0] = {**some[0], "outcome": "passed", "message": None}
    assert report([clean, *some])["verdict"] == "pass"
    # A control's tests (an audit's own model, not a release) are not a model of the run.
    control = entry("audits/test_channel_bias.py::test_random_init_control[c]", "channel_bias", "skipped", model="c",
                    control="control (random init)")
    assert report([clean, control])["verdict"] == "pass"


@pytest.mark.parametrize("baseline_verdict", ["incomplete", "fail"])
def test_a_baseline_that_is_not_a_pass_makes_no_pass_unless_accepted(baseline_verdict):
    audits = [entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed"), *baseline_entries("passed")]
    refused = report(audits, {"baseline": {"path": "old.json", "verdict": baseline_verdict, "accepted": False}})
    assert refused["verdict"] == "incomplete"
    assert refused["verdict_reason"] == (f"the baseline old.json has verdict {baseline_verdict}, not pass: comparisons with it "
                                         "cannot make a pass (--audit-accept-incomplete-baseline accepts it, and the "
                                         "report says so)")
    accepted = report(audits, {"baseline": {"path": "old.json", "verdict": baseline_verdict, "accepted": True}})
    assert accepted["verdict"] == "pass" and accepted["run"]["baseline"]["accepted"] is True
    assert report(audits, {"baseline": {"path": "old.json", "verdict": "pass", "accepted": False}})["verdict"] == "pass"


def test_a_baseline_none_of_whose_tests_was_selected_is_not_a_pass():
    """Stop-33 review (D1): --audit-baseline given, -k/-m left no baseline test: nothing was compared, and the report read
    as if it had been (run.baseline recorded, verdict pass). As compare says "no model was compared", not a pass."""
    clean = entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed")
    data = report([clean], {"baseline": {"path": "old.json", "verdict": "pass", "accepted": False}})
    assert data["verdict"] == "incomplete"
    assert data["verdict_reason"] == ("--audit-baseline old.json was given, but no baseline test was selected (-k/-m left none): "
                                      "nothing was compared with it; select them (-m baseline) or leave --audit-baseline out")
    # One baseline test selected is a comparison (its own outcome decides); without --audit-baseline nothing is asked.
    assert report([clean, *baseline_entries("passed")[:1]],
                  {"baseline": {"path": "old.json", "verdict": "pass"}})["verdict"] == "pass"
    assert report([clean])["verdict"] == "pass"


CONTROL = "control (random init)"


def _control(name: str, outcome: str, message: str | None = None) -> dict:
    return entry(f"audits/test_channel_bias.py::test_random_init_control[{name}]", "channel_bias", outcome, model=name,
                 message=message, control=CONTROL)


def test_verdict_reasons_keeps_the_controls_out_of_the_models_and_in_their_own_line():
    """Stop 34: verdict_reasons' filter of the random-init controls. A control is an audit's own yardstick, not a
    release: its tests never make a model of the run (a control all skipped is no "judged nothing"), and its gates not
    judged are counted on their own line, without a release's. Removing either filter, or inverting it, changes these."""
    judged = entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed")
    # Every control skipped beside a release that judged: no reason (a control is not a model that judged nothing).
    assert verdict_reasons([judged, _control("c1", "skipped", "1 channel"), _control("c2", "skipped", "1 channel")]) == []
    # A release's gate not judged and a control's: each on its own line, counted apart.
    few = entry("audits/test_robustness.py::test_drop[m-flip]", "robustness", "not_judged", message=FEW)
    control = _control("c1", "not_judged", "not judged: c1: 3 images; this gate needs at least 5")
    assert verdict_reasons([judged, few, control]) == [
        "m: its robustness gate not judged (1 test(s)): 41 labelled images; this gate needs at least 50 "
        "(min_images in audit.toml)",
        "1 test(s) of random-init controls not judged: 3 images; this gate needs at least 5"]
    # A release alone not judged: no controls line; a control alone not judged: no release line.
    assert not any("controls" in r for r in verdict_reasons([judged, few, _control("c1", "passed")]))
    assert verdict_reasons([judged,
                            control]) == ["1 test(s) of random-init controls not judged: 3 images; this gate needs at least 5"]


def test_a_configured_model_no_selected_test_audited_is_named_in_the_notes():
    """Stop-33 review (D2): -k/-m left a configured model no test (it never loaded); the run's notes say so. Since stop 34
    (fixmerge) it is not a pass either: nothing judged that model, and compare says the same of the same report
    (tests/report/test_unselected_models.py)."""
    clean = entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed")
    models = {"m": {"loaded": True}, "idle": {"loaded": False, "error": None}, "broken": {"loaded": False, "error": "E"}}
    data = assemble({"seed": 0, "samples": 40, "notes": ["earlier"]}, models, [clean], samples=SAMPLES)
    note = ("no test of idle was selected (-k/-m, test paths): nothing judged it, so the run is not a pass; select its "
            "tests, or give only the models to audit with --model (it replaces [run] models)")
    assert data["run"]["notes"] == ["earlier", note]  # a model that failed to load is its tests' errors, not this
    # The model that did not load is said first, as what it is (hunt 35, F5), then the one left no test.
    assert data["verdict"] == "incomplete"
    assert data["verdict_reason"].startswith("broken did not load: E; idle: no test of it was selected"), data["verdict_reason"]
    again = assemble(data["run"], models, [clean], samples=SAMPLES)  # a merge or rebuild carrying it: once
    assert again["run"]["notes"] == ["earlier", note]
    assert report([clean])["run"].get("notes") is None  # every model audited: nothing said


# -- not_judged keeps what it measured --------------------------------------------------------------------

def test_a_gate_with_too_few_images_keeps_its_numbers_and_outcomes():
    correct = np.arange(32) % 4 != 0  # 24 of 32 right
    top5 = np.arange(32) % 8 != 0  # 28 of 32
    ids = tuple(f"n{1440764 + k:08d}_{k}.JPEG" for k in range(32))
    sample_set = SampleSet("labelled", "s", ids, "f", 32, 0)
    record = AuditRecord("accuracy", "m")
    context = {"model": "m", "set_name": "s", "preprocessing": "-"}
    with pytest.raises(NotJudged, match="32 labelled images; this gate needs at least 50"):
        assess_clean_top1(record, PerImage(sample_set, {"correct": correct, "top5": top5}), {"min_top1": 0.7, "min_images": 50},
                          context)
    assert record.not_judged and record.metrics["n_images"] == 32
    assert record.metrics["clean_top1"] == 24 / 32 and record.metrics["top5"] == 28 / 32
    assert record.thresholds == {"min_top1": 0.7}  # the bound it was spared is shown (nothing judged against it)
    assert record.outcomes["condition"] == "clean" and record.outcomes["n"] == 32


def not_judged_report(verdict: str = "incomplete") -> dict:
    bits = np.arange(40) % 3 > 0
    accuracy = entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "not_judged",
                     outcomes={"set": "labelled", "condition": "clean", **encode_bits(bits)})
    return {"schema_version": 3, "verdict": verdict, "run": {"seed": 0, "samples": 40}, "models": {"m": {"loaded": True}},
            "samples": SAMPLES, "audits": [accuracy]}


def test_a_not_judged_gate_serves_as_a_baseline():
    old = outcomes_from_report(not_judged_report(), "m")
    assert list(old.outcomes) == ["clean"] and old.outcomes["clean"].values.tolist() == [k % 3 > 0 for k in range(40)]


# -- visionaudit compare ----------------------------------------------------------------------------------

def test_compare_does_not_pass_on_nothing_nor_on_a_baseline_that_is_not_a_pass():
    incomplete = not_judged_report()
    refused = compare_reports(incomplete, incomplete)
    assert refused["models"]["m"]["results"]["clean_top1"].verdict == "unchanged"  # compared, as a run of its size
    assert refused["verdict"] == "incomplete" and "the old report has verdict incomplete, not pass" in refused["verdict_reason"]
    assert render(refused).splitlines()[-1].startswith("INCOMPLETE: 0 regression(s); not a pass: the old report has verdict")
    accepted = compare_reports(incomplete, incomplete, accept_incomplete=True)
    assert accepted["verdict"] == "pass" and accepted["accepted"] is True
    assert render(accepted).splitlines()[-3:] == [
        "the old report has verdict incomplete, not pass; accepted (--accept-incomplete-baseline)",
        "NEW's own verdict: incomplete (its own gates; this comparison does not judge them)", "PASS: 0 regression(s)"]

    nothing = {**not_judged_report("pass"), "audits": []}  # a passing report without outcomes: nothing to compare
    empty = compare_reports(nothing, not_judged_report("pass"))
    assert empty["verdict"] == "incomplete"
    assert empty["verdict_reason"].startswith(f"m vs m: nothing compared ({len(COMPARED)} not compared; first: the baseline has "
                                              "no per-image outcomes for clean (its accuracy audit was not in that run))")


# -- why a family was not judged or skipped, on the terminal and in the step summary (stop-33 review, defect 6) ----

TEAM = "teams:net?classes=/work/team/classes.txt"
FEW = "not judged: 41 labelled images; this gate needs at least 50 (min_images in audit.toml)"
SHAPE = (f"{TEAM}: no shape bias: its 5 classes are not ImageNet-1k's and do not include the 16 shape-bias categories by "
         "name (missing: airplane, bear, bicycle, boat, car, chair, clock, elephant, and 8 more); map its classes onto them with "
         'category_map = {"class name" = "category", ...} under [audits.shape_bias] (or [models."SPEC".shape_bias]) '
        'in audit.toml')


def first_small_run() -> dict:
    """A team's first run on 41 images, as stop-33 review saw it (messages as the real audits word them): accuracy
    and robustness not judged, shape bias skipped, channel bias judged, deployment judged with one form skipped."""
    audits = [entry(f"audits/test_accuracy.py::test_clean_top1[{TEAM}]", "accuracy", "not_judged", TEAM, FEW),
              *[entry(f"audits/test_robustness.py::test_drop[{TEAM}-{t}]", "robustness", "not_judged", TEAM,
                      FEW.replace("41 labelled", "41")) for t in ("flip", "zoom")],
              entry(f"audits/test_channel_bias.py::test_weight_shares[{TEAM}]", "channel_bias", "passed", TEAM),
              *[entry(f"audits/test_shape_bias.py::test_shape_bias[{TEAM}-{k}]", "shape_bias", "skipped", TEAM, SHAPE)
                for k in ("a", "b", "c")],
              *[entry(f"audits/test_deployment.py::test_deployment[{TEAM}-{k}]", "deployment", "passed", TEAM) for k in "ab"],
              entry(f"audits/test_deployment.py::test_deployment[{TEAM}-fp16]", "deployment", "skipped", TEAM,
                    f"{TEAM} fp16_cuda: fp16 inference is audited on CUDA; this run's device is cpu")]
    return assemble({"seed": 0, "samples": 41}, {TEAM: {"loaded": True}}, audits)


def test_a_first_small_run_says_why_each_family_was_not_judged_or_skipped():
    data = first_small_run()
    assert data["verdict"] == "incomplete"
    # The verdict's reason: the gates not judged, how many tests, the first reason, and that there is another.
    reason = (f"{TEAM}: its accuracy, robustness gates not judged (3 test(s)): 41 labelled images; this gate needs at least "
              "50 (min_images in audit.toml); +1 other reason")
    assert data["verdict_reason"] == reason
    lines = terminal_lines(data)
    assert lines[-1] == f"verdict: INCOMPLETE (3 not judged, 3 passed, 4 skipped); not a pass: {reason}"
    # A line per NOT JUDGED / SKIP row under the table: the first reason once (3 tests give it), the model's name
    # and "not judged: " not repeated, the long list of missing categories left out, the fix kept.
    why = [line for line in lines if line.startswith(("accuracy, ", "robustness, ", "shape_bias, ", "deployment, "))]
    assert why == [
        f"accuracy, {TEAM}: not judged (1 test): 41 labelled images; this gate needs at least 50 (min_images in audit.toml)",
        f"robustness, {TEAM}: not judged (2 tests): 41 images; this gate needs at least 50 (min_images in audit.toml)",
        (f"shape_bias, {TEAM}: skipped (3 tests): no shape bias: its 5 classes are not ImageNet-1k's and do not include the "
         "16 shape-bias categories by name; map its classes onto them with category_map = {\"class name\" = \"category\", "
         "...} under [audits.shape_bias] (or [models.\"SPEC\".shape_bias]) in audit.toml")]
    assert lines.index(why[0]) == len(summary_rows(data["audits"])) + 1  # right under the table
    # The tests column: what happened to each test, not "0/3 passed" (which reads like three failures).
    cells = {(r["audit"], r["verdict"]): r["tests"] for r in summary_rows(data["audits"])}
    assert cells == {("accuracy", "NOT JUDGED"): "1 not judged", ("robustness", "NOT JUDGED"): "2 not judged",
                     ("shape_bias", "SKIP"): "3 skipped", ("deployment", "PASS"): "2/3 passed, 1 skipped",
                     ("channel_bias", "PASS"): "1/1 passed"}
    # The step summary: the same lines, as Markdown list items, and the reason in the bold verdict line.
    md = markdown_summary(data)
    assert f"- {markdown_text(why[0])}\n- {markdown_text(why[1])}\n- {markdown_text(why[2])}\n" in md
    assert 'category_map = \\{"class name" = "category", ...\\} under \\[audits.shape_bias\\]' in md  # shown as it is
    assert "| **SKIP** | 3 skipped |" in md and "0/3 passed" not in md
    assert f"**verdict: INCOMPLETE (3 not judged, 3 passed, 4 skipped); not a pass: {markdown_text(reason)}**" in md


def test_on_a_failed_run_the_failures_are_the_reason_not_the_gates_not_judged():
    """Review Q1: a failed run's one-line reason named only the gates not judged beside the failure, and the page
    showed that as why it is "not a pass". The failures are the reason; the gates not judged stay in the report."""
    data = first_small_run()
    failed = entry(f"audits/test_deployment.py::test_deployment[{TEAM}-b]", "deployment", "failed", TEAM,
                   "max_abs_diff 0.5 > 0.001")
    audits = [failed if a["nodeid"] == failed["nodeid"] else a for a in data["audits"]]
    failing = assemble({"seed": 0, "samples": 41}, {TEAM: {"loaded": True}}, audits)
    assert failing["verdict"] == "fail" and failing["verdict_reason"] is None
    assert [a["outcome"] for a in failing["audits"]].count("not_judged") == 3


def test_reasons_are_counted_once_and_the_others_said():
    """Several reasons in one row: the first with the number of tests giving it, and how many others there are;
    the same reason from several controls (each naming its own model) counts once."""
    mixed = [entry(f"audits/test_deployment.py::test_deployment[m-{k}]", "deployment", "skipped", message=f"m {k}: {why}")
             for k, why in [("fp16", "no GPU"), ("trt", "no GPU"), ("onnx", "onnxruntime missing"), ("jit", "a dict output")]]
    [row] = summary_rows(report(mixed)["audits"])
    # "fp16: no GPU" and "trt: no GPU" differ (each names its form): 4 reasons, the first given by 1 of 4 tests.
    assert row["reason"] == "skipped (1 of 4 tests): fp16: no GPU; 3 other reasons in the report"
    same = [entry(f"audits/test_deployment.py::test_deployment[m-{k}]", "deployment", "skipped",
                  message="m: no GPU") for k in "ab"]
    controls = [entry(f"audits/test_channel_bias.py::test_random_init_control[{c}]", "channel_bias", "not_judged", model=c,
                      message=f"not judged: {c}: 3 images; this gate needs at least 5", control="control (random init)")
                for c in ("c1", "c2")]
    data = report([*same, *controls, entry("audits/test_accuracy.py::test_clean_top1[m]", "accuracy", "passed")])
    rows = {r["audit"]: r for r in summary_rows(data["audits"])}
    assert rows["deployment"]["reason"] == "skipped (2 tests): no GPU"
    assert rows["channel_bias"]["model"] == "2 control (random init)"
    assert rows["channel_bias"]["reason"] == "not judged (2 tests): 3 images; this gate needs at least 5"
    assert data["verdict_reason"] == "2 test(s) of random-init controls not judged: 3 images; this gate needs at least 5"


def test_a_long_reason_is_shortened_at_a_word():
    text = short_reason("not judged: " + "word " * 100 + "(" + "x" * 50 + ")", model="m")
    assert text.startswith("word word") and text.endswith(" ...") and len(text) <= REASON_CHARS + 4
    assert short_reason("m: fine (kept)", model="m") == "fine (kept)" and short_reason(None) == ""


def test_robustness_says_which_transforms_drop_and_nothing_for_a_model_not_judged():
    """Holm over each model's transforms (0.001 x 2 = 0.002 < 0.05: flip; 0.5 is not), "no transform has a
    significant drop" when none does, and no line at all for a model whose robustness was not judged."""
    def drop(model: str, transform: str, p: float, outcome: str = "passed") -> dict:
        return entry(f"audits/test_robustness.py::test_drop[{model}-{transform}]", "robustness", outcome, model=model,
                     message=FEW if outcome == "not_judged" else None, params={"transform": transform},
                     metrics={"drop": 0.01, "p_value": p}, thresholds={"alpha": 0.05})
    data = report([drop("m", "flip", 0.001), drop("m", "zoom", 0.5), drop("k", "flip", 0.9), drop("k", "zoom", 0.8),
                   drop("n", "flip", 0.001, "not_judged"), drop("n", "zoom", 0.001, "not_judged")])
    lines = [line for line in terminal_lines(data) if line.startswith("robustness, ")]
    assert lines == ["robustness, n: not judged (2 tests): 41 labelled images; this gate needs at least 50 "
                     "(min_images in audit.toml)",
                     "robustness, k: no transform has a significant drop (Holm, McNemar)",
                     "robustness, m: significant drop (Holm, McNemar) under flip"]


def test_compare_names_a_new_model_that_did_not_load_and_does_not_pass():
    """Stop-33 review (A4): NEW holds a model that compared and one that never loaded; compare used to drop the second
    silently and pass. It is named, with its load error, in the table and in --format json, and the verdict is not pass."""
    import json

    old = not_judged_report("pass")
    new = not_judged_report("fail")
    new["models"] = {"m": {"loaded": True}, "broken": {"loaded": False, "error": "RuntimeError: weights file missing\nmore"}}
    comparison = compare_reports(old, new)
    assert comparison["models"]["m"]["results"]["clean_top1"].verdict == "unchanged"  # the loaded model compared
    assert comparison["verdict"] == "incomplete"
    reason = "the new report's model broken did not load (RuntimeError: weights file missing): nothing compared"
    assert comparison["verdict_reason"] == reason
    text = render(comparison).splitlines()
    assert text[-2:] == ["NEW's own verdict: fail (its own gates; this comparison does not judge them)",
                         f"INCOMPLETE: 0 regression(s); not a pass: {reason}"]
    as_json = json.loads(render(comparison, "json"))
    assert as_json["verdict"] == "incomplete" and as_json["verdict_reason"] == reason
    assert as_json["not_loaded"] == {"broken": "RuntimeError: weights file missing\nmore"} and as_json["new_verdict"] == "fail"
    # Without the unloaded model the same reports pass: it alone made the difference.
    del new["models"]["broken"]
    assert compare_reports(old, new)["verdict"] == "pass"
    assert render(compare_reports(old, {**new, "verdict": "pass"})).splitlines()[-2] == "NEW's own verdict: pass"


def test_compare_leaves_out_a_control_that_did_not_load_and_a_model_the_pairs_did_not_pick():
    """Stop-33 review R4: an unloaded random-init control is no release (nothing of it is compared), and with
    ``pairs`` (--model NEW --baseline-as OLD) the models the user did not pick are not compared, loaded or not: neither
    is a reason not to pass. An unloaded release that is compared by default still is one (the test above)."""
    old = not_judged_report("pass")
    new = not_judged_report("pass")
    control = entry("audits/test_channel_bias.py::test_random_init_control[c]", "channel_bias", "error", model="c",
                    message="RuntimeError: out of memory", control="control (random init)")
    new["audits"] = [*new["audits"], control]
    new["models"] = {"m": {"loaded": True}, "c": {"loaded": False, "error": "RuntimeError: out of memory"}}
    comparison = compare_reports(old, new)
    assert comparison["not_loaded"] == {} and comparison["verdict"] == "pass", comparison["verdict_reason"]
    new["models"]["broken"] = {"loaded": False, "error": "RuntimeError: weights file missing"}
    assert compare_reports(old, new)["not_loaded"] == {"broken": "RuntimeError: weights file missing"}  # a release
    picked = compare_reports(old, new, pairs={"m": "m"})
    assert picked["not_loaded"] == {} and picked["verdict"] == "pass", picked["verdict_reason"]
    assert list(picked["models"]) == ["m"]


def test_the_tests_column_lists_passes_first_then_the_other_outcomes_worst_first():
    """``2/6 passed, 1 crashed, 1 failed, 1 not judged, 1 skipped``: passes out of all, then by severity (assembly.SEVERITY),
    not by name nor by count; without a pass, no ``0/N passed``."""
    outcomes = ["skipped", "passed", "failed", "not_judged", "passed", "crashed"]
    entries = [entry(f"audits/test_accuracy.py::test_x[m-{k}]", "accuracy", o) for k, o in enumerate(outcomes)]
    assert column_of(entries) == "2/6 passed, 1 crashed, 1 failed, 1 not judged, 1 skipped"
    two_failed = [entry(f"audits/test_accuracy.py::test_x[m-{k}]", "accuracy", o)
                  for k, o in enumerate(["skipped", "failed", "failed"])]
    assert column_of(two_failed) == "2 failed, 1 skipped"


def test_a_merge_of_parts_that_all_ran_nothing_says_why_it_is_no_pass():
    """Each part of a shard the selection left no test says so in its verdict_reason; their merge (run.merged_from, no
    shard) held none: "verdict: INCOMPLETE (no test ran)" with no sentence of why. It says its parts ran nothing and
    what left them none; a merge that holds a test's entry does not say it."""
    run = {"shard": None, "merged_from": ["part-1.json", "part-2.json"],
           "selection": {"selected": 0, "deselected": 153, "by": ["-k no_such_test"]}}
    report = assemble(run, {}, [])
    assert report["verdict"] == "incomplete"
    assert report["verdict_reason"] == ("none of the 2 merged parts ran a test: -k no_such_test left them none"), report
    entry = blank_entry("audits/test_accuracy.py::test_clean_top1[m]", {"audit": "accuracy", "model": "m"}, "passed")
    assert "merged parts" not in (assemble(run, {}, [entry])["verdict_reason"] or "")
    # Review 43 (integ) F1: a merge with a stopped part (merge passes stopped=) ran nothing because it was stopped
    assert "left them none" not in (assemble(run, {}, [], stopped=True)["verdict_reason"] or "")
