"""The page says what it shows: how a run that did not end by itself ended, as the terminal does (an interrupted run:
Ctrl-C, SIGTERM, a report rebuilt from a killed run's journal; a shard's partial report), and only the groups it drew."""

from __future__ import annotations

import copy
import re

import pytest

from tests.browser import visit
from tests.html.fixture_reports import TWO
from tests.synthetic_runs import varied_runs
from visionaudit.families.channel_bias import CONTROL_GROUP, ZOO_GROUP
from visionaudit.html.page import render, write_html


def _header(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.split("<section", 1)[0])).replace("&#39;", "'")


def test_an_interrupted_run_says_so_beside_its_verdict():
    """rep40: a SIGTERM'd run's page read "FAIL" (or "INCOMPLETE", with no reason: the counts say it on the terminal)
    over a table of passes; that 27 tests never ran was said only at the foot of the page."""
    report = copy.deepcopy(TWO)
    finished = _header(render(report))
    assert "Interrupted:" not in finished and "Partial report:" not in finished  # a finished run: nothing added
    nodeids = [e["nodeid"] for e in report["audits"]]
    report["verdict"], report["verdict_reason"] = "incomplete", None
    report["incomplete"].update(interrupted=True, interrupted_tests=nodeids[:1], not_run=nodeids[1:3])
    header = _header(render(report))
    assert (f"Interrupted: the run was stopped before it finished (Ctrl-C, SIGTERM, or killed and its report rebuilt from "
            f"the journal): 1 test(s) were running ({nodeids[0]}) and 2 never started; they judged nothing.") in header, header
    report["incomplete"]["stopped_by"] = {"test": nodeids[0], "reason": "stopping after 1 failures (-x/--maxfail)"}
    header = _header(render(report))
    assert "Interrupted:" not in header and "Stopped early:" in header  # -x says it its own way


def test_a_shards_part_says_it_is_one():
    part = varied_runs(3)[1][0]
    header = _header(render(part))
    assert ("Partial report: this is the partial report of shard 1/2 (--audit-shard): its verdicts judge only this "
            "shard's images; the merge of the shards (python -m visionaudit merge) is the run's verdict.") in header, header


def test_the_channel_caption_names_only_the_groups_drawn():
    """rep40: a run without the random-init controls (`-k "not control"`) drew the model beside the published zoo under
    a caption that said "beside the random-init control and the published torchvision zoo"."""
    assert "per input channel, beside the random-init control and the published torchvision zoo." in render(TWO)
    report = copy.deepcopy(TWO)
    del report["aggregates"]["channel_bias"][CONTROL_GROUP]
    page = render(report)
    assert "per input channel, beside the published torchvision zoo." in page and "random-init control and" not in page


def test_a_stop_after_a_failure_says_tests_never_started_only_when_some_did_not():
    """rep40 review F7: under xdist the other worker had already run the rest (`not_run` empty), yet the page said "the
    tests after it never started"."""
    report = copy.deepcopy(TWO)
    nodeids = [e["nodeid"] for e in report["audits"]]
    report["incomplete"].update(interrupted=False, not_run=[],
                                stopped_by={"test": nodeids[0], "reason": "stopping after 1 failures (-x/--maxfail)"})
    header = _header(render(report))
    assert (f"Stopped early: after {nodeids[0]} failed (stopping after 1 failures (-x/--maxfail))." in header
            and "never started" not in header), header
    report["incomplete"]["not_run"] = nodeids[1:3]
    header = _header(render(report))
    assert (f"Stopped early: after {nodeids[0]} failed (stopping after 1 failures (-x/--maxfail)); 2 test(s) after it "
            "never started.") in header, header


