"""Error display, in one place: bad input shows as its message, not a traceback (the message already
names the problem and the fix), in whichever phase it surfaced: a fixture's setup or the test."""

from __future__ import annotations

import pytest

from visionaudit.errors import VisionAuditError

from .record_transport import USER_ERROR_KEY

# A test fails a gate by an assertion (or pytest.fail, which pytest-timeout uses too); anything else it raises
# is an error of the run: bad input, or a bug in the audit.
GATE_FAILURES = (AssertionError, pytest.fail.Exception)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if call.excinfo is None or not report.failed:
        return report
    error = call.excinfo.value
    if isinstance(error, VisionAuditError):
        report.longrepr = f"{type(error).__name__}: {error}"
        report.user_properties.append((USER_ERROR_KEY, type(error).__name__))
    elif not isinstance(error, GATE_FAILURES):
        report.user_properties.append((USER_ERROR_KEY, type(error).__name__))
    return report
