"""A configured model that -k/-m left no test: the run and `visionaudit compare` give the same answer on the same report.
Nothing judged it, so neither passes; and it was deselected, not broken, so compare does not say it "did not load"."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.audit_runs import ROOT, TINY, audit
from tests.report.test_verdict import SAMPLES, entry, not_judged_report
from tests.synthetic_runs import varied_runs
from visionaudit.report.assembly import assemble
from visionaudit.report.compare import compare_reports, render
from visionaudit.report.merge import merge_reports

IDLE_REASON = ("idle: no test of it was selected (-k/-m, test paths), so nothing judged it; select its tests, "
               "or give only the models to audit with --model (it replaces [run] models)")
IDLE_NOTE = ("no test of idle was selected (-k/-m, test paths): nothing judged it, so the run is not a pass; select its "
             "tests, or give only the models to audit with --model (it replaces [run] models)")
COMPARE_REASON = ("the new report's model idle was not audited: no test of it was selected (-k/-m, test paths), so nothing "
                  "of it was compared")


def new_report(models: dict) -> dict:
    """NEW as the run assembles it: m's clean top-1 judged (with its per-image outcomes), the other models as given."""
    old = not_judged_report("pass")
    clean = {**old["audits"][0], "outcome": "passed"}
    return assemble({"seed": 0, "samples": 40}, {"m": {"loaded": True}, **models}, [clean], samples=SAMPLES)


def test_the_run_and_compare_both_refuse_a_pass_for_a_deselected_model_and_say_it_was_not_selected():
    new = new_report({"idle": {"loaded": False, "error": None}})
    # The run: not a pass, the model named with the fix (it read PASS with a note before).
    assert new["verdict"] == "incomplete" and new["verdict_reason"] == IDLE_REASON
    assert IDLE_NOTE in new["run"]["notes"]
    # compare on the same report: not a pass either, and named as not selected, not as a model that did not load.
    comparison = compare_reports(not_judged_report("pass"), new)
    assert comparison["models"]["m"]["results"]["clean_top1"].verdict == "unchanged"  # the audited model compared
    assert comparison["verdict"] == "incomplete" and comparison["verdict_reason"] == COMPARE_REASON
    assert comparison["not_loaded"] == {} and comparison["not_selected"] == ["idle"]
    assert "did not load" not in render(comparison)
    as_json = json.loads(render(comparison, "json"))
    assert as_json["not_selected"] == ["idle"] and as_json["not_loaded"] == {}
    # With --model m --baseline-as m (compare's pairs) the user picked m alone: idle is not compare's to judge.
    picked = compare_reports(not_judged_report("pass"), {**new, "verdict": "pass"}, pairs={"m": "m"})
    assert picked["not_selected"] == [] and picked["verdict"] == "pass", picked["verdict_reason"]


def test_a_model_that_failed_to_load_is_still_one_that_did_not_load_on_both_sides():
    broken_entry = entry("audits/test_accuracy.py::test_clean_top1[broken]", "accuracy", "error", model="broken",
                         message="RuntimeError: weights file missing")
    old = not_judged_report("pass")
    clean = {**old["audits"][0], "outcome": "passed"}
    new = assemble({"seed": 0, "samples": 40},
                   {"m": {"loaded": True}, "broken": {"loaded": False, "error": "RuntimeError: weights"}},
                   [clean, broken_entry], samples=SAMPLES)
    assert new["verdict"] == "fail" and not any("was selected" in n for n in new["run"].get("notes") or [])
    comparison = compare_reports(old, new)
    assert comparison["not_loaded"] == {"broken": "RuntimeError: weights"} and comparison["not_selected"] == []


def test_a_shard_after_the_first_does_not_blame_the_selection_for_a_model_whose_tests_run_in_shard_1():
    """Shards 2..N deselect every test that does not split by image (it runs whole in shard 1): a model whose selected
    tests are all such (deployment, channel_bias, conversion) has none there, though -k/-m did select it. That part
    must not say the selection left it no test; shard 1, the unsharded run and the merge judge it."""
    old = not_judged_report("pass")
    clean = {**old["audits"][0], "outcome": "passed"}
    models = {"m": {"loaded": True}, "idle": {"loaded": False, "error": None}}
    for index, blamed in ((1, True), (2, False), (3, False)):
        run = {"seed": 0, "samples": 40, "shard": {"index": index, "count": 3}}
        part = assemble(run, models, [clean], samples=SAMPLES)
        assert (part["verdict_reason"] == IDLE_REASON) is blamed, (index, part["verdict_reason"])
        assert (part["verdict"], part["verdict_reason"]) == (("incomplete", IDLE_REASON) if blamed else ("pass", None))
        assert (IDLE_NOTE in (part["run"].get("notes") or [])) is blamed
        assert compare_reports(old, part)["not_selected"] == (["idle"] if blamed else [])


