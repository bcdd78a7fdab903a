"""The pages a run leaves when it writes no report page of its own (visionaudit/html/unfinished.py): NOT FINISHED
while it runs, REPORT NOT WRITTEN when its end fails. The runs that leave them: tests/plugins/test_run_plumbing.py,
tests/test_session_end_faults.py."""

from __future__ import annotations

import shlex
import sys

import pytest

from visionaudit.html.unfinished import report_failed_page, write_unfinished_page


@pytest.mark.parametrize("argv0, program", [("/venv/bin/pytest", ["pytest"]),
                                            ("/venv/lib/python3.11/site-packages/pytest/__main__.py",
                                             ["python", "-m", "pytest"])])
def test_the_not_finished_pages_command_reads_back_as_typed(tmp_path, monkeypatch, argv0, program):
    """review44 F3: the NOT FINISHED page showed pytest's arguments joined by spaces: `-k "a and not b"` read as
    `-k a and not b`, another command. Quoted as a shell reads it back, and escaped in the page. Review of stop 45:
    begun as typed (`python -m pytest` too), which this test took from its own run's sys.argv (it failed under
    `python -m pytest -p no:xdist`): given here."""
    monkeypatch.setattr(sys, "argv", [argv0, "ignored"])
    args = ["audits", "-k", "accuracy and not lite0", "--audit-html=my page.html", "--note=<b>"]
    write_unfinished_page(tmp_path / "p.html", "2026-12-07T22:00:00+00:00", args, None)
    html = (tmp_path / "p.html").read_text()
    shown = html.split("Command: <code>")[1].split("</code>")[0]
    assert shlex.split(shown.replace("&lt;", "<").replace("&gt;", ">").replace("&#x27;", "'")) == [*program, *args], shown
    assert "<b>" not in html


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_failed_end_after_an_interrupted_run_does_not_say_it_finished_its_tests(interrupted):
    """Review of stop 45: the REPORT NOT WRITTEN page said "the run finished its tests" also of a run interrupted
    (Ctrl-C, SIGTERM) whose end then failed."""
    page = report_failed_page("pytest audits", "RuntimeError: boom", "r.json", False, "r.json.journal.jsonl",
                              interrupted=interrupted)
    text = " ".join(page.split())
    assert ("The run finished its tests, but writing its report failed" in text) is not interrupted
    assert ("was interrupted before it finished its tests, and then writing its report failed: <code>RuntimeError: boom"
            in text) is interrupted, text


def test_each_page_written_here_is_told_apart_from_a_reports_and_from_the_other(tmp_path):
    """Review of stop 45: `report --from-journal -o OTHER` called any page with this module's mark "the killed run's page
    saying it did not finish", which the REPORT NOT WRITTEN page is not (visionaudit/cli/report.py)."""
    from visionaudit.html.unfinished import unfinished_verdict

    killed, failed, other = tmp_path / "killed.html", tmp_path / "failed.html", tmp_path / "report.html"
    write_unfinished_page(killed, "2026-12-07T22:00:00+00:00", ["audits"], None)
    failed.write_text(report_failed_page("pytest audits", "RuntimeError: boom", None, False, None))
    other.write_text("<!DOCTYPE html><title>visionaudit report: PASS</title>")
    assert [unfinished_verdict(p) for p in (killed, failed, other, tmp_path / "none.html")] == [
        "NOT FINISHED", "REPORT NOT WRITTEN", None, None]
