"""The README's main command, as a user runs it: all audits on the default model and the real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema

from visionaudit.recording import report_schema

ROOT = Path(__file__).resolve().parents[1]


def test_main_job_runs_offline_on_cpu(shared_data, tmp_path):
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    # --audit-samples keeps this test short; the full run is the README's main command.
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pytest", "audits", "-n", "2", "-p", "no:cacheprovider", "--audit-samples", "200",
           "--device", "auto", f"--audit-json={report}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    jsonschema.validate(data, report_schema())
    assert data["models"]["efficientnet_lite0"]["device"] == "cpu"
    assert data["models"]["efficientnet_lite0"]["sha256"].startswith("57934424")
    (top1,) = [a for a in data["audits"] if a["audit"] == "accuracy"]
    assert top1["outcome"] == "passed" and top1["metrics"]["n_images"] == 200
    assert "visionaudit summary" in proc.stdout
