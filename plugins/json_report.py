"""The writer: the collected entries become the report (``--audit-json PATH``), written atomically and
valid against the schema on every way out: normal end, Ctrl-C or SIGTERM (exit 2), a crashed worker,
missing data found after collection, and a usage or config error at startup (exit 4, the error in the
report). While the run goes on, every finished test is also in the journal beside the report
(``PATH.journal.jsonl``), so that a run killed outright keeps its results:
``visionaudit report --from-journal PATH.journal.jsonl`` rebuilds the report. The journal is removed once
the report is written.

One run per report path: the run holds ``PATH.lock`` (visionaudit/report/run_lock.py) from startup until its
report is written, and a second run on the same path stops at startup (exit 4) naming the first. A run
that executes no test (``--collect-only``, everything deselected) leaves the report at PATH as it was; but a shard
(``--audit-shard I/N``) that the selection left no test writes one that says so (exit 1), for the merge to join.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from visionaudit.devices import gpu_names
from visionaudit.errors import VisionAuditError
from visionaudit.files import output_problem, write_atomically
from visionaudit.report.assembly import (
    assemble,
    software_versions,
    unloaded_model,
    unselected_models_note,
    verdict_reasons,
)
from visionaudit.report.journal import JournalWriter, journal_path
from visionaudit.report.run_lock import RunLock, acquire, command_line

from .baseline import get_baseline
from .collector import STEPWISE_STOP, get_collector
from .data_check import STARTUP_ERROR_KEY
from .interruptions import effective_timeout
from .progress import phase_timings
from .run_notes import NOTE_SINK_KEY, NOTES_KEY, say_once
from .selection import selection
from .settings import SETTINGS_KEY, STARTUP_USAGE_ERROR_KEY, get_settings
from .worker_channel import get_channel

REPORT_KEY = pytest.StashKey[dict]()
# Exit codes of a run that ended as it should: anything else (Ctrl-C, an internal error, pytest.exit) stopped it.
FINISHED = (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED)
START_KEY = pytest.StashKey[float]()
WRITTEN_KEY = pytest.StashKey[bool]()  # True: the report is written; False: left alone (no test ran)
LOCK_KEY = pytest.StashKey[RunLock]()
SELECTION_JOURNALED = pytest.StashKey[bool]()
SHARD_LEFT_NONE_KEY = pytest.StashKey[bool]()  # shard_left_none's answer, kept: the report changes the exit status


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def _run_info(config: pytest.Config, exitstatus: int | None, models: dict[str, Any]) -> dict[str, Any]:
    settings = config.stash.get(SETTINGS_KEY, None)
    start, end = config.stash.get(START_KEY, time.time()), time.time()
    baseline = get_baseline(config)
    collector = get_collector(config)
    return {
        "start": _iso(start),
        "end": _iso(end),
        "duration": round(end - start, 3),
        "command": command_line(sys.argv[0], config.invocation_params.args),  # as typed: python -m pytest too
        "exit_status": int(exitstatus) if exitstatus is not None else None,
        "versions": {**software_versions(config.rootpath), "pytest": pytest.__version__},
        "platform": platform.platform(),
        "devices": sorted({m["device"] for m in models.values() if m.get("device")}) or ([settings.device] if settings else []),
        "gpus": gpu_names(),
        "workers": len(config.getvalue("tx") or ()) if config.pluginmanager.has_plugin("dsession") else 0,
        "seed": settings.seed if settings else 0,
        "samples": settings.samples if settings else None,
        "images": settings.images if settings else None,
        # the page finds that run's images there
        "imagenet_c": str(Path(settings.imagenet_c).resolve()) if settings and settings.imagenet_c else None,
        "shard": settings.shard.to_dict() if settings and settings.shard else None,
        # -k/-m/--lf/--deselect: how many tests of the collection ran (null before collection; a subset says so)
        "selection": selection(config, len(collector.collected) if collector is not None else 0),
        "config_file": str(settings.config.path) if settings and settings.config.path else None,
        "phases": phase_timings(config),
        "timeout": effective_timeout(config),
        **({"baseline": baseline.to_dict()} if baseline is not None else {}),
        "notes": list(config.stash.get(NOTES_KEY, [])),  # said once on the terminal: a subset larger than a set, ...
    }


def _models(config: pytest.Config, loaded: dict[str, Any]) -> dict[str, Any]:
    """Every model a process loaded or failed to load (configured ones and an audit's own, like the random-init
    controls), then the configured ones no test got as far as loading (error null): a test's data error or skip
    is the test's, never the model's."""
    models = dict(loaded)
    settings = config.stash.get(SETTINGS_KEY, None)
    for mid in settings.models if settings else ():
        if mid not in models:
            models[mid] = unloaded_model(mid, settings.spellings.get(mid, mid), None, settings.canonicals.get(mid))
    return models


def report_data(session: pytest.Session) -> dict[str, Any] | None:
    """The report of this run, built once at session end (None in an xdist worker)."""
    config = session.config
    if REPORT_KEY in config.stash:
        return config.stash[REPORT_KEY]
    collector = get_collector(config)
    if collector is None:
        return None
    channel = get_channel(config)
    if channel is not None:
        channel.poll()  # the workers' last words: progress, collected tests
    if not config.pluginmanager.has_plugin("dsession"):
        collector.recover(session.items)  # a test stopped mid-run in this process: keep what it recorded
    stopped_by = maxfail_stop(session, collector.stopped_by) or stepwise_stop(session, collector.stepwise_stopped_by)
    if STARTUP_ERROR_KEY in config.stash:
        stopped_by = None  # a startup error stopped it (exit 4: the run is set up wrong), not -x after a failed test
    if stopped_by is not None:
        # -x/--maxfail is a failure that stopped the run, the same under xdist (which raises it as an
        # interruption, exit 2) as without: exit 1, the report naming the test that stopped it.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    stopped = session.exitstatus not in FINISHED or session.shouldstop is not False or stopped_by is not None
    audits = collector.all_entries()
    models = _models(config, collector.models)
    error = config.stash.get(STARTUP_ERROR_KEY, None)
    if collector.collection_errors:
        error = "tests could not be collected: " + "; ".join(collector.collection_errors)
    run = _run_info(config, session.exitstatus, models)
    if (note := unselected_models_note(models, audits, run)) is not None:
        say_once(config, note, now=False)  # the terminal's notes too, not only the JSON (assemble would add it there)
    # pytest's exit 5 (nothing collected) of a shard left no test is its report's verdict, as any run's: not a pass
    left_none = shard_left_none(session)
    if (session.exitstatus == pytest.ExitCode.OK or left_none) and (any(a["outcome"] == "not_judged" for a in audits)
                                                                    or verdict_reasons(audits, run, models, stopped)):
        # A gate that could not be judged, or a run that judged nothing, has not passed: a CI job must not
        # read exit 0 as a pass.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        run["exit_status"] = int(session.exitstatus)
    data = assemble(run, models, audits, stopped=stopped, error=error, broken=bool(collector.collection_errors),
                    samples=collector.samples, stopped_by=stopped_by)
    config.stash[REPORT_KEY] = data
    return data


def maxfail_stop(session: pytest.Session, failed_test: str | None) -> dict[str, str] | None:
    """``{"test", "reason"}`` when -x/--maxfail stopped the run after ``failed_test``, else None (a run
    that ended by itself, or was interrupted)."""
    if failed_test is None:
        return None
    dsession = session.config.pluginmanager.get_plugin("dsession")
    # xdist's controller says it in its own shouldstop; pytest alone in the session's shouldfail.
    reason = getattr(dsession, "shouldstop", None) if dsession is not None else session.shouldfail
    if not isinstance(reason, str) or not reason.startswith("stopping after"):
        return None
    return {"test": failed_test, "reason": f"{reason} (-x/--maxfail)"}


def stepwise_stop(session: pytest.Session, failed_test: str | None) -> dict[str, str] | None:
    """``{"test", "reason"}`` when --stepwise stopped the run after ``failed_test`` failed: a stop after a failure, as
    -x's (exit 1, the test named), not an interruption (exit 2: Ctrl-C, SIGTERM)."""
    reason = session.shouldstop
    if failed_test is None or not isinstance(reason, str) or not reason.startswith(STEPWISE_STOP):
        return None
    return {"test": failed_test, "reason": f"{reason} (--stepwise)"}


