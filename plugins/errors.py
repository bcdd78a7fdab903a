"""Error display, in one place: bad input shows as its message, not a traceback (the message already
names the problem and the fix), in whichever phase it surfaced: a fixture's setup or the test."""

from __future__ import annotations

import pytest

from visionaudit.errors import VisionAuditError

from .recording import USER_ERROR_KEY


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, VisionAuditError) and report.failed:
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
        # Bad input is an error of the run, not a failed gate, in whichever phase it surfaced.
        report.user_properties.append((USER_ERROR_KEY, type(call.excinfo.value).__name__))
    return report