def test_the_channel_caption_names_the_groups_the_family_writes():
    """rep40 review F4: the caption matched the family's group names by copies of them; each group is named by the family's
    own constant, so a renamed group cannot silently drop out of the caption."""
    report = copy.deepcopy(TWO)
    assert {CONTROL_GROUP, ZOO_GROUP} <= set(report["aggregates"]["channel_bias"])
    del report["aggregates"]["channel_bias"][ZOO_GROUP]
    page = render(report)
    assert "per input channel, beside the random-init control." in page and "published torchvision zoo" not in page


def test_the_runs_notes_are_on_the_page_as_on_the_terminal():
    """page43: the run's notes (run.notes: an hf: model fed ImageNet's preprocessing for want of its processor, a
    baseline model no model of the run was compared with, fewer observers) were on the terminal, in the step summary and
    in the JSON, but not on the page, the report for people."""
    report = copy.deepcopy(TWO)
    assert "Notes" not in _header(render(report))  # a run that said nothing: nothing added
    notes = ["hf:org/m: no preprocessor_config.json in its folder; it is fed ImageNet's preprocessing (resize 256, crop "
             "224, mean 0.485, 0.456, 0.406)",
             "the baseline's model old-v1 has no model of this run paired with it: not compared"]
    report["run"]["notes"] = notes
    header = _header(render(report))
    assert "Notes (as the run said them once):" in header and all(n in header for n in notes), header
    assert render(report).count("<li class=\"note\">") == 2


def test_a_shared_error_is_said_once_and_the_others_point_to_it():
    """page43: a model that does not load errors every test of it with one message; the page repeated the message (up
    to 600 characters, cut mid-word) in every row, where the terminal and the report say it once (same_error_as)."""
    report = copy.deepcopy(TWO)
    first, *others = [e for e in report["audits"] if e["model"] == report["audits"][0]["model"]][:4]
    message = "CheckpointError: cannot load model m.safetensors: " + "the rest of a long message; " * 40
    for e in (first, *others):
        e["outcome"], e["message"] = "error", message
    for e in others:
        e["same_error_as"] = first["nodeid"]
    problems = render(report).split('<section id="problems">', 1)[1]
    assert problems.count("CheckpointError: cannot load model m.safetensors") == 1, problems
    assert problems.count(f"the same error as <code>{first['nodeid']}</code>") == len(others)
    assert "… (the JSON report holds the whole message)" in problems  # the one message said is cut, and says so


def test_a_shared_timeouts_rows_keep_their_own_message():
    """review43 F8: the tests after a shared fixture's timeout are errors with same_error_as and a message of their
    own (they never started; plugins/collector.py): the page said only "the same error as" a timeout, so the row lost
    that the test never started."""
    report = copy.deepcopy(TWO)
    first, other = [e for e in report["audits"] if e["model"] == report["audits"][0]["model"]][:2]
    first["outcome"], first["message"] = "timeout", "Timeout (>60.0s) from pytest-timeout."
    other["outcome"], other["same_error_as"] = "error", first["nodeid"]
    other["message"] = f"a fixture it shares timed out in {first['nodeid']}, so this test never started: Timeout"
    problems = render(report).split('<section id="problems">', 1)[1]
    assert "so this test never started" in problems and "the same error as" not in problems, problems


@pytest.mark.slow
def test_a_shared_errors_pointer_wraps_in_its_table(tmp_path, browser):
    """review43 F9: "the same error as <code>NODEID</code>" put a nodeid, one unbreakable word, in the message
    column: the table of tests that did not pass grew wider than the page, its messages cut at the window's edge."""
    report = copy.deepcopy(TWO)
    first, *others = [e for e in report["audits"] if e["model"] == report["audits"][0]["model"]][:4]
    for e in (first, *others):
        e["outcome"], e["message"] = "error", "CheckpointError: cannot load model m.safetensors"
    for e in others:
        e["same_error_as"] = first["nodeid"]
    seen = visit(write_html(tmp_path / "page.html", report), width=1200)
    assert "problems" not in seen.overflowing, seen.overflowing
    assert "the same error as" in seen.text
