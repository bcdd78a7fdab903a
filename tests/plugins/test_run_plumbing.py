"""A run's plumbing around the report: one run per report path (two runs are two subprocesses), a run that
runs no test leaves the report alone, -x exits 1 under xdist too, the step summary on a startup error, the
junit property as JSON, and a crashed worker's last progress line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tests.audit_runs import project_env, run_project
from visionaudit.families.records import report_schema

ROOT = Path(__file__).resolve().parents[2]
# New processes, not fork server children (tests/warm_runs.py): its runs signal their parent and check exits by signal.
pytestmark = pytest.mark.real_process
A, B, C = (f"test_run.py::test_{x}[tests.tiny_models:tiny]" for x in "abc")

AUDIT = """
import os
import signal
import time

import pytest

from visionaudit.progress import phase

pytestmark = pytest.mark.audit("accuracy")
MODE = os.environ.get("MODE", "")


def test_a(model, record, request):
    record.metric("clean_top1", 0.9)
    if os.environ.get("NOTE"):  # a note said as the run goes (as the data checks' and a model's load say theirs)
        from plugins.run_notes import say_once
        say_once(request.config, "said as test_a ran")
    if MODE == "hold":  # the first of two runs: holds the report until the test lets it go
        open("holding", "w").write(str(os.getpid()))
        deadline = time.time() + 120
        while not os.path.exists("release") and time.time() < deadline:
            time.sleep(0.05)


def test_b(model, record):
    record.metric("clean_top1", 0.8)
    if MODE == "fail":
        assert False, "planted failure"
    if MODE == "sigterm":  # a cancelled CI job: SIGTERM to the controller while this worker is busy
        open("killed_at", "w").write(repr(time.time()))
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(30)
    if MODE == "segfault":  # a crash in native code: faulthandler's traceback belongs in the report
        import ctypes
        ctypes.string_at(0)
    if MODE == "die_in_a_pass":
        with phase("forward", model.id, "clean planted", total=10) as p:
            p.advance(3)
            os.kill(os.getpid(), signal.SIGKILL)


def test_c(model, record):
    if MODE == "fail":
        time.sleep(1)  # still running, or not yet begun, when the failure stops the run
    record.metric("clean_top1", 0.7)
