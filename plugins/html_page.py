"""``--audit-html PATH``: the report as one self-contained HTML page, written at the end of the run.

A failure to render it (a missing extra, a bug in a figure) is said on the terminal and never touches the
JSON report or the exit status.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .json_report import check_report_path, ran_no_test, report_data, startup_report
from .settings import STARTUP_USAGE_ERROR_KEY, get_settings

HTML_RESULT_KEY = pytest.StashKey[str]()  # the line the terminal summary prints


@pytest.hookimpl(tryfirst=True)  # as --audit-json's path: refused before anything else
def pytest_cmdline_main(config: pytest.Config) -> None:
    check_report_path(config.getoption("audit_html", None), "--audit-html", "report.html")


class UnfinishedPage:
    """As the run's first test begins (in the controller, under xdist too), the page at --audit-html says the run is
    under way: a run killed outright writes no page at its end, and the page an earlier run left there would read as
    this run's (visionaudit/html/unfinished.py). Not before a test begins: a run that runs none leaves the page alone."""

    def __init__(self, config: pytest.Config) -> None:
        self.config, self.written = config, False

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.written:
            return
        self.written = True
        from datetime import datetime, timezone

        from visionaudit.html.unfinished import write_unfinished_page
        from visionaudit.report.journal import journal_path

        config = self.config
        path, report = config.getoption("audit_html"), config.getoption("audit_json", None)
        try:
            write_unfinished_page(path, datetime.now(timezone.utc).isoformat(timespec="seconds"), config.invocation_params.args,
                                  str(journal_path(report)) if report else None)
        except OSError:
            try:  # not written: an earlier run's page must not stand for this one all the same
                Path(path).unlink(missing_ok=True)
            except OSError:
                pass


def pytest_configure(config: pytest.Config) -> None:
    """References that are not there or not decision files stop the run now (exit 4), not after it."""
    if hasattr(config, "workerinput"):
        return
    if config.getoption("audit_html", None) and not config.getoption("collectonly", False):
        config.pluginmanager.register(UnfinishedPage(config), "visionaudit-unfinished-page")
    from visionaudit.errors import VisionAuditError
    from visionaudit.families.shape_bias.decisions_csv import read_decisions

    for path in config.getoption("audit_shape_bias_reference", None) or ():
        try:
            read_decisions(path)
        except VisionAuditError as e:
            config.stash[STARTUP_USAGE_ERROR_KEY] = message = f"--audit-shape-bias-reference: {e}"
            raise pytest.UsageError(message) from None


def _write(config: pytest.Config, data: dict | None, with_strips: bool) -> None:
    path = config.getoption("audit_html", None)
    if not path or data is None or hasattr(config, "workerinput") or HTML_RESULT_KEY in config.stash:
        return
    try:
        from visionaudit.data.image_sets import data_root
        from visionaudit.html.page import write_html
        from visionaudit.html.thumbnails import ImageSource, transform_strips

        strips, images = None, None
        if with_strips:
            settings = get_settings(config)
            try:
                images = ImageSource(data_root(settings.data), settings.images)  # the lost images' thumbnails
                strips = transform_strips(data, images.data_root, settings.images)
            except Exception:  # noqa: BLE001  (no data root, an unreadable image: the page goes without the strip)
                strips = None
        written = write_html(path, data, config.getoption("audit_shape_bias_reference") or (), strips, comparison=None,
                             images=images, json_kept=bool(config.getoption("audit_json", None)))
        config.stash[HTML_RESULT_KEY] = f"html: {written}"
    except Exception as e:  # noqa: BLE001  (whatever went wrong, the JSON report and the exit status stand)
        stale = Path(path)
        if stale.is_file():
            stale.unlink()  # an earlier run's page must not pass for this one's
        json_note = "the JSON report is complete; python -m visionaudit html REPORT.json -o PATH renders it later" \
            if config.getoption("audit_json", None) else "pass --audit-json PATH to keep the report"
        config.stash[HTML_RESULT_KEY] = f"html: not written ({type(e).__name__}: {e}); {json_note}"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    path = config.getoption("audit_html", None)
    if path and not hasattr(config, "workerinput") and ran_no_test(session):
        # Nothing measured: as the JSON report, an earlier run's page at this path stays as it was (a page
        # "no test ran" beside that JSON would contradict it, and would be a page of a report never written).
        config.stash[HTML_RESULT_KEY] = (f"html: {path} "
                                         f"{'was left as it was' if Path(path).exists() else 'not written'} (no test ran)")
        return
    _write(config, report_data(session), with_strips=True)


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")  # around every other session-end hook
def pytest_sessionfinish_page_of_a_failed_end(session: pytest.Session):
    """A session-end hook that raises (ours or another plugin's) stops the others, this page's among them: the page that
    said the run was under way would be left saying it was killed. It says what happened instead: the tests ran, the
    report was not written, the error, and where what was measured is kept (the JSON, else the journal)."""
    try:
        return (yield)
    except Exception as e:
        config = session.config
        page = config.pluginmanager.get_plugin("visionaudit-unfinished-page")
        if page is not None and page.written and HTML_RESULT_KEY not in config.stash:
            from visionaudit.files import write_text_atomically
            from visionaudit.html.unfinished import command_line, report_failed_page
            from visionaudit.report.journal import journal_path

            from .json_report import WRITTEN_KEY

            report, error = config.getoption("audit_json", None), f"{type(e).__name__}: {e}"
            journal = journal_path(report) if report else None
            try:
                write_text_atomically(Path(config.getoption("audit_html")), report_failed_page(
                    command_line(config.invocation_params.args), error, report, config.stash.get(WRITTEN_KEY, False),
                    str(journal) if journal is not None and journal.exists() else None,
                    interrupted=session.exitstatus == pytest.ExitCode.INTERRUPTED))
                config.stash[HTML_RESULT_KEY] = f"html: the report was not written ({error}); the page says so"
            except OSError:
                pass  # the page that says the run did not finish stays: not wrong, and the error is on the terminal
        raise


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A run stopped at startup gets its page too (the error, no test), so no earlier page stands for it."""
    if "audit_html" in vars(config.option):
        _write(config, startup_report(config), with_strips=False)


@pytest.hookimpl(trylast=True)  # after the summary and its "report:" line
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    line = config.stash.get(HTML_RESULT_KEY, None)
    if line:
        terminalreporter.write_line(line)