@pytest.mark.slow  # one short run of the real audits, two tiny models, one selected
def test_a_real_run_that_deselects_a_model_and_compare_on_its_report_agree(shared_data, tmp_path):
    other = "tests.tiny_models:tiny_other"
    (tmp_path / "audit.toml").write_text("[audits.accuracy]\nmin_top1 = 0\nmin_balanced_accuracy = 0\n")  # tiny gets none right
    proc, data = audit(tmp_path, shared_data, "run", "--model", other, "-k", "test_clean_top1 and not tiny_other",
                       "--audit-samples", "60", f"--audit-config={tmp_path / 'audit.toml'}")
    assert data is not None and not data["error"], proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [(e["model"], e["outcome"]) for e in data["audits"]] == [(TINY, "passed")] and data["models"][other]["loaded"] is False
    assert proc.returncode == 1 and data["verdict"] == "incomplete"
    assert data["verdict_reason"].startswith(f"{other}: no test of it was selected (-k/-m, test paths), so")
    compared = subprocess.run([sys.executable, "-m", "visionaudit", "compare", str(tmp_path / "run.json"),
                               str(tmp_path / "run.json"),
                               "--format", "json", "--accept-incomplete-baseline"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    result = json.loads(compared.stdout)
    assert compared.returncode == 1 and result["verdict"] == "incomplete", compared.stderr
    assert result["not_selected"] == [other] and result["not_loaded"] == {}
    # (then tiny's own: it got no image right, so nothing of it is compared either)
    assert result["verdict_reason"].startswith(f"the new report's model {other} was not audited: no test of it was selected "
                                               "(-k/-m, test paths), so nothing of it was compared; ")
    assert "did not load" not in result["verdict_reason"]


def _with_idle(part: dict) -> dict:
    """``part`` as its run writes it (:func:`assemble`) with one more configured model, which no test audited."""
    models = {**part["models"], "idle": {"loaded": False, "error": None}}
    return assemble(part["run"], models, part["audits"], samples=part["samples"])


def test_merge_replaces_the_parts_note_on_unselected_models_however_it_is_worded(monkeypatch):
    """merge drops a part's unselected-models note and derives it again over all parts. It finds that note by the
    report's ``run.unselected_models_note``, which the writer sets to what it wrote: worded otherwise (here a wording
    none of merge's knows), the merged notes still say it once, as the merge derived it, not also as part 1's."""
    import visionaudit.report.assembly as assembly

    said = assembly.unselected_models_note
    monkeypatch.setattr(assembly, "unselected_models_note",
                        lambda *args: None if (note := said(*args)) is None else f"reworded: {note.upper()}")
    _, parts = varied_runs(7)
    parts = [_with_idle(p) for p in parts]
    [note] = parts[0]["run"]["notes"]  # shard 1 says it; shard 2 cannot tell
    assert note.startswith("reworded: NO TEST OF IDLE") and not parts[1]["run"].get("notes")
    merged = merge_reports(parts, ["part1.json", "part2.json"])
    assert merged["run"]["notes"] == [note]  # not also "part1.json: reworded: ..."
    assert (parts[0]["run"]["unselected_models_note"], parts[1]["run"]["unselected_models_note"]) == (note, None)
    assert merged["run"]["unselected_models_note"] == note


def test_merge_drops_the_note_of_parts_written_before_the_key_in_its_wordings_of_then():
    _, parts = varied_runs(7)
    for part, note in zip(parts, ("no selected test audited idle: it was never loaded", IDLE_NOTE)):
        part["run"].pop("unselected_models_note")
        part["run"]["notes"] = [note, "kept"]
    merged = merge_reports(parts, ["part1.json", "part2.json"])
    assert merged["run"]["notes"] == ["kept"] and merged["run"]["unselected_models_note"] is None
