"""tests/once.py's session folder: the one folder an xdist run's processes share, a serial run's own base temp."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

WHERE = """
import json, os

def test_where(request, tmp_path_factory):
    from tests.once import session_dir

    seen = {"shared": str(session_dir(request)), "base": str(tmp_path_factory.getbasetemp())}
    with open(os.environ["WHERE_OUT"], "w") as f:
        json.dump(seen, f)
"""


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_a_run_started_from_a_worker_keeps_its_own_session_folder(pytester: pytest.Pytester, monkeypatch, workers):
    """Review 37: session_dir told a worker by $PYTEST_XDIST_WORKER, which a run started from a worker inherits: a
    serial run (-n 0) so started shared its parent's folder (where that run's own workers, or another such run, build
    too). A worker of the run's own xdist shares its base temp's parent with the other workers."""
    pytester.makepyfile(test_where=WHERE)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")  # as a run started from an xdist worker inherits it
    monkeypatch.setenv("WHERE_OUT", str(pytester.path / "where.json"))
    result = pytester.runpytest_subprocess(*workers, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    seen = {k: Path(v) for k, v in json.loads((pytester.path / "where.json").read_text()).items()}
    assert seen["shared"] == (seen["base"].parent if workers else seen["base"]), seen
    if workers:
        assert seen["base"].name.endswith("gw0")  # xdist's own worker base temp (popen-gw0), under the run's