"""

ARGS = ["--model", "tests.tiny_models:tiny", "--device", "cpu", "-p", "no:cacheprovider", "--audit-json=report.json"]


@pytest.fixture
def project(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_run=AUDIT)
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def start(project: pytest.Pytester, mode: str, *args: str, json_report: bool = True, **env: str) -> subprocess.Popen:
    base = ARGS if json_report else [a for a in ARGS if not a.startswith("--audit-json")]
    return subprocess.Popen([sys.executable, "-m", "pytest", *base, *args], cwd=project.path,
                            env=project_env(MODE=mode, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(project: pytest.Pytester, mode: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_project(project.path, *ARGS, *args, MODE=mode, **env)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def killed_while_holding(project: pytest.Pytester, *args: str, json_report: bool = True) -> None:
    """A run SIGKILLed while its test holds (its journal and lock written, no report): as the OOM killer ends one."""
    first = start(project, "hold", *args, json_report=json_report)
    try:
        wait_for(project.path / "holding", first)
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        (project.path / "release").touch()


def report(project: pytest.Pytester) -> dict:
    data = json.loads((project.path / "report.json").read_text())
    jsonschema.validate(data, report_schema())
    return data


@pytest.mark.slow(data=False)
def test_a_second_run_on_the_same_report_refuses_naming_the_first(project):
    first = start(project, "hold")
    try:
        wait_for(project.path / "holding", first)
        second = run(project, "")
        out = second.stdout + second.stderr
        assert second.returncode == pytest.ExitCode.USAGE_ERROR, out[-3000:]
        assert f"another run is writing the report report.json: pid {first.pid} on host " in out
        # as the first was typed (python -m pytest), not pytest's __main__.py (stop 44's notes)
        assert "(python -m pytest --model tests.tiny_models:tiny --device cpu" in out and "__main__.py" not in out, out
        assert "Traceback" not in out
        # The first run's journal is left where it writes it, and the second wrote no report.
        assert sorted(p.name for p in project.path.glob("report.json*")) == ["report.json.journal.jsonl", "report.json.lock"]
    finally:
        (project.path / "release").touch()
        out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out[-3000:]
    assert "killed run" not in out
    data = report(project)
    assert {a["nodeid"]: a["outcome"] for a in data["audits"]} == {A: "passed", B: "passed", C: "passed"}
    assert sorted(p.name for p in project.path.glob("report.json*")) == ["report.json"]  # journal and lock gone


@pytest.mark.slow(data=False)
def test_a_killed_runs_lock_does_not_block_and_its_journal_is_kept(project):
    killed_while_holding(project)
    assert (project.path / "report.json.lock").exists()  # left behind, as a killed run leaves it
    second = run(project, "")
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "of an earlier, killed run was kept as" in out
    kept = [p for p in project.path.glob("report.json.journal.jsonl.*")]
    assert len(kept) == 1 and f"--from-journal {kept[0].name}" in out.replace(str(project.path) + os.sep, "")
    assert report(project)["verdict"] == "pass"


@pytest.mark.parametrize("args", [["--collect-only"], ["-k", "no_such_test"]], ids=["collect-only", "all-deselected"])
def test_a_run_that_runs_no_test_leaves_the_report_alone(project, args):
    """Also without xdist (these runs are -n 0), the terminal says so (stop-33 review N5: all deselected said nothing)."""
    earlier = '{"schema_version": 3, "verdict": "pass", "an": "earlier run"}\n'
    (project.path / "report.json").write_text(earlier)
    page = "<html>the earlier run's page</html>\n"  # stop-33 review A1: the page was replaced by a "no test ran" one
    (project.path / "report.html").write_text(page)
    proc = run(project, "", "--audit-html=report.html", *args)
    assert proc.returncode in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), proc.stdout[-3000:]
    assert (project.path / "report.json").read_text() == earlier
    assert (project.path / "report.html").read_text() == page
    assert sorted(p.name for p in project.path.glob("report.*")) == ["report.html", "report.json"]
    assert "INCOMPLETE" not in proc.stdout
    assert "html: report.html was left as it was (no test ran)" in proc.stdout
    if args[0] == "--collect-only":
        assert "visionaudit: no test ran; the report report.json was left as it was" in proc.stdout
    else:  # the reason, with the tests pytest collects (review 41, N3)
        listed = run(project, "", "--collect-only", "-q").stdout.count("::")
        assert (f"visionaudit: no test ran: -k no_such_test deselected all {listed} tests; the report report.json was left "
                "as it was") in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize("mode", [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="two-workers")])
@pytest.mark.slow(data=False)
def test_x_exits_1_under_xdist_too_and_the_report_names_the_test(project, mode):
    proc = run(project, "fail", "-x", "--junitxml=junit.xml", *mode)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = report(project)
    assert data["verdict"] == "fail" and data["run"]["exit_status"] == 1
    assert data["incomplete"]["interrupted"] is False
    assert data["incomplete"]["stopped_by"] == {"test": B, "reason": "stopping after 1 failures (-x/--maxfail)"}
    assert f"stopped after {B} failed" in proc.stdout
    # The junit property is the record as JSON, readable by any JSON parser.
    properties = [p for p in ET.parse(project.path / "junit.xml").iter("property") if p.get("name") == "visionaudit"]
    assert properties
    records = [json.loads(p.get("value")) for p in properties]
    assert {r["audit"] for r in records} == {"accuracy"}
    assert {r["metrics"].get("clean_top1") for r in records} >= {0.9, 0.8}


@pytest.mark.slow(data=False)
def test_stepwise_stops_the_run_as_x_does_not_as_an_interruption(project):
    """rep40: --sw (pytest's stepwise, which stops the run at the first failure) exited 2, "interrupted (Ctrl-C,
    SIGTERM)", and the report said interrupted, naming no test; it is a stop after a failure, as -x's."""
    args = [a for a in ARGS if a not in ("-p", "no:cacheprovider")]  # stepwise keeps its place in pytest's cache
    proc = run_project(project.path, *args, "--sw", "--audit-html=report.html", MODE="fail")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = report(project)
    assert data["verdict"] == "fail" and data["run"]["exit_status"] == 1
    assert data["incomplete"]["interrupted"] is False and data["incomplete"]["not_run"] == [C]
    assert data["incomplete"]["stopped_by"] == {"test": B, "reason": "Test failed, continuing from this test next run. "
                                                                     "(--stepwise)"}
    assert f"stopped after {B} failed" in proc.stdout
    page = (project.path / "report.html").read_text()
    assert "Stopped early:" in page and "Interrupted:" not in page


