"""Progress a person can follow: each model's loading, decoding and forward passes, with images/s and
time left, from every worker (through plugins/worker_channel.py), quiet under -q; and the per-phase
timings the report carries (``run.phases``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from visionaudit import progress

from .collector import get_collector
from .settings import get_settings
from .worker_channel import get_channel, send

PHASES_KEY = pytest.StashKey[dict]()
LISTENER_KEY = pytest.StashKey[object]()
_print_lock = threading.Lock()


def _worth_printing(event: dict[str, Any], audited: tuple[str, ...]) -> bool:
    """Start and end lines for what takes long enough to wait for (the audited models' loading, large
    decodes and passes; not the 18 builds of random-init controls); updates come every few seconds anyway."""
    kind, phase, total = event["event"], event["phase"], event.get("total") or 0
    if kind == "update":
        return True
    if phase == "cache":  # a skipped clean pass, or a cache entry refused: said once, when it happens
        return kind == "start"
    if kind == "start":
        return (phase == "load" and event["subject"] in audited) or (phase == "decode" and total >= 50) or (
            phase == "forward" and total >= 200)
    big = event["subject"] in audited or total >= 200
    return big and event["seconds"] >= 2.0


def _show(config: pytest.Config, worker: str, event: dict[str, Any]) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or config.get_verbosity() < 0 or not _worth_printing(event, get_settings(config).models):
        return
    collector = get_collector(config)
    if collector is not None and collector.meta and not any(m.get("audit") for m in collector.meta.values()):
        return  # no audit in this run (the suite's own tests): their models' progress is noise
    line = f"visionaudit{'' if worker == 'main' else f' [{worker}]'} {progress.describe(event)}"
    capman = config.pluginmanager.get_plugin("capturemanager")
    with _print_lock:
        if worker == "main" and capman is not None:
            with capman.global_and_fixture_disabled():  # inside a test, output is captured
                _write(tr, line)
        else:
            _write(tr, line)


def _write(tr, line: str) -> None:
    if getattr(getattr(tr, "_tw", None), "width_of_current_line", 0):
        tr.write("\n")  # not on the end of a row of test dots
    tr.write_line(line)


def _record(config: pytest.Config, worker: str, event: dict[str, Any]) -> None:
    if event["event"] != "end":
        return
    key = (worker, event["subject"], event["phase"], event.get("what") or "")
    slot = config.stash[PHASES_KEY].setdefault(key, {"seconds": 0.0, "images": 0, "count": 0})
    slot["seconds"] += event["seconds"]
    slot["images"] += event.get("done") or 0
    slot["count"] += 1


def phase_timings(config: pytest.Config) -> list[dict[str, Any]]:
    """Per worker, model or image set, and phase: total seconds, images and calls, longest first."""
    rows = [{"worker": w, "subject": s, "phase": p, "what": what, "seconds": round(v["seconds"], 3), "images": v["images"],
             "count": v["count"]} for (w, s, p, what), v in list(config.stash.get(PHASES_KEY, {}).items())]
    return sorted(rows, key=lambda r: -r["seconds"])


def pytest_configure(config: pytest.Config) -> None:
    def listener(event: dict[str, Any]) -> None:
        send(config, {"kind": "progress", "event": event, "line": progress.describe(event)})

    config.stash[PHASES_KEY] = {}
    config.stash[LISTENER_KEY] = listener
    progress.subscribe(listener)
    channel = get_channel(config)
    if channel is not None:
        def handler(worker: str, message: dict[str, Any]) -> None:
            if message.get("kind") == "progress":
                _record(config, worker, message["event"])
                _show(config, worker, message["event"])

        channel.subscribe(handler)


@pytest.hookimpl(tryfirst=True)  # before xdist brings up its workers
def pytest_sessionstart(session: pytest.Session) -> None:
    """The first line, within a second of start: what will be audited, before workers and models load."""
    config = session.config
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or config.get_verbosity() < 0 or hasattr(config, "workerinput"):
        return
    settings = get_settings(config)
    n = len(settings.models)
    tr.write_line(f"visionaudit: {n} model{'s' if n != 1 else ''} ({', '.join(settings.models)}) on {settings.device}"
                  + (f", report {config.getoption('audit_json')}" if config.getoption("audit_json") else ""))


def pytest_unconfigure(config: pytest.Config) -> None:
    listener = config.stash.get(LISTENER_KEY, None)
    if listener is not None:
        progress.unsubscribe(listener)