def shard_left_none(session: pytest.Session) -> bool:
    """A shard's run (``--audit-shard``) that pytest ended with exit 5, nothing collected: the selection left it no test.
    Not one pytest refused (a test path that does not exist, exit 4) or that was interrupted (2): as any run's, those
    write no report. Decided at the first call, in the session's finish, before its report turns the 5 into a 1."""
    config = session.config
    if SHARD_LEFT_NONE_KEY not in config.stash:
        settings = config.stash.get(SETTINGS_KEY, None)
        config.stash[SHARD_LEFT_NONE_KEY] = (settings is not None and settings.shard is not None
                                             and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
                                             and not config.getoption("collectonly", False))
    return config.stash[SHARD_LEFT_NONE_KEY]


def ran_no_test(session: pytest.Session) -> bool:
    """No test began and nothing stopped the run at startup or broke it: --collect-only, all deselected. Not a shard's
    run the selection left no test (:func:`shard_left_none`): its report says it ran nothing, so that ``visionaudit
    merge`` can join it."""
    config = session.config
    if config.getoption("collectonly", False):
        return True
    collector = get_collector(config)
    return not shard_left_none(session) and (
        collector is not None and not collector.ran_any and STARTUP_ERROR_KEY not in config.stash
        and not collector.collection_errors)


def _report_path(config: pytest.Config) -> Path | None:
    path = config.getoption("audit_json", None)
    return Path(path) if path else None


def check_report_path(path: str | None, flag: str = "--audit-json", example: str = "report.json") -> None:
    """Refuse a report path (``flag``) the report cannot be written to, now rather than after the run."""
    problem = None if path is None else output_problem(path, flag, example, optional=True)
    if problem:
        raise pytest.UsageError(problem)


