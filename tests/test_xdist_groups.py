"""tests/xdist_groups.py: under ``-n 2`` (xdist's ``load``, what ``-n auto`` gives) the tests that read a
``one_worker`` fixture run on one worker, and a ``start_first`` test runs before the others."""

from __future__ import annotations

import json

import pytest

# test_a and test_b read the marked fixture; load would send tests 0-1 to one worker and 2-3 to the other (its first
# chunks are two tests each), so the two would run on different workers.
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
def test_filler0(): record("filler0")
def test_b(shared): record("b")
{fillers}
@pytest.mark.start_first
def test_last_in_the_file(): record("last")
'''


def test_a_one_worker_fixtures_tests_share_a_worker_and_start_first_goes_first(pytester: pytest.Pytester, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fillers = "\n".join(f"def test_filler{i}(): record('filler{i}')" for i in range(1, 9))
    pytester.makepyfile(test_groups=PROJECT.format(out=str(out), fillers=fillers))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "tests.xdist_groups", "-p", "no:cacheprovider",
                                           "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=12)
    seen = {path.name: json.loads(path.read_text()) for path in out.iterdir()}
    assert len(seen) == 12
    assert seen["a"][0] == seen["b"][0], seen
    assert {worker for worker, _ in seen.values()} == {"gw0", "gw1"}  # both workers ran tests
    starts = sorted(start for _, start in seen.values())
    assert seen["last"][1] in starts[:2], seen  # among the first two started, one per worker


def test_a_dist_the_user_chose_is_kept(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile(test_one="def test_one(): pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", "-p", "tests.xdist_groups", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*scheduling tests via LoadFileScheduling*"])


