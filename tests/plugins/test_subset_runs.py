"""A run of a subset of the tests (-k, -m, --lf, --deselect) says so (stop 41): the report's run.selection counts the tests
deselected and names what deselected them, and the verdict line, the step summary and the HTML header say "a subset: 2 of
3 tests selected by ...", so that a pass of 2 tests does not read as the whole gate. The suite's own deselections (the
baseline tests without --audit-baseline) are not the user's, and under xdist (where only the workers collect) the count
is the same."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from tests.audit_runs import run_project
from visionaudit.families.records import report_schema
from visionaudit.report.journal import rebuild

ROOT = Path(__file__).resolve().parents[2]

AUDIT = """
import os

import pytest

pytestmark = pytest.mark.audit("accuracy")


def test_a(model, record):
    record.metric("clean_top1", 0.9)


def test_b(model, record):
    record.metric("clean_top1", 0.8)
    assert os.environ.get("MODE") != "fail", "planted failure"


def test_c(model, record):
    record.metric("clean_top1", 0.7)
    if os.environ.get("MODE") == "die":  # a run killed outright: its journal stays, to be rebuilt
        import signal
        os.kill(os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid(), signal.SIGKILL)  # the controller
"""

# A baseline test: without --audit-baseline the suite deselects it itself, which is no selection of the user's.
BASELINE = """
import pytest

pytestmark = pytest.mark.audit("baseline")


def test_against_baseline():
    raise AssertionError("never runs without --audit-baseline")
"""

TESTS = 3  # the user's tests in the project (test_a, test_b, test_c): what "of N" must count
ARGS = ["--model", "tests.tiny_models:tiny", "--device", "cpu", "--audit-json=report.json", "--audit-html=report.html"]


@pytest.fixture
def project(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_run=AUDIT, test_base=BASELINE)
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def _run(project: pytest.Pytester, *args: str, **env: str):
    proc = run_project(project.path, *ARGS, *args, **env)
    data = json.loads((project.path / "report.json").read_text())
    jsonschema.validate(data, report_schema())
    return proc, data


def _verdict_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("verdict: "))


def _page(project: pytest.Pytester) -> str:
    return " ".join((project.path / "report.html").read_text().split())


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("how, by, selected", [
    (("-k", "test_a or test_c"), ["-k 'test_a or test_c'"], 2),
    (("--deselect", "test_run.py::test_b"), ["--deselect test_run.py::test_b"], 2),
    (("-k", "test_a", "-m", "accuracy"), ["-k test_a", "-m accuracy"], 1),
])
def test_a_subset_run_counts_what_was_deselected_and_says_so_beside_the_verdict(project, workers, how, by, selected):
    summary = project.path / "summary.md"
    proc, data = _run(project, "-p", "no:cacheprovider", "-n", workers, *how, GITHUB_STEP_SUMMARY=str(summary))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["verdict"] == "pass"  # it judged what it ran: a pass of those tests
    assert data["run"]["selection"] == {"selected": selected, "deselected": TESTS - selected, "by": by}
    said = f"a subset: {selected} of {TESTS} tests selected by {', '.join(by)}"
    assert _verdict_line(proc.stdout) == f"verdict: PASS ({selected} passed); {said}", proc.stdout[-2000:]
    assert said in summary.read_text().replace("\\", "")
    page = _page(project)
    assert f"<strong>Selection:</strong> {said.removeprefix('a subset: ')}; its verdict judges those tests only." in page.replace(
        "&#39;", "'")
    assert "Every selected test passed." in page


def test_a_run_of_every_test_is_no_subset_though_the_suite_deselected_its_baseline_tests(project):
    proc, data = _run(project, "-p", "no:cacheprovider", "-n", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 deselected" in proc.stdout  # the baseline test: pytest counts it, the selection does not
    assert data["run"]["selection"] == {"selected": TESTS, "deselected": 0, "by": []}
    assert _verdict_line(proc.stdout) == f"verdict: PASS ({TESTS} passed)"
    page = _page(project)
    assert "<strong>Selection:" not in page and "Every test passed." in page


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.slow(data=False)
def test_last_failed_is_a_subset_named_by_lf_whose_whole_is_not_claimed(project, workers):
    """pytest's --lf leaves the tests that passed last time uncollected (most without a deselection to count): the run
    says it reran the last failures, and gives no "of N" it cannot know."""
    first, data = _run(project, "-n", workers, MODE="fail")
    assert first.returncode == 1 and data["verdict"] == "fail", first.stdout[-3000:]
    proc, data = _run(project, "-n", workers, "--lf")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["run"]["selection"] == {"selected": 1, "deselected": 0, "by": ["--lf"], "last_failed": 1}
    assert _verdict_line(proc.stdout) == ("verdict: PASS (1 passed); a subset: 1 test(s) selected by --lf (the last run's "
                                          "1 failure(s); the tests that passed then were not collected)")
    # With no failure left to rerun, --lf runs every test: no subset.
    proc, data = _run(project, "-n", workers, "--lf")
    assert data["run"]["selection"] == {"selected": TESTS, "deselected": 0, "by": ["--lf"]}
    assert _verdict_line(proc.stdout) == f"verdict: PASS ({TESTS} passed)"


SHARES = """
import pytest

