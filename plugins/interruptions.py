"""How a run is stopped: SIGTERM (a cancelled or timed-out CI job) is Ctrl-C, so the report is written
and the run exits 2; a test past ``--audit-timeout`` is stopped by pytest-timeout and ends as
``timeout`` (plugins/collector.py reads pytest-timeout's message, or its kill of the worker)."""

from __future__ import annotations

import signal
import threading

import pytest

DEFAULT_TIMEOUT = 1800.0  # seconds per test: far above the slowest audit on a 2-core CPU (about a minute)
_PREVIOUS_KEY = pytest.StashKey[object]()


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads its settings
def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin("timeout") and config.getoption("timeout", None) is None:
        config.option.timeout = config.getoption("audit_timeout", None) or DEFAULT_TIMEOUT
        if hasattr(signal, "SIGALRM"):
            # The signal method fails the test in its own process and reports it; the thread method
            # would end the whole worker (still read as timeout, but with less said).
            config.option.timeout_method = "signal"
    if threading.current_thread() is not threading.main_thread():
        return
    if hasattr(config, "workerinput"):
        # A CI job's SIGTERM reaches the whole process group; the controller decides, a worker waits to be told.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        config.stash[_PREVIOUS_KEY] = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
