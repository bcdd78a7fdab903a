"""The collector: every collected test's true outcome, metrics and model, gathered on the controller.

Worker results arrive as ordinary test reports (the audit record rides in ``user_properties``, see
plugins/record_transport.py), so ``-n 0`` and ``-n 2`` collect the same entries. Each test is ``not_run`` from
collection, running from its start, and final at its end; what was running when the run stopped is
``interrupted``, a test whose worker died ``crashed`` (with the worker's last output), one that passed
its time limit ``timeout``. Every finished test goes to the journal as it finishes (visionaudit/report/journal.py).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from visionaudit.report.assembly import (
    OUTCOME_RANK,
    blank_entry,
    model_id_of,
    settle,
    unloaded_model,
)
from visionaudit.report.journal import JournalWriter

from .data_check import check_data, collection_meta
from .interruptions import effective_timeout
from .load_crashes import LOADING, how_it_ended, load_crash_error
from .record_transport import (
    NOT_JUDGED_KEY,
    RECORD_STASH,
    json_properties,
    model_of,
    record_of,
    user_error_of,
)
from .worker_channel import get_channel, worker_fault_output

COLLECTOR_KEY = pytest.StashKey["Collector"]()
STEPWISE_STOP = "Test failed, continuing from this test next run."  # what pytest's --stepwise sets as it stops the run
TIMEOUT_MARK = "from pytest-timeout"  # pytest-timeout's failure message ends with it


class Collector:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collected: list[str] = []
        self.meta: dict[str, dict[str, Any]] = {}  # nodeid -> audit, model, params, data (from collection)
        self.entries: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.finished: set[str] = set()
        self.crashed: dict[str, str] = {}
        self.loading: dict[str, dict[str, Any]] = {}  # worker -> the model load it began and has not ended
        self.loaded_last: dict[str, tuple[str, dict[str, Any]]] = {}  # worker -> the last model it loaded, its entry
        self.models: dict[str, dict[str, Any]] = {}
        self.samples: dict[str, dict[str, Any]] = {}  # role -> image set (sample ids), the report's `samples`
        self.first_error: dict[str, str] = {}  # message -> the first test that showed it
        self.first_timeout: dict[tuple, str] = {}  # (worker, message, where) -> the first setup that ran into the limit
        self.collection_errors: list[str] = []
        self.journal: JournalWriter | None = None
        self.ran_any = False  # a test began: the run measured something, and its report replaces the last
        self.failures = 0  # failed reports, counted as -x/--maxfail counts them
        self.stopped_by: str | None = None  # the failed test that reached --maxfail
        self.stepwise_stopped_by: str | None = None  # the failed (or crashed) test at which --stepwise stopped the run
        self.session: pytest.Session | None = None

    # -- what is known before tests run ------------------------------------------------------------

    def set_collected(self, nodeids: list[str]) -> None:
        if not self.collected:
            self.collected = list(nodeids)
            if self.journal:
                self.journal.write("collected", nodeids=self.collected)

    def add_meta(self, tests: dict[str, dict[str, Any]]) -> None:
        new = {k: v for k, v in tests.items() if k not in self.meta}
        if new:
            self.meta.update(new)
            if self.journal:
                self.journal.write("tests", tests=new)

    # -- reports -------------------------------------------------------------------------------------

    def _entry(self, nodeid: str) -> dict[str, Any]:
        if nodeid not in self.entries:
            self.entries[nodeid] = blank_entry(nodeid, self.meta.get(nodeid, {}), "passed")
        return self.entries[nodeid]

    def add(self, report: pytest.TestReport) -> None:
        rec = record_of(report)
        entry = self._entry(report.nodeid)
        if report.failed:
            self.failures += 1
            maxfail = self.config.getoption("maxfail", 0)
            if maxfail and self.failures >= maxfail and self.stopped_by is None:
                self.stopped_by = report.nodeid
        entry["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
        node = getattr(report, "node", None)  # set by xdist on reports from workers
        entry["worker"] = node.gateway.id if node is not None else None
        if rec is not None:
            entry["audit"] = rec["audit"]
            entry["params"] = rec["params"]
            entry["model"] = rec["model"] or entry["model"]  # an audit may name its own model (controls)
            for key in ("metrics", "thresholds", "tables"):
                entry[key].update(rec[key])
            if rec.get("control"):
                entry["control"] = rec["control"]
            for key in ("outcomes", "shard_data"):
                if rec.get(key):
                    entry[key] = rec[key]
            self.add_samples(rec.get("samples") or {})
            if rec.get("model_info") and rec["model"]:  # a model an audit loaded itself (the random-init controls)
                self.add_model(rec["model"], rec["model_info"])
        model = model_of(report)
        if model is not None:  # the run's model, as its fixture left it: loaded, or its load error
            self.add_model(model_id_of(model), model)
        outcome = _outcome(report)
        if outcome and (OUTCOME_RANK[outcome] > OUTCOME_RANK.get(entry["outcome"], -1) or outcome == "skipped"):
            entry["outcome"] = outcome
            entry["message"] = _message(report)
            if outcome == "skipped" and rec is not None and rec.get(NOT_JUDGED_KEY):
                entry["outcome"] = "not_judged"
            elif outcome in ("failed", "error") and entry["message"] and TIMEOUT_MARK in entry["message"]:
                entry["outcome"] = "timeout"  # in the test or in a fixture (a model load, a decode) alike
            elif outcome == "failed" and user_error_of(report):
                entry["outcome"] = "error"  # bad input, or the audit's own bug: not a failed gate
            self._say_once(report, entry)

    def add_model(self, model_id: str, info: dict[str, Any]) -> None:
        """What became of a model: its identity once any process loaded it, else its load error."""
        known = self.models.get(model_id)
        if known is not None and (known.get("loaded", True) or info.get("loaded") is False):
            return
        self.models[model_id] = info
        if self.journal:
            self.journal.write("model", id=model_id, info=info)

    def add_samples(self, samples: dict[str, dict[str, Any]]) -> None:
        new = {role: s for role, s in samples.items() if role not in self.samples}
        if new:
            self.samples.update(new)
            if self.journal:
                self.journal.write("samples", samples=new)

    def _say_once(self, report: pytest.TestReport, entry: dict[str, Any]) -> None:
        """The same error in many tests (a missing data folder, a model that will not load) is shown once."""
        if entry["outcome"] == "timeout" and entry["message"]:
            self._timeout_once(report, entry)
            return
        if entry["outcome"] != "error" or not entry["message"]:
            return  # a failed gate says its own numbers; only errors are shared
        first = self.first_error.setdefault(entry["message"], report.nodeid)
        if first != report.nodeid:
            entry["same_error_as"] = first
            report.longrepr = f"same error as {first} (shown there): {entry['message'].splitlines()[0][:200]}"

    def _timeout_once(self, report: pytest.TestReport, entry: dict[str, Any]) -> None:
        """A shared (session) fixture that timed out, a model load say, did so once, in the first test that used it;
        pytest re-raises its cached failure in the setup of every later test of that process, which never ran
        nor reached the limit. Those are errors pointing to the first timeout, not timeouts of their own."""
        limit = effective_timeout(self.config)
        # pytest-timeout's message is the same for every timeout: where it stopped tells them apart (a re-raised
        # fixture failure keeps its original traceback, so its innermost frame is the fixture's).
        crash = getattr(report.longrepr, "reprcrash", None)
        key = (entry["worker"], entry["message"], (crash.path, crash.lineno) if crash is not None else None)
        # pytest-timeout's clock starts a moment before the setup's, so a setup that ran into the limit itself
        # measures just under it; a re-raised one, next to nothing.
        if report.when != "setup" or limit is None or report.duration >= limit / 2:
            if report.when == "setup":  # a call's timeout is its own, never a shared fixture's
                self.first_timeout.setdefault(key, report.nodeid)
            return
        first = self.first_timeout.get(key)
        if first is None or first == report.nodeid:
            return
        said = entry["message"].splitlines()[0][:200]
        entry["outcome"] = "error"
        entry["same_error_as"] = first
        entry["message"] = f"a fixture it shares timed out in {first}, so this test never started: {said}"
        report.longrepr = f"same timeout as {first} (shown there; this test never started): {said}"

    def note_loading(self, worker: str, message: dict[str, Any]) -> None:
        """A worker's model load began or ended (plugins/load_crashes.py); both are journalled, so that the journal
        says which model was loading when the run died, and what a load that ended loaded."""
        model_id = message["model"]
        if message.get("state") == "start":
            self.loading[worker] = message
            if self.journal:
                self.journal.write("loading", id=model_id, worker=worker)
            return
        self.loading.pop(worker, None)
        if message.get("info"):  # the model's identity, should the worker die before a report carries it
            self.loaded_last[worker] = (model_id, message["info"])
        if self.journal:
            self.journal.write("load_ended", id=model_id, worker=worker, info=message.get("info"))

    def crash(self, nodeid: str, worker: str, how: str | None = None) -> None:
        channel = get_channel(self.config)
        if channel is not None:
            channel.poll()  # a load's start the worker told just before it died, too
        last = channel.last_lines(worker) if channel is not None else []
        limit = effective_timeout(self.config)
        ran = time.monotonic() - self.started.get(nodeid, time.monotonic())
        self.crashed[nodeid] = "timeout" if limit and ran >= limit else "crashed"
        loading = self.loading.pop(worker, None)
        fault = worker_fault_output(self.config, worker)
        loaded = self.loaded_last.pop(worker, None)
        if loaded is not None and loaded[0] not in self.models:  # it loaded, then its worker died (the batch-size
            self.add_model(*loaded)  # probe, say) before any report said so: loaded, as it was
        if loading is not None and self.crashed[nodeid] == "crashed":  # a load stopped at the time limit is a timeout's
            model_id = loading["model"]
            self.add_model(model_id, unloaded_model(model_id, loading.get("spec") or model_id,
                                                    load_crash_error(worker, how, fault), loading.get("canonical")))
            text = (f"worker {worker} died{f' ({how})' if how else ''} while loading its model {model_id}: the load "
                    "crashed the worker (a crash in native code, or the process ended itself), so this test never ran")
        elif self.crashed[nodeid] == "timeout":
            text = f"its time limit of {limit:g} s passed and its worker {worker} was stopped"
        else:
            text = f"worker {worker} died while running it (killed, out of memory, or a crash in native code)"
        if last:
            # Its last progress line says where it died (a forward pass, a decode), so it comes first; the
            # lines before it (its model's load, say) follow, oldest first.
            text += f"; its last progress: {last[-1]}"
            if len(last) > 1:
                text += "\nthe worker's output before that:\n" + "\n".join(last[-10:-1])
        if fault:
            text += "\nits fatal-error traceback (faulthandler):\n" + fault
        entry = self._entry(nodeid)
        entry["outcome"], entry["message"], entry["worker"] = self.crashed[nodeid], text, worker
        self.finish(nodeid)  # no logfinish comes from a dead worker

    def finish(self, nodeid: str) -> None:
        self.finished.add(nodeid)
        self.started.pop(nodeid, None)
        if self.journal and nodeid in self.entries:
            self.journal.write("finished", entry=self.entries[nodeid])

    def recover(self, items: list[pytest.Item]) -> None:
        """What a test that never finished had recorded, when it ran in this process (no xdist)."""
        for item in items:
            record = item.stash.get(RECORD_STASH, None)
            if item.nodeid in self.started and record is not None:
                entry = self._entry(item.nodeid)
                rec = record.to_dict()
                for key in ("metrics", "thresholds", "tables"):
                    entry[key].update(rec[key])
                for key in ("outcomes", "shard_data"):
                    if rec.get(key):
                        entry[key] = rec[key]
                self.add_samples(rec["samples"])

    def all_entries(self) -> list[dict[str, Any]]:
        """Every collected test: finished ones as they ended, the ones that began and did not finish
        interrupted (whatever stopped the run), the rest not run."""
        for nodeid in self.started:
            self._entry(nodeid)
        return settle(self.collected, self.meta, self.entries, self.finished)

    # -- hooks ----------------------------------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.set_collected([item.nodeid for item in session.items])
        self.add_meta(collection_meta(session.items))
        check_data(self.config, self.meta)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        channel = get_channel(self.config)
        if channel is not None:
            channel.poll()  # the worker sent its tests' families and data needs just before
        self.set_collected(list(ids))
        check_data(self.config, {i: self.meta.get(i, {}) for i in ids})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.ran_any = True
        self.started[nodeid] = time.monotonic()
        if self.journal:
            self.journal.write("started", nodeid=nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report, sched) -> None:
        node = getattr(report, "node", None)
        self.crash(crashitem, node.gateway.id if node is not None else "?", how_it_ended(node))
        # The terminal's failure section shows what the report holds (the last progress, faulthandler's traceback).
        report.longrepr = f"{report.longrepr}\n{self._entry(crashitem)['message']}"

    @pytest.hookimpl(tryfirst=True)  # before the terminal and junitxml: an error said once is shortened, the record JSON
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        json_properties(report)  # before junitxml writes them
        if report.nodeid in self.crashed and report.when == "???":
            return  # xdist's stand-in report of the crash: crash() has the better message
        self.add(report)

    # pytest reads only methods named pytest_*; the specname lets this class have a second logreport hook, run last
    @pytest.hookimpl(trylast=True, specname="pytest_runtest_logreport")
    def pytest_note_stepwise_stop(self, report: pytest.TestReport) -> None:
        """After stepwise's hook, so its stop is seen where it is made, for a crashed worker's stand-in report too (which
        add() never sees), and at the test that stopped it, not an earlier failure --sw-skip let pass."""
        stop = self.session.shouldstop if self.session is not None else False
        if self.stepwise_stopped_by is None and report.failed and isinstance(stop, str) and stop.startswith(STEPWISE_STOP):
            self.stepwise_stopped_by = report.nodeid

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.finish(nodeid)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a test file that does not import: its tests were never collected
            text = str(getattr(report, "longreprtext", "") or report.longrepr).strip().splitlines()
            self.collection_errors.append(f"{report.nodeid or '.'}: {text[-1] if text else 'collection failed'}")


def _outcome(report: pytest.TestReport) -> str | None:
    if report.when == "call":
        return "passed" if report.passed else ("failed" if report.failed else "skipped")
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


def _message(report: pytest.TestReport) -> str | None:
    if report.passed:
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    text = crash or getattr(report, "longreprtext", "") or str(longrepr)
    # xdist puts the worker's "[gw0] linux -- Python 3.11.7 ..." line first: where it ran, not what went wrong.
    text = re.sub(r"^\[gw\d+\] .* -- Python [^\n]*\n", "", text)
    # The assertion's own message is the readable part; pytest's introspection follows it.
    text = text.split("\nassert ")[0].split("\n +  where")[0]
    return text.strip()[-2000:] or None


def get_collector(config: pytest.Config) -> Collector | None:
    return config.stash.get(COLLECTOR_KEY, None)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        collector = config.stash[COLLECTOR_KEY] = Collector(config)
        config.pluginmanager.register(collector, "visionaudit-collector")
        channel = get_channel(config)
        if channel is not None:
            channel.subscribe(lambda worker, message: message.get("kind") == "tests" and collector.add_meta(message["tests"]))
            channel.subscribe(lambda worker, message: message.get("kind") == LOADING and collector.note_loading(worker, message))