pytestmark = pytest.mark.audit("channel_bias")


def test_shares(model, record):
    record.metric("shares", [0.3, 0.3, 0.4])
"""


@pytest.mark.parametrize("keyword", ["test_a or test_shares", "test_a"])
def test_a_later_shard_counts_the_tests_it_could_run_whichever_deselected_the_whole_run_tests_first(project, keyword):
    """Shard 2/2 deselects the tests that run whole in shard 1 (channel_bias's), after -k: a test -k deselected first is
    the shard's all the same, so both selections read 1 of the shard's 3 tests."""
    project.makepyfile(test_shares=SHARES)
    proc, data = _run(project, "-p", "no:cacheprovider", "-n", "0", "--audit-shard", "2/2", "-k", keyword)
    assert data["run"]["selection"] == {"selected": 1, "deselected": 2, "by": [f"-k '{keyword}'" if " " in keyword
                                                                               else f"-k {keyword}"]}, proc.stdout[-3000:]


# a worker kills its parent, the controller: a new process (the fork server's workers are its children, tests/warm_runs.py)
@pytest.mark.parametrize("workers", ["0", pytest.param("2", marks=pytest.mark.real_process)])
@pytest.mark.slow(data=False)
def test_a_subset_run_killed_outright_is_rebuilt_from_its_journal_as_a_subset(project, workers):
    proc = run_project(project.path, *ARGS, "-p", "no:cacheprovider", "-n", workers, "-k", "test_a or test_c", MODE="die")
    assert proc.returncode != 0 and not (project.path / "report.json").exists(), proc.stdout[-3000:]
    data = rebuild(project.path / "report.json.journal.jsonl")
    jsonschema.validate(data, report_schema())
    assert data["run"]["selection"] == {"selected": 2, "deselected": TESTS - 2, "by": ["-k 'test_a or test_c'"]}


@pytest.mark.slow(data=False)
def test_stepwise_counts_only_the_users_tests_though_it_runs_before_the_suites_own_deselection(project):
    """--sw drops the tests before the last failure (test_base sorts before test_run): the baseline test the suite drops
    by itself is not the user's (review 41, F1: pytest's stepwise hook ran first, so it was counted, "2 of 4")."""
    first, data = _run(project, "-n", "0", "--sw", MODE="fail")
    assert first.returncode == 1 and data["verdict"] == "fail", first.stdout[-3000:]
    proc, data = _run(project, "-n", "0", "--sw")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["run"]["selection"] == {"selected": 2, "deselected": 1, "by": ["--sw"]}
    assert _verdict_line(proc.stdout) == f"verdict: PASS (2 passed); a subset: 2 of {TESTS} tests selected by --sw"


@pytest.mark.slow(data=False)
def test_paths_inside_audits_or_node_ids_narrow_the_run_and_say_so_without_a_whole(suite, monkeypatch):
    """Naming a file or a test inside audits/ collects fewer tests without deselecting any (review 41, N1): a subset whose
    whole was never collected, said like --lf; naming the folder, or every file in it, is the whole run."""
    audits = suite.mkdir("audits")
    (audits / "test_run.py").write_text(AUDIT)
    (audits / "test_more.py").write_text(AUDIT.replace("def test_", "def test_more_"))
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    off = ("-p", "no:cacheprovider", "-n", "0")
    proc, data = _run(suite, *off, "audits/test_run.py")
    assert data["run"]["selection"] == {"selected": 3, "deselected": 0, "by": ["audits/test_run.py"], "by_path": True}
    assert _verdict_line(proc.stdout) == ("verdict: PASS (3 passed); a subset: 3 test(s) selected by the path "
                                          "audits/test_run.py (the other audit files were not collected)"), proc.stdout
    proc, data = _run(suite, *off, "audits/test_more.py::test_more_a", "-k", "more")
    assert data["run"]["selection"] == {"selected": 1, "deselected": 0, "by": ["-k more", "audits/test_more.py::test_more_a"],
                                        "by_path": True}
    assert _verdict_line(proc.stdout) == ("verdict: PASS (1 passed); a subset: 1 test(s) selected by -k more, the path "
                                          "audits/test_more.py::test_more_a (the other audit files were not collected)")
    for whole in (("audits",), ("audits/test_run.py", "audits/test_more.py"), ()):
        proc, data = _run(suite, *off, *whole)
        assert data["run"]["selection"] == {"selected": 6, "deselected": 0, "by": []}, whole
        assert _verdict_line(proc.stdout) == "verdict: PASS (6 passed)"


def test_a_selection_that_leaves_no_test_says_it_deselected_them_all(project):
    """No test ran: exit 5 and no report (nothing passes), and the reason is said, not only that an older report was left
    (review 41, N3)."""
    proc = run_project(project.path, *ARGS, "-p", "no:cacheprovider", "-n", "0", "-k", "nosuchthing")
    assert proc.returncode == 5 and not (project.path / "report.json").exists(), proc.stdout[-3000:]
    assert (f"visionaudit: no test ran: -k nosuchthing deselected all {TESTS} tests; the report report.json was left as it "
            "was") in proc.stdout, proc.stdout[-3000:]
