"""Presenters: the report for people, on the terminal and in the GitHub step summary."""

from __future__ import annotations

import os

import pytest

from visionaudit.report.summaries import markdown_summary, terminal_lines

from .json_report import REPORT_KEY, report_data


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    data = report_data(session)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and data and any(a["audit"] for a in data["audits"]):
        with open(summary_file, "a") as f:
            f.write(markdown_summary(data))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    data = config.stash.get(REPORT_KEY, None)  # built at session end, before this summary
    if not data or not any(a["audit"] for a in data["audits"]):
        return  # no audit in this run (the suite's own tests, say)
    terminalreporter.write_sep("=", "visionaudit summary")
    for line in terminal_lines(data, verbose=config.get_verbosity() > 0):
        terminalreporter.write_line(line)
    path = config.getoption("audit_json")
    if path:
        terminalreporter.write_line(f"report: {path}")