@pytest.mark.slow(data=False)
def test_a_crash_that_stepwise_stops_at_is_the_stop_not_an_interruption(project):
    """rep40 review: under xdist a crashed test's stand-in report never reached the collector's failure count, so --sw's
    stop after it named no test and the report (and the page's header) said the run was interrupted."""
    args = [a for a in ARGS if a not in ("-p", "no:cacheprovider")]  # stepwise keeps its place in pytest's cache
    proc = run_project(project.path, *args, "--sw", "-n", "1", "--audit-html=report.html", MODE="segfault")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = report(project)
    assert data["incomplete"]["interrupted"] is False and data["incomplete"]["crashed"] == [B]
    assert data["incomplete"]["stopped_by"] == {"test": B, "reason": "Test failed, continuing from this test next run. "
                                                                     "(--stepwise)"}
    page = (project.path / "report.html").read_text()
    assert "Stopped early:" in page and "Interrupted:" not in page


def test_an_empty_report_path_is_a_usage_error_said_in_the_step_summary(project):
    summary = project.path / "summary.md"
    proc = run_project(project.path, *ARGS[:-1], "--audit-json", "", MODE="", GITHUB_STEP_SUMMARY=str(summary))
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--audit-json is empty (an unset variable?)" in proc.stderr
    text = summary.read_text()
    assert "Stopped at startup: --audit-json is empty (an unset variable?)" in text


def test_a_startup_error_writes_the_step_summary(project):
    summary = project.path / "summary.md"
    proc = run(project, "", "--device", "cdua", GITHUB_STEP_SUMMARY=str(summary))
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = summary.read_text()
    assert "Stopped at startup: unknown device 'cdua'" in text
    assert plain_markdown_problems(text) == []


def plain_markdown_problems(text: str) -> list[str]:
    """Lines GitHub would not show as written: bold left open at the line's end, or an unescaped ``<``
    (``<file>`` is dropped as an HTML tag)."""
    return [line for line in text.splitlines()
            if line.replace("\\*", "").count("**") % 2 or "<" in line.replace("\\<", "")]


def test_the_step_summary_of_a_multi_line_error_is_plain_markdown():
    from visionaudit.report.assembly import assemble
    from visionaudit.report.summaries import markdown_summary

    error = ("the collected audits need data that is not there (no test was run):\n"
             "  cue-conflict: /data/cue-conflict is missing; python -m visionaudit fetch cue-conflict\n"
             "  imagenet-sample: put /data/imagenet-sample/<file> for each file listed in visionaudit/x.txt")
    text = markdown_summary(assemble({"exit_status": 4}, {}, [], error=error))
    assert plain_markdown_problems(text) == [], text
    assert "**verdict: INCOMPLETE (no test ran)**" in text.splitlines()  # hunt34: it was "INCOMPLETE ()"
    assert "- imagenet-sample: put /data/imagenet-sample/\\<file\\> for each file listed in visionaudit/x.txt" in text


@pytest.mark.slow(data=False)
def test_a_crashed_worker_says_its_last_progress_line_first(project):
    proc = run(project, "die_in_a_pass", "-n", "1")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    crashed = next(a for a in report(project)["audits"] if a["nodeid"] == B)
    assert crashed["outcome"] == "crashed"
    first_line = crashed["message"].splitlines()[0]
    assert "its last progress: tests.tiny_models:tiny: forward passes clean planted, 10 images ..." in first_line
    assert "tests.tiny_models:tiny: loading on cpu" in crashed["message"]  # earlier output follows


@pytest.mark.slow(data=False)
def test_a_segfaulting_worker_leaves_its_traceback_in_the_report(project):
    """rep40: pytest's own faulthandler plugin, configured after ours, sent a worker's fatal-error traceback to the
    terminal, so the report's crashed entry never held it (docs/report.md promises it)."""
    proc = run(project, "segfault", "-n", "1")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    crashed = next(a for a in report(project)["audits"] if a["nodeid"] == B)
    assert crashed["outcome"] == "crashed"
    assert "its fatal-error traceback (faulthandler):\nFatal Python error: Segmentation fault" in crashed["message"], (
        crashed["message"])
    assert re.search(r'File ".*test_run.py", line \d+ in test_b', crashed["message"]), crashed["message"]
    assert "its fatal-error traceback (faulthandler):" in proc.stdout  # the terminal's failure section says it too


def test_after_sigterm_busy_workers_are_not_waited_for(project):
    """xdist waits 10 s for a busy worker before killing it; GitHub Actions kills the job 7.5 s after its
    SIGTERM. The report is written (after the workers are down) within a few seconds of the signal."""
    proc = run(project, "sigterm", "-n", "2")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = report(project)
    assert data["verdict"] == "incomplete" and data["incomplete"]["interrupted"] is True
    waited = (project.path / "report.json").stat().st_mtime - float((project.path / "killed_at").read_text())
    assert waited < 5, f"the report came {waited:.1f} s after the SIGTERM"


