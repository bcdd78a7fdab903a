"""`visionaudit merge` and how each part's test ended: a test that ended otherwise than judged in a part (an error after
its gate, a timeout, an interruption) while holding its whole per-image data is judged again on every shard's images,
and the merged report's notes and merge's printed output say which part it was, which test and how it ended there."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.audit_runs import ROOT
from tests.synthetic_runs import varied_runs
from visionaudit.report.assembly import INTERRUPTED_MESSAGE
from visionaudit.report.merge import Unmergeable, merge_reports

ENDS = {"timeout": "Failed: Timeout (>1800.0s) from pytest-timeout.", "interrupted": INTERRUPTED_MESSAGE,
        "error": "OSError: [Errno 28] No space left on device (in a fixture's teardown)"}


@pytest.mark.parametrize("outcome", sorted(ENDS))
def test_a_part_whose_test_ended_otherwise_is_judged_on_all_images_and_said(outcome):
    whole, parts = varied_runs(7)
    (accuracy,) = [e for e in parts[1]["audits"] if e["audit"] == "accuracy"]
    accuracy.update(outcome=outcome, message=ENDS[outcome])
    merged = merge_reports(parts, ["part1.json", "part2.json"])
    # Its per-image data was whole: judged on all 300 images, as the unsharded run judged it.
    by = lambda r: {e["nodeid"]: e for e in r["audits"]}  # noqa: E731
    for nodeid, entry in by(whole).items():
        assert (by(merged)[nodeid]["outcome"], by(merged)[nodeid]["metrics"]) == (entry["outcome"], entry["metrics"])
    # ... and said, naming the part, the test and how it ended there (the merged entry alone reads as if it ended well).
    said = [n for n in merged["run"]["notes"] if "ended" in n]
    expected_outcome = by(whole)[accuracy["nodeid"]]["outcome"]
    assert said == [f"{accuracy['nodeid']}: it ended {outcome} in part2.json (shard 2/2: {ENDS[outcome]}); its per-image "
                    "data there was complete (stored whole before its gate was judged, one value per image of the part), "
                    f"so the merge judged it on every shard's images: {expected_outcome}"]
    # Parts whose tests all ended judged: nothing of the kind is said.
    assert not [n for n in merge_reports(varied_runs(7)[1], ["part1.json", "part2.json"])["run"]["notes"] if "ended" in n]


def test_merge_prints_the_note_of_a_part_that_timed_out(tmp_path):
    _, parts = varied_runs(7)
    (accuracy,) = [e for e in parts[0]["audits"] if e["audit"] == "accuracy"]
    accuracy.update(outcome="timeout", message=ENDS["timeout"])
    paths = []
    for k, part in enumerate(parts, 1):
        paths.append(tmp_path / f"part{k}.json")
        paths[-1].write_text(json.dumps(part))
    proc = subprocess.run([sys.executable, "-m", "visionaudit", "merge", *map(str, paths), "-o", str(tmp_path / "merged.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith(f"note: {accuracy['nodeid']}: it ended timeout in {paths[0]} (shard 1/2: "), \
        proc.stdout
    assert json.loads((tmp_path / "merged.json").read_text())["run"]["notes"] == [lines[0].removeprefix("note: ")]


def test_every_parts_notes_are_carried_into_the_merge_and_printed(tmp_path):
    """A note only shard 2 said (its copy of the data, of an hf: model) is the merged run's too, naming the part; one
    every part said is carried once, as said; a part's unselected-models note is not (the merge derives it over all)."""
    _, parts = varied_runs(7)
    hf = "hf:/m: no preprocessor_config.json was found (part 2's copy only)"
    stale = ("no test of resnet50 was selected (-k/-m, test paths): nothing judged it, so the run is not a pass; select its "
             "tests, or give only the models to audit with --model (it replaces [run] models)")
    parts[0]["run"]["notes"] = ["both say C", "part1 says A"]
    parts[1]["run"]["notes"] = [hf, "both say C", "part2 says B", stale]
    parts[1]["run"]["unselected_models_note"] = stale  # as the run writes it (assemble): merge finds it by this key
    paths = []
    for k, part in enumerate(parts, 1):
        paths.append(tmp_path / f"part{k}.json")
        paths[-1].write_text(json.dumps(part))
    expected = ["both say C", f"{paths[0]}: part1 says A", f"{paths[1]}: {hf}", f"{paths[1]}: part2 says B"]
    assert merge_reports(parts, list(map(str, paths)))["run"]["notes"] == expected
    proc = subprocess.run([sys.executable, "-m", "visionaudit", "merge", *map(str, paths), "-o", str(tmp_path / "merged.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("note: ")] == [f"note: {n}" for n in expected]


def test_an_assessor_that_raises_in_the_merge_makes_an_error_entry_not_a_traceback(monkeypatch):
    """The part's test ended `error` because its assessor raised (a bug); the merge calls the same assessor, which
    raises again: the merged entry is an `error` saying so, and the merged verdict is fail."""
    import visionaudit.report.merge as merge

    _, parts = varied_runs(7)
    for part in parts:
        (accuracy,) = [e for e in part["audits"] if e["audit"] == "accuracy"]
        accuracy.update(outcome="error", message="ZeroDivisionError: division by zero")
    real = merge.find_assessor

    def find(name):
        if name.startswith("accuracy."):
            def broken(*args):
                raise ZeroDivisionError("division by zero")
            return broken
        return real(name)

    monkeypatch.setattr(merge, "find_assessor", find)
    merged = merge_reports(parts, ["p1", "p2"])
    (entry,) = [e for e in merged["audits"] if e["audit"] == "accuracy"]
    assert entry["outcome"] == "error" and entry["message"] == "the merge's judgement raised ZeroDivisionError: division by zero"
    assert merged["verdict"] == "fail"
    assert sum("it ended error in" in n for n in merged["run"]["notes"]) == 2


def test_a_part_naming_an_assessor_this_suite_lacks_is_refused():
    _, parts = varied_runs(7)
    for part in parts:
        next(e for e in part["audits"] if e["audit"] == "accuracy")["shard_data"]["assessor"] = "accuracy.clean_top9"
    with pytest.raises(Unmergeable, match=re.escape("accuracy.clean_top1[{}]: no assessor named 'accuracy.clean_top9'")):
        merge_reports(parts, ["p1", "p2"])


def test_parts_whose_model_of_one_id_has_another_spec_are_refused_naming_both():
    """Review 37 F2: with ``?name=`` a model's id no longer says its spec; shards run as ``...?name=t&resize=256`` and
    ``...?name=t&resize=320`` (same weights) merged as one model t, its verdict mixing two preprocessings."""
    _, parts = varied_runs(7)
    for part, resize in zip(parts, (256, 320)):
        part["models"]["m"].update(spec=f"tests.tiny_models:tiny?resize={resize}", name="m")
    with pytest.raises(Unmergeable) as refused:
        merge_reports(parts, ["part1.json", "part2.json"])
    assert ("model m is tests.tiny_models:tiny?resize=256 in part1.json and tests.tiny_models:tiny?resize=320 in "
            "part2.json: run every shard with the same --model") in str(refused.value)
    parts[1]["models"]["m"]["spec"] = "tests.tiny_models:tiny?resize=256"  # the shards of one run: merged
    merge_reports(parts, ["part1.json", "part2.json"])


def test_the_merged_run_keeps_every_parts_phase_timings_each_named_by_its_part():
    """The merged run.phases were shard 1's alone (its 102 of 207 images' forward pass read as the run's): every part's
    timings are kept, each row's worker prefixed with its part."""
    _, parts = varied_runs(7)
    for k, part in enumerate(parts, 1):
        part["run"]["phases"] = [{"worker": "main", "subject": "m", "phase": "forward", "what": "clean images",
                                  "seconds": float(k), "images": 100 + k, "count": 1}]
    phases = merge_reports(parts, ["part1.json", "part2.json"])["run"]["phases"]
    assert [(p["worker"], p["seconds"], p["images"]) for p in phases] == [("part1.json: main", 1.0, 101),
                                                                          ("part2.json: main", 2.0, 102)]
