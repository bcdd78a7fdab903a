"""The README's main command, as a user runs it: all audits on the default model and the real data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_main_job_runs_offline_on_cpu(shared_data, tmp_path):
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    # --audit-samples keeps this test short; the full run is the README's main command.
    cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "--audit-samples", "200", "-rA",
           "--device", "auto"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_clean_top1[efficientnet_lite0] PASSED" in proc.stdout or "PASSED audits/test_accuracy.py::test_clean_top1[efficientnet_lite0]" in proc.stdout
