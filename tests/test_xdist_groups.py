"""tests/xdist_groups.py: under ``-n 2`` (xdist's ``load``, what ``-n auto`` gives) the tests that read a
``one_worker`` fixture run on one worker, and a ``start_first`` test runs before the others."""

from __future__ import annotations

import json
import os

import pytest

from tests.audit_runs import ROOT


@pytest.fixture(autouse=True)
def _suite_importable(monkeypatch):
    """The inner runs load tests.xdist_groups (-p): the suite's root on their path, as a clean clone's venv (an
    editable install of the project, not of its tests) does not put it there."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

# test_a and test_b read the marked fixture. Sent one test at a time (each its own scope, what the scheduler does
# without the groups) after the start_first sort [last, a, b, filler0, ...], they would be split: each worker gets one
# test, then a second (xdist's loadscope), so gw0 runs last, b and gw1 a, filler0.
PROJECT = '''
import json, os, time
import pytest
from tests.once import one_worker

@pytest.fixture(scope="session")
@one_worker
def shared():
    return None

def record(name):
    with open(os.path.join({out!r}, name), "w") as f:
        json.dump([os.environ["PYTEST_XDIST_WORKER"], time.time()], f)
    time.sleep(0.3)

def test_a(shared): record("a")
def test_b(shared): record("b")
{fillers}
@pytest.mark.start_first
def test_last_in_the_file(): record("last")
'''


# The outer run's worker id, if any, is inherited by the inner run's controller (a test under CI's -n auto); the
# controller must still find its workers' groups.
@pytest.mark.parametrize("outer_worker", [None, "gw3"], ids=["top_level", "inside_a_worker"])
def test_a_one_worker_fixtures_tests_share_a_worker_and_start_first_goes_first(
        pytester: pytest.Pytester, tmp_path, monkeypatch, outer_worker):
    if outer_worker is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", outer_worker)
    out = tmp_path / "out"
    out.mkdir()
    fillers = "\n".join(f"def test_filler{i}(): record('filler{i}')" for i in range(9))
    pytester.makepyfile(test_groups=PROJECT.format(out=str(out), fillers=fillers))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "tests.xdist_groups", "-p", "no:cacheprovider",
                                           "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=12)
    assert "groups files" not in result.stdout.str()  # the controller found both workers' groups
    seen = {path.name: json.loads(path.read_text()) for path in out.iterdir()}
    assert len(seen) == 12
    assert seen["a"][0] == seen["b"][0], seen
    assert {worker for worker, _ in seen.values()} == {"gw0", "gw1"}  # both workers ran tests
    starts = sorted(start for _, start in seen.values())
    assert seen["last"][1] in starts[:2], seen  # among the first two started, one per worker


def test_a_missing_groups_file_is_warned(pytester: pytest.Pytester, monkeypatch):
    """A worker whose groups file the controller cannot find (here: written elsewhere) loses the grouping, never a
    test; the run says so."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makeconftest("""
import pytest

@pytest.hookimpl(trylast=True)  # after tests/xdist_groups.py wrote its file: move it out of the controller's reach
def pytest_collection_modifyitems(config):
    if config.workerinput["workerid"] == "gw1":
        folder = config._tmp_path_factory.getbasetemp().parent
        (folder / "xdist-groups-gw1.json").rename(folder / "elsewhere.json")
""")
    pytester.makepyfile(test_one="def test_one(): pass\ndef test_two(): pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "tests.xdist_groups", "-p", "no:cacheprovider",
                                           "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*1 groups files for 2 workers*"])


def test_a_dist_the_user_chose_is_kept(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_one="def test_one(): pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", "-p", "tests.xdist_groups", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*scheduling tests via LoadFileScheduling*"])




def test_a_serial_run_keeps_the_collection_order(pytester: pytest.Pytester, monkeypatch):
    """start_first is for xdist's queue: run serially (-n 0, -x), the long test is not moved to the front."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_order="import pytest\ndef test_one(): pass\n"
                                   "@pytest.mark.start_first\ndef test_two(): pass\n")
    result = pytester.runpytest_subprocess("-n", "0", "-p", "tests.xdist_groups", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_one PASSED*", "*test_two PASSED*"])


def test_a_test_that_takes_its_worker_down_is_reported_once_and_the_run_goes_on(pytester: pytest.Pytester,
                                                                                  monkeypatch):
    """Review 37 S0: xdist's own scope scheduler sends the test that killed its worker to the replacement worker,
    and again, until the restarts run out (the run hung there); the project's scheduler reports it crashed once."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    tests = "\n".join(f"def test_{i}(shared): pass" for i in range(6))
    pytester.makepyfile(test_crash=f"""
import os
import pytest
from tests.once import one_worker

@pytest.fixture(scope="session")
@one_worker
def shared():
    return None

def test_crash(shared):
    os._exit(1)

{tests}
""")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "tests.xdist_groups", "-p", "no:cacheprovider",
                                           "--rootdir", str(pytester.path), timeout=120)
    result.assert_outcomes(passed=6, failed=1)
    assert result.stdout.str().count("replacing crashed worker") == 1, result.stdout.str()[-3000:]
