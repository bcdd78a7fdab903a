"""Runs of pytest in a subprocess: of the real audits (their report read back and validated against the schema), or
of a test project that a test wrote (a pytester folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import torch

from tests import warm_runs
from visionaudit.families.records import report_schema

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests.tiny_models:tiny"


def audit(tmp_path: Path, shared_data: Path, name: str, *args: str, model: str = TINY,
          timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    # this process's share of the cores, also for the runs of session fixtures (tests/conftest.py, _a_core_share_for_runs)
    env.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
    env["PYTEST_ADDOPTS"] = with_unused_plugins_off(env.get("PYTEST_ADDOPTS", ""))  # also for session fixtures' runs
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
        env.pop(var, None)
    report = tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "--model", model, "--device", "cpu",
           f"--audit-json={report}", *args]
    proc = warm_runs.run(cmd, ROOT, env, timeout)
    data = json.loads(report.read_text()) if report.exists() else None
    if data is not None:
        jsonschema.validate(data, report_schema())
    return proc, data


# Installed pytest plugins that no audit uses, each costing every pytest process of a run the tests start (controller
# and xdist workers) CPU time at its start, measured on this project's 2-core machine: hypothesis's about a second
# (more on a loaded machine), anyio's (which imports trio) about 0.4 s. And pytest's own unraisableexception plugin,
# which collects all the garbage as each process ends (pytest 9's gc_collect_harder, to surface exceptions raised in
# __del__ as warnings): about 0.5 s of a 5.5 s run of the tiny model, in a process holding torch; no test reads such
# warnings of the runs it starts.
UNUSED_PLUGINS = ("hypothesispytest", "anyio", "unraisableexception")


def with_unused_plugins_off(addopts: str = "") -> str:
    """PYTEST_ADDOPTS ``addopts`` with UNUSED_PLUGINS turned off."""
    return " ".join([addopts.strip(), *(f"-p no:{name}" for name in UNUSED_PLUGINS if f"-p no:{name}" not in addopts)]).strip()


# This run's own pytest variables: a run started with them would take itself for one of this run's xdist workers.
THIS_RUN = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST")


def project_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra``, less this run's own pytest variables, for a run in a test project."""
    env = {**os.environ, **extra}
    for var in THIS_RUN:
        env.pop(var, None)
    return env


def run_project(path: Path, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    """``pytest *args`` in the test project at ``path``, with ``env`` added to its environment; its output captured."""
    return warm_runs.run([sys.executable, "-m", "pytest", *args], path, project_env(**env), timeout)


def root_plugins() -> list[str]:
    """The plugins the root conftest.py names."""
    namespace: dict = {}
    exec((ROOT / "conftest.py").read_text(), namespace)
    return list(namespace["pytest_plugins"])


def suite_conftest() -> str:
    """The conftest.py of a test project wired to the suite's plugins and fixtures, as the root conftest wires them
    (tests/conftest.py's suite fixture writes it with pytester)."""
    return f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
pytest_plugins = {root_plugins()!r}
"""


SUITE_INI = "[pytest]\nmarkers =\n    audit(name): audit family\n"


def run_as_pytester(path: Path, *args: str, timeout: float = 240, **extra: str) -> subprocess.CompletedProcess:
    """``pytest *args`` in the test project at ``path`` as a quick test's ``suite.runpytest_subprocess`` runs it, for a
    run made outside any test (a shared one, tests/once.py): the environment that tests/conftest.py's autouse fixtures,
    pytester and the projects' fixtures give it (no real data, an empty user cache, this process's share of the cores,
    no unused plugins, the suite on PYTHONPATH, a home of its own), with ``extra`` added."""
    env = project_env()
    for var in ("VISIONAUDIT_DATA", "TOX_ENV_DIR", "GITHUB_STEP_SUMMARY"):
        env.pop(var, None)
    (path / "user-cache").mkdir(exist_ok=True)
    env.update(VISIONAUDIT_CACHE=str(path / "user-cache"), HOME=str(path), USERPROFILE=str(path), PY_COLORS="0",
               PYTEST_ADDOPTS=with_unused_plugins_off(),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS") or str(torch.get_num_threads()),
               PYTHONPATH=os.pathsep.join(filter(None, [str(path), str(ROOT), os.environ.get("PYTHONPATH", "")])), **extra)
    return warm_runs.run([sys.executable, "-m", "pytest", f"--basetemp={path / 'basetemp'}", *args], path, env, timeout,
                         stdin_devnull=True)