def test_a_killed_runs_page_is_rendered_again_with_its_rebuilt_report(project, capsys):
    """page43: a run killed outright left its --audit-html path holding an earlier run's page (PASS, say), and
    `report --from-journal` rebuilt the JSON beside it but not the page: the two disagreed. The journal names the page,
    and the rebuild renders it from the rebuilt report (with -o elsewhere the report path keeps the earlier report, and
    so the page stays that report's: said)."""
    from visionaudit.cli import main

    page = project.path / "page.html"
    page.write_text("<html>an earlier run's page: PASS</html>")
    killed_while_holding(project, "--audit-html=page.html")
    journal = project.path / "report.json.journal.jsonl"
    inputs = json.loads(journal.read_text().splitlines()[0])["page_inputs"]  # stop 44: what its page is drawn with
    assert inputs["shape_bias_references"] == [] and inputs["images"] == "imagenet-sample" and Path(inputs["data"]).is_absolute()
    unfinished = page.read_text()  # stop 44: the killed run's own page saying it did not finish, not the earlier one
    assert "an earlier run's page" not in unfinished and "NOT FINISHED" in unfinished
    assert f"python -m visionaudit report --from-journal {journal.name}" in unfinished
    assert main(["report", "--from-journal", str(journal), "-o", str(project.path / "other.json")]) == 1
    assert page.read_text() == unfinished
    assert (f"html: {page} is left as it is (the killed run's page saying it did not finish; the report went to "
            f"{project.path / 'other.json'}, not {project.path / 'report.json'})") in capsys.readouterr().out
    assert main(["report", "--from-journal", str(journal)]) == 1
    rebuilt = page.read_text()
    assert "visionaudit report" in rebuilt and ">INCOMPLETE<" in rebuilt and "Interrupted:" in rebuilt, rebuilt[:2000]
    assert f"html: {page} (rendered from the rebuilt report)" in capsys.readouterr().out


@pytest.mark.slow(data=False)
@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["no-xdist", "xdist"])
def test_a_note_said_after_the_run_began_is_in_the_report_rebuilt_from_its_journal(project, workers):
    """Stop 44 (review): the journal's run line holds the notes said by then; notes said later (the data checks' at
    collection's end, a model's as it loads: a one-output model audited as two classes) were lost from the report and
    page rebuilt from a killed run's journal. They are journalled as they are said."""
    from visionaudit.report.journal import rebuild

    first = start(project, "hold", *workers, NOTE="1")
    journal = project.path / "report.json.journal.jsonl"
    try:
        wait_for(project.path / "holding", first)
        deadline = time.time() + 30  # a worker's note reaches the controller on its channel's thread: a moment later
        while "said as test_a ran" not in journal.read_text() and time.time() < deadline:
            time.sleep(0.1)
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        (project.path / "release").touch()
    notes = rebuild(journal)["run"].get("notes") or []
    assert notes.count("said as test_a ran") == 1, notes


@pytest.mark.slow(data=False)
@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["no-xdist", "xdist"])
def test_a_killed_run_without_a_json_report_leaves_no_earlier_page_as_its_own(project, browser, workers):
    """stop 43's notes: a run with --audit-html only (no --audit-json, so no journal) killed outright left the page of
    an earlier run (PASS) at its path, reading as this run's. As its first test begins the run puts there a page
    saying it is under way, which says, when it is still there afterwards, that the run did not finish and kept no
    journal; a run that ends writes its report's page over it."""
    from tests.browser import visit

    page = project.path / "page.html"
    page.write_text("<html><title>visionaudit report: PASS</title>an earlier run's page: PASS</html>")
    killed_while_holding(project, "--audit-html=page.html", *workers, json_report=False)
    seen = visit(page)
    text = " ".join(seen.text.split())
    assert "an earlier run's page" not in seen.text and "PASS" not in seen.text, text
    assert text.startswith("visionaudit report NOT FINISHED"), text[:300]
    assert "If this page is still here after the run, the run was killed before it could" in text
    assert "It kept no journal (no --audit-json): what it measured is lost" in text
    # started as python -m pytest: said so (stop 44's notes: a lock named pytest's __main__.py)
    assert "Command: python -m pytest --model tests.tiny_models:tiny" in text and "--audit-html=page.html" in text
    assert [c for c in seen.console if c["level"] in ("SEVERE", "WARNING")] == []
    assert all(u == page.resolve().as_uri() for u in seen.requests), seen.requests
    (project.path / "release").unlink()
    done = run_project(project.path, *[a for a in ARGS if not a.startswith("--audit-json")], "--audit-html=page.html",
                       *workers, MODE="")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "NOT FINISHED" not in page.read_text() and "<title>visionaudit report: PASS</title>" in page.read_text()
