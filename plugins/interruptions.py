"""How a run is stopped: SIGTERM (a cancelled or timed-out CI job) is Ctrl-C, so the report is written
and the run exits 2; a test past its time limit is stopped by pytest-timeout and ends as ``timeout``
(plugins/collector.py reads pytest-timeout's message, or its kill of a worker)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

DEFAULT_TIMEOUT = 1800.0  # seconds per test: far above the slowest audit on a 2-core CPU (about a minute)
WORKER_EXIT_SECONDS = 0.5  # after an interruption: how long an idle worker has to exit before it is killed
TIMEOUT_KEY = pytest.StashKey[float]()
_PREVIOUS_KEY = pytest.StashKey[dict]()


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def effective_timeout(config: pytest.Config) -> float | None:
    """The per-test limit in force: --audit-timeout, else pytest-timeout's own setting, else the default."""
    return config.stash.get(TIMEOUT_KEY, None)


def _configure_timeout(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("timeout"):
        return
    from .settings import get_settings

    asked = get_settings(config).timeout
    if asked is not None:
        config.option.timeout = asked  # ours was asked for by name: it wins
    elif config.getoption("timeout", None) is None and not os.environ.get("PYTEST_TIMEOUT") and not config.getini("timeout"):
        config.option.timeout = DEFAULT_TIMEOUT  # a user's --timeout, PYTEST_TIMEOUT or ini timeout is left alone
    if config.getoption("timeout_method", None) is None and not config.getini("timeout_method") and hasattr(signal, "SIGALRM"):
        # The signal method fails the test in its own process, which reports it with what it measured; the
        # thread method ends the whole worker (read as timeout all the same, but with less said).
        config.option.timeout_method = "signal"
    from pytest_timeout import get_env_settings

    config.stash[TIMEOUT_KEY] = get_env_settings(config).timeout


def pytest_configure(config: pytest.Config) -> None:
    # After the settings (tryfirst) and, like every conftest plugin, before pytest-timeout reads its own.
    _configure_timeout(config)
    if threading.current_thread() is not threading.main_thread():
        return
    if hasattr(config, "workerinput"):
        # A CI job's SIGTERM reaches the whole process group; the controller decides, a worker waits to be told.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        config.stash[_PREVIOUS_KEY] = {signal.SIGTERM: signal.signal(signal.SIGTERM, _sigterm_as_interrupt)}


@pytest.hookimpl(tryfirst=True)  # before xdist's own sessionfinish, which takes its workers down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Once the run is ending, a second signal (GitHub Actions sends SIGINT, then SIGTERM) must not stop
    the report from being written; an interrupted run's workers are stopped at once."""
    previous = session.config.stash.get(_PREVIOUS_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        previous.setdefault(signal.SIGINT, signal.signal(signal.SIGINT, signal.SIG_IGN))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        _stop_workers_soon(session.config)


def _stop_workers_soon(config: pytest.Config) -> None:
    """xdist waits up to 10 s for each busy worker to finish its test before killing it, and GitHub
    Actions kills the whole job 7.5 s after its SIGTERM. Nothing is gained by waiting: the controller
    stopped reading the workers' reports when it was interrupted, and a test still running ends
    ``interrupted`` either way. So the workers get a moment to exit, then are killed."""
    nodemanager = getattr(config.pluginmanager.get_plugin("dsession"), "nodemanager", None)
    if nodemanager is not None and hasattr(nodemanager, "EXIT_TIMEOUT"):
        nodemanager.EXIT_TIMEOUT = min(nodemanager.EXIT_TIMEOUT, WORKER_EXIT_SECONDS)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        for signum, handler in previous.items():
            signal.signal(signum, handler)
