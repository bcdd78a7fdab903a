"""A session-end hook that raises before the suite's report and page are written (another plugin's, or the suite's own):
the page says so, and the journal keeps everything measured (plugins/html_page.py). A run of tests/test_faults.py's
project on a tiny model."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import test_faults
from tests.audit_runs import suite_conftest
from tests.browser import visit
from tests.test_faults import A, B, C, outcomes, report, run

pytestmark = pytest.mark.real_process  # new processes, as tests/test_faults.py's
project = test_faults.project  # its test project (the fixture): a tiny model's three accuracy tests


# A session-end hook (another plugin's) that raises before the suite's report and page are written.
FAILING_END = """
@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    raise RuntimeError("planted session-end failure")
"""


@pytest.mark.slow(data=False)
def test_a_failing_session_end_leaves_a_page_saying_so_and_the_journal(project, browser):
    """stop 44's notes: a session-end hook raising before the page was written left the page that says the run is under
    way, which then reads as a killed run's. In a browser: the page says the tests ran, the report was not written,
    the error, and the journal that holds everything measured, which rebuilds the report."""
    project.makeconftest(suite_conftest() + "import pytest\n" + FAILING_END)
    proc = run(project, "", "--audit-html=report.html")
    assert proc.returncode != 0 and "planted session-end failure" in proc.stderr + proc.stdout, proc.stdout[-2000:]
    assert not (project.path / "report.json").exists()
    journal = project.path / "report.json.journal.jsonl"
    text = " ".join(visit(project.path / "report.html").text.split())
    assert "NOT FINISHED" not in text and "killed" not in text, text
    assert "REPORT NOT WRITTEN The run finished its tests, but writing its report failed: RuntimeError: planted " \
           "session-end failure." in text, text
    assert f"python -m visionaudit report --from-journal {journal.name} rebuilds" in text, text  # as --audit-json was given
    rebuilt = subprocess.run([sys.executable, "-m", "visionaudit", "report", "--from-journal", str(journal)],
                             capture_output=True, text=True, timeout=120, cwd=project.path)
    assert rebuilt.returncode == 1, rebuilt.stdout + rebuilt.stderr  # rebuilt; incomplete: the run never said it ended
    assert outcomes(report(project)) == {A: "passed", B: "passed", C: "passed"}
