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

from visionaudit.families.records import report_schema

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests.tiny_models:tiny"


def audit(tmp_path: Path, shared_data: Path, name: str, *args: str, model: str = TINY,
          timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    # this process's share of the cores, also for the runs of session fixtures (tests/conftest.py, _a_core_share_for_runs)
    env.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
        env.pop(var, None)
    report = tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "--model", model, "--device", "cpu",
           f"--audit-json={report}", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    data = json.loads(report.read_text()) if report.exists() else None
    if data is not None:
        jsonschema.validate(data, report_schema())
    return proc, data


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
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=path, env=project_env(**env), capture_output=True,
                          text=True, timeout=timeout)