@pytest.hookimpl(tryfirst=True)  # before the settings: a bad path is refused before anything else
def pytest_cmdline_main(config: pytest.Config) -> None:
    path = config.getoption("audit_json", None)
    check_report_path(path)
    if path and not hasattr(config, "workerinput") and not config.getoption("collectonly", False):
        # Taken before configure, so that a config error's report (written at unconfigure) is written under it too.
        try:
            config.stash[LOCK_KEY] = acquire(path, command_line(sys.argv[0], config.invocation_params.args))
        except VisionAuditError as e:
            raise pytest.UsageError(str(e)) from None


@pytest.hookimpl(trylast=True)  # after the collector (plugins' configure hooks run last-registered first)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[START_KEY] = time.time()
    collector = get_collector(config)
    path = _report_path(config)
    if collector is None or path is None or config.getoption("collectonly", False):
        return
    settings = get_settings(config)
    journal = journal_path(path)
    if journal.exists():  # we hold the report's lock, so its writer is gone: a killed run's, not yet rebuilt; keep it
        kept = journal.with_name(f"{journal.name}.{int(journal.stat().st_mtime)}")
        journal.rename(kept)
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"{journal} of an earlier, killed run was kept as {kept}; rebuild its report with "
            f"python -m visionaudit report --from-journal {kept} -o REPORT.json"), stacklevel=2)
    collector.journal = JournalWriter(journal)
    page = config.getoption("audit_html", None)  # rendered again from the report rebuilt from this journal: named from
    # the report's folder, so that a journal moved with its page (a CI artifact) still finds it
    collector.journal.write("run", run=_run_info(config, None, {}), models=list(settings.models),
                           spellings=dict(settings.spellings), canonicals=dict(settings.canonicals),
                           html=os.path.relpath(Path(page).resolve(), path.resolve().parent) if page else None,
                           page_inputs=_page_inputs(config, settings) if page else None)
    journal_note = collector.journal.write  # the run line holds the notes said so far; later ones follow as said
    config.stash[NOTE_SINK_KEY] = lambda note: journal_note("note", note=note)


def _page_inputs(config: pytest.Config, settings) -> dict[str, Any]:
    """What the run's page is drawn with beside the report, for the page rebuilt from the journal (plugins/html_page.py
    draws the run's own with the same)."""
    from visionaudit.data.image_sets import data_root
    from visionaudit.html.page_inputs import page_inputs

    try:
        root = data_root(settings.data)
    except Exception:  # noqa: BLE001  (no data root: the run's page has no images either)
        root = None
    return page_inputs(config.getoption("audit_shape_bias_reference", None) or (), root, settings.images)


def _journal_selection(config: pytest.Config) -> None:
    """The selection into the journal once it is known, so that a report rebuilt from it says a subset too."""
    collector = get_collector(config)
    if collector is None or collector.journal is None or SELECTION_JOURNALED in config.stash:
        return
    chosen = selection(config, len(collector.collected))
    if chosen is not None:
        config.stash[SELECTION_JOURNALED] = True
        collector.journal.write("selection", selection=chosen)


@pytest.hookimpl(trylast=True)  # after the collector has the collected tests
def pytest_collection_finish(session: pytest.Session) -> None:
    _journal_selection(session.config)


@pytest.hookimpl(trylast=True, optionalhook=True)  # after the collector polled the worker's count
def pytest_xdist_node_collection_finished(node, ids) -> None:
    _journal_selection(node.config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    data = report_data(session)
    path = _report_path(session.config)
    if data is None or path is None:
        return
    collector = get_collector(session.config)
    if ran_no_test(session):  # nothing measured: a report from an earlier run at this path stays as it was
        session.config.stash[WRITTEN_KEY] = False
        if collector is not None and collector.journal is not None:
            collector.journal.close(remove=True)
        return
    if collector is not None and collector.journal is not None:
        collector.journal.write("end", exit_status=int(session.exitstatus))
    write_atomically(path, data)
    session.config.stash[WRITTEN_KEY] = True
    if collector is not None and collector.journal is not None:
        collector.journal.close(remove=True)  # the report holds everything now


def startup_report(config: pytest.Config) -> dict[str, Any] | None:
    """The report of a run that stopped before its session began (a usage or config error), else None."""
    error = config.stash.get(STARTUP_USAGE_ERROR_KEY, None)
    if error is None or REPORT_KEY in config.stash or hasattr(config, "workerinput"):
        return None  # not ours to explain (pytest's own usage errors), or the session ran
    return assemble(_run_info(config, int(pytest.ExitCode.USAGE_ERROR), {}), {}, [], error=error)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run that stopped before its session began (a usage or config error) still leaves a report."""
    path = _report_path(config)
    lock = config.stash.get(LOCK_KEY, None)
    if path is not None and WRITTEN_KEY not in config.stash and lock is not None:
        data = startup_report(config)
        if data is not None:
            write_atomically(path, data)
    if lock is not None:
        lock.release()
