"""Work done once per test session and shared by its xdist workers (pytest-xdist's documented recipe, "Making
session-scoped fixtures execute only once"): the first worker to take a file lock builds the folder, the others wait
for it and read what it left. A module- or session-scoped fixture alone runs once per worker, and ``--dist load``
splits a module's tests across workers, so an expensive real run was made twice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

LOGIT_CACHE_ENV = "VISIONAUDIT_LOGIT_CACHE"  # visionaudit.models.logit_cache.CACHE_ENV


def session_dir(request: pytest.FixtureRequest) -> Path:
    """The folder every process of this session shares: the parent of a worker's own base temp under xdist,
    the base temp itself without it. A new session gets a new one, so nothing carries over between runs. A worker
    is told by its config (xdist's ``workerinput``), not by $PYTEST_XDIST_WORKER, which a run started from a worker
    (``-n 0``) inherits: it would have shared its parent's folder."""
    base = request.getfixturevalue("tmp_path_factory").getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base


def logit_cache_dir(request: pytest.FixtureRequest) -> Path:
    """The session's logit cache ($VISIONAUDIT_LOGIT_CACHE of the slow tests' runs), one for all the workers: its
    entries are written through a temporary file and a rename (visionaudit.models.logit_cache.store), so workers
    filling the same entry at once each leave a whole file, and its key makes a reused entry the same logits."""
    path = session_dir(request) / "logit-cache"
    path.mkdir(exist_ok=True)
    return path


def built_once(request: pytest.FixtureRequest, name: str, build: Callable[[Path], None]) -> Path:
    """``session_dir/name``, made by ``build(folder)`` in the first process that asks, whole. A build that raised
    is not tried again: the processes that ask after it fail at once, with its error (a retry would cost each
    waiting worker the same minutes, and fail the same way)."""
    root = session_dir(request)
    folder, done, failed = root / name, root / f"{name}.built", root / f"{name}.failed"
    with FileLock(str(root / f"{name}.lock")):
        if failed.exists():
            raise RuntimeError(f"{name}: its build failed in another worker of this session: {failed.read_text()}")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                build(folder)
            except BaseException as err:
                failed.write_text(f"{type(err).__name__}: {err}"[:3000])
                raise
            done.touch()
    return folder


def audit_once(request: pytest.FixtureRequest, shared_data: Path, name: str, *args: str, model: str,
               logit_cache: bool = True, timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict | None, Path]:
    """tests.audit_runs.audit run once per session for ``name`` (same arguments wherever it is asked for): its
    process (exit status and output, kept beside the report) and its report, and the report's path; on the
    session's logit cache unless ``logit_cache`` is False (see run_audit)."""

    def build(folder: Path) -> None:
        save_process(folder / "process.json", run_audit(request, folder, shared_data, name, *args, model=model,
                                                        logit_cache=logit_cache, timeout=timeout))

    folder = built_once(request, f"audit-{name}", build)
    proc = load_process(folder / "process.json")
    report = folder / f"{name}.json"
    return proc, (json.loads(report.read_text()) if report.exists() else None), report


def project_run_once(request: pytest.FixtureRequest, name: str, files: dict[str, str], *args: str,
                     **env: str) -> tuple[pytest.RunResult, Path]:
    """A test project run once per session and shared by the tests that check the same run: ``files`` (a conftest.py
    and pytest.ini as the suite fixture writes them unless given) in a folder of the session, ``pytest *args`` run in
    it as ``suite.runpytest_subprocess`` runs it (tests.audit_runs.run_as_pytester), with ``env`` added. Returns the
    run's result as pytester gives it, and the project's folder."""
    from tests.audit_runs import SUITE_INI, run_as_pytester, suite_conftest

    def build(folder: Path) -> None:
        for file, text in {"conftest.py": suite_conftest(), "pytest.ini": SUITE_INI, **files}.items():
            (folder / file).write_text(text)
        save_process(folder / "process.json", run_as_pytester(folder, *args, **env))

    folder = built_once(request, f"project-{name}", build)
    proc = load_process(folder / "process.json")
    return pytest.RunResult(proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines(), 0.0), folder


def run_audit(request: pytest.FixtureRequest, folder: Path, shared_data: Path, name: str, *args: str, model: str,
              logit_cache: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """tests.audit_runs.audit inside a build: its report at ``folder/name.json``; on the session's logit cache
    unless ``logit_cache`` is False (the run exactly as a user makes it)."""
    from tests.audit_runs import audit

    # A session fixture is set up before the function-scoped autouse one that points the slow tests' runs at the
    # shared logit cache (tests/conftest.py): point this run at it here, as that fixture would.
    with pytest.MonkeyPatch.context() as env:
        if not logit_cache:
            env.delenv(LOGIT_CACHE_ENV, raising=False)  # set by an earlier fixture, it would be read all the same
        elif not os.environ.get(LOGIT_CACHE_ENV):
            env.setenv(LOGIT_CACHE_ENV, str(logit_cache_dir(request)))
        proc, _ = audit(folder, shared_data, name, *args, model=model, timeout=timeout)
    return proc


def save_process(path: Path, proc: subprocess.CompletedProcess) -> None:
    """A finished process's exit status and output, for the workers that did not run it."""
    path.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                "stderr": proc.stderr}))


def load_process(path: Path) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(**json.loads(path.read_text()))
