"""The command a run lock (and the report's ``run.command``, the page) names: as a person typed it. Stop 44's notes:
under ``python -m pytest`` the message about another run holding the lock named pytest's ``__main__.py``."""

from __future__ import annotations

import pytest

from visionaudit.report.run_lock import ReportInUse, acquire, command_line, invoked_as


@pytest.mark.parametrize("argv0, typed", [
    ("/venv/lib/python3.11/site-packages/pytest/__main__.py", "python -m pytest"),
    ("/venv/bin/pytest", "pytest"),
    ("/venv/bin/py.test", "py.test"),
    ("-c", "pytest"),  # python -c (an xdist worker), or no script at all
    ("", "pytest"),
])
def test_the_program_is_named_as_typed(argv0, typed):
    assert invoked_as(argv0) == typed


def test_the_refusal_names_the_holders_command_as_a_shell_reads_it(tmp_path):
    report = tmp_path / "report.json"
    held = acquire(report, command_line("/venv/lib/python3.11/site-packages/pytest/__main__.py",
                                        ["audits", "-k", "rotation or zoom", f"--audit-json={report}"]))
    try:
        with pytest.raises(ReportInUse) as refused:
            acquire(report, "second")
    finally:
        held.release()
    assert f"(python -m pytest audits -k 'rotation or zoom' --audit-json={report})" in str(refused.value)
