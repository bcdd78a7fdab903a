"""review44 (a): the NOT FINISHED page a run puts at --audit-html as its first test begins is replaced by the run's
page however the run ends short of being killed outright: an INTERNALERROR, Ctrl-C, pytest.exit, -x, with xdist too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real_process

TESTS = """
import os

import pytest

pytestmark = pytest.mark.audit("accuracy")
END = os.environ.get("END", "")


def test_a(model, record):
    record.metric("clean_top1", 0.9)


def test_b(model, record):
    record.metric("clean_top1", 0.8)
    if END == "ctrl-c":
        raise KeyboardInterrupt
    if END == "exit":
        pytest.exit("planted exit", returncode=3)
    if END == "fail":
        assert False, "planted failure"
"""

INTERNAL = """

def pytest_runtest_logreport(report):
    if report.when == "call" and report.nodeid.startswith("test_run.py::test_b"):
        raise RuntimeError("planted internal error")
"""


@pytest.mark.slow(data=False)  # six test projects' pytest runs: the full run's, not the quick loop's
@pytest.mark.parametrize("end, args", [
    ("internal", []), ("ctrl-c", []), ("exit", []), ("fail", ["-x"]), ("internal", ["-n", "1"]), ("fail", ["-n", "1", "-x"]),
], ids=["internalerror", "ctrl-c", "pytest.exit", "-x", "xdist-internalerror", "xdist--x"])
def test_the_not_finished_page_never_outlives_a_run_that_ended(suite: pytest.Pytester, monkeypatch, end, args):
    suite.makepyfile(test_run=TESTS)
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    if end == "internal":
        (suite.path / "conftest.py").write_text((suite.path / "conftest.py").read_text() + INTERNAL)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("END", end)
    page = suite.path / "page.html"
    page.write_text("<html>an earlier run's page: PASS</html>")
    result = suite.runpytest_subprocess("--model", "tests.tiny_models:tiny", "--device", "cpu", "-p", "no:cacheprovider",
                                        "--audit-html=page.html", *args)
    text = page.read_text()
    assert "<title>visionaudit report: " in text and "NOT FINISHED" not in text and "an earlier run's page" not in text, \
        (result.ret, text[:500], "\n".join(result.outlines[-30:]))
