"""The collector: every test's outcome, metrics and model, gathered on the controller.

Worker results arrive as ordinary test reports (the audit record rides in ``user_properties``, see
plugins/recording.py), so ``-n 0`` and ``-n 2`` collect the same entries.
"""

from __future__ import annotations

from typing import Any

import pytest

from visionaudit.report import OUTCOME_RANK

from .recording import record_of

COLLECTOR_KEY = pytest.StashKey["Collector"]()


class Collector:
    def __init__(self) -> None:
        self.collected: list[str] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.crashed: list[str] = []
        self.seen: set[str] = set()  # every test with a report, audit or not
        self.models: dict[str, dict[str, Any]] = {}

    def add(self, report: pytest.TestReport) -> None:
        self.seen.add(report.nodeid)
        rec = record_of(report)
        entry = self.entries.get(report.nodeid)
        if entry is None:
            if rec is None:
                return  # not an audit
            entry = self.entries[report.nodeid] = {
                "nodeid": report.nodeid, "audit": rec["audit"], "model": rec["model"], "params": rec["params"],
                "outcome": "passed", "duration": 0.0, "metrics": {}, "thresholds": {}, "tables": {},
                "message": None, "worker": None,
            }
        entry["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
        node = getattr(report, "node", None)  # set by xdist on reports from workers
        entry["worker"] = node.gateway.id if node is not None else None
        if rec is not None:
            entry["model"] = rec["model"] or entry["model"]  # an audit may name its own model (controls)
            for key in ("metrics", "thresholds", "tables"):
                entry[key].update(rec[key])
            if rec.get("model_info") and rec["model"]:
                self.models[rec["model"]] = rec["model_info"]
        outcome = _outcome(report)
        if outcome and (OUTCOME_RANK[outcome] > OUTCOME_RANK[entry["outcome"]] or outcome == "skipped"):
            entry["outcome"] = outcome
            entry["message"] = _message(report)

    def not_run(self) -> list[str]:
        return sorted(n for n in self.collected if n not in self.seen)

    # -- hooks ----------------------------------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.collected:
            self.collected = [item.nodeid for item in session.items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if not self.collected:
            self.collected = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report, sched) -> None:
        self.crashed.append(crashitem)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.add(report)


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
    # The assertion's own message is the readable part; pytest's introspection follows it.
    text = text.split("\nassert ")[0].split("\n +  where")[0]
    return text.strip()[-2000:] or None


def get_collector(config: pytest.Config) -> Collector | None:
    return config.stash.get(COLLECTOR_KEY, None)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        collector = config.stash[COLLECTOR_KEY] = Collector()
        config.pluginmanager.register(collector, "visionaudit-collector")
