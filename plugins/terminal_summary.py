"""Presenters: the report for people, on the terminal and in the GitHub step summary (``GITHUB_STEP_SUMMARY``),
the latter also for a run stopped at startup (exit 4), so that a CI job's page says why."""

from __future__ import annotations

import os

import pytest

from visionaudit.report.assembly import assemble
from visionaudit.report.summaries import markdown_summary, terminal_lines

from .json_report import (
    REPORT_KEY,
    WRITTEN_KEY,
    ran_no_test,
    report_data,
    startup_report,
)

SUMMARY_WRITTEN_KEY = pytest.StashKey[bool]()
SAID_KEY = pytest.StashKey[str]()  # the startup error the terminal summary printed


def _write_step_summary(config: pytest.Config, data: dict) -> None:
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and not config.stash.get(SUMMARY_WRITTEN_KEY, False) and not hasattr(config, "workerinput"):
        config.stash[SUMMARY_WRITTEN_KEY] = True
        with open(summary_file, "a", encoding="utf-8") as f:
            f.write(markdown_summary(data))


def _shard(data: dict) -> bool:
    """Whether ``data`` is a shard's part (``--audit-shard I/N``)."""
    return bool((data.get("run") or {}).get("shard"))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    data = report_data(session)
    if data and (data["error"] or any(a["audit"] for a in data["audits"]) or _shard(data)) and not ran_no_test(session):
        _write_step_summary(session.config, data)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config):
    """A usage error at startup (ours, raised before the session, or a config error at configure) ends here:
    the step summary says it as the terminal does."""
    try:
        return (yield)
    except pytest.UsageError as e:
        data = startup_report(config) or assemble({"exit_status": int(pytest.ExitCode.USAGE_ERROR)}, {}, [], error=str(e))
        _write_step_summary(config, data)
        if config.stash.get(SAID_KEY, None) == str(e):
            # Found at collection (plugins/data_check.py), after the session started: the summary's verdict line said
            # it; pytest would say it again ("ERROR: ...") were the error to reach it. Exit 4 all the same.
            return pytest.ExitCode.USAGE_ERROR
        raise  # at configure: no summary said it, pytest does


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    data = config.stash.get(REPORT_KEY, None)  # built at session end, before this summary
    path = config.getoption("audit_json")
    no_test = config.stash.get(WRITTEN_KEY, None) is False or config.getoption("collectonly", False)
    # Every test deselected without xdist leaves no entry at all: a report left alone is said all the same.
    # a shard's part says what it holds even when it is nothing (its report is written, for the merge)
    if not data or (not any(a["audit"] for a in data["audits"]) and not (no_test and path) and not _shard(data)):
        return  # no audit in this run (the suite's own tests, say)
    if no_test:
        chosen = (data.get("run") or {}).get("selection") or {}
        why = (f": {', '.join(chosen.get('by') or [])} deselected all {chosen['deselected']} tests"  # not a stale report's
               if chosen.get("deselected") and not chosen.get("selected") else "")
        terminalreporter.write_line(f"visionaudit: no test ran{why}; "
                                    f"{'the report ' + path + ' was left as it was' if path else 'no report'}")
        return
    terminalreporter.write_sep("=", "visionaudit summary")
    for line in terminal_lines(data, verbose=config.get_verbosity() > 0):
        terminalreporter.write_line(line)
    if data["error"]:
        config.stash[SAID_KEY] = data["error"]
    if path:
        terminalreporter.write_line(f"report: {path}")

