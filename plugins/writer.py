"""The writer: the collected entries become the report (``--audit-json PATH``), written atomically at
session end, also after Ctrl-C or a crashed worker, saying what did not finish."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from visionaudit.report import assemble, gpu_names, software_versions, write_atomically

from .collector import get_collector
from .settings import get_settings

REPORT_KEY = pytest.StashKey[dict]()
START_KEY = pytest.StashKey[float]()


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def _run_info(config: pytest.Config, exitstatus: int | None, models: dict[str, Any]) -> dict[str, Any]:
    settings = get_settings(config)
    start, end = config.stash.get(START_KEY, time.time()), time.time()
    return {
        "start": _iso(start),
        "end": _iso(end),
        "duration": round(end - start, 3),
        "command": " ".join([Path(sys.argv[0]).name, *map(str, config.invocation_params.args)]),
        "exit_status": int(exitstatus) if exitstatus is not None else None,
        "versions": {**software_versions(config.rootpath), "pytest": pytest.__version__},
        "platform": platform.platform(),
        "devices": sorted({m["device"] for m in models.values() if m.get("device")}) or [settings.device],
        "gpus": gpu_names(),
        "workers": len(config.getvalue("tx") or ()) if config.pluginmanager.has_plugin("dsession") else 0,
        "seed": settings.seed,
        "samples": settings.samples,
        "config_file": str(settings.config.path) if settings.config.path else None,
    }


def report_data(session: pytest.Session) -> dict[str, Any] | None:
    """The report of this run, built once at session end (None in an xdist worker)."""
    config = session.config
    if REPORT_KEY in config.stash:
        return config.stash[REPORT_KEY]
    collector = get_collector(config)
    if collector is None:
        return None
    settings = get_settings(config)
    audits = list(collector.entries.values())
    # Every model an audit loaded (configured ones and an audit's own, like the channel-bias
    # controls), then the configured ones that never loaded, with the reason.
    models: dict[str, Any] = dict(collector.models)
    for mid in settings.models:
        if mid not in models:
            errors = [e["message"] for e in audits if e["model"] == mid and e["outcome"] == "error"]
            models[mid] = {"spec": mid, "spec_as_given": settings.spellings.get(mid, mid), "loaded": False,
                           "error": errors[0] if errors else None}
    exitstatus = session.exitstatus
    incomplete = {"interrupted": exitstatus == pytest.ExitCode.INTERRUPTED, "crashed": sorted(set(collector.crashed)),
                  "not_run": collector.not_run()}
    data = assemble(_run_info(config, exitstatus, models), models, audits, incomplete)
    config.stash[REPORT_KEY] = data
    return data


def pytest_configure(config: pytest.Config) -> None:
    config.stash[START_KEY] = time.time()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    data = report_data(session)
    path = session.config.getoption("audit_json")
    if data is not None and path:
        write_atomically(Path(path), data)
