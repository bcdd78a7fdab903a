"""The start-up part of benchmarks/phases.py: the time from ``pytest audits`` to the first forward pass, beside the
xdist controller's import of the plugins (and whether torch came with it). Each runs in a fresh process, apart from
the per-model phases (which run in the benchmark's own)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def controller_imports() -> dict[str, Any]:
    """A fresh interpreter loading the plugins and fixtures and the family descriptors, as the xdist controller
    does at start-up: seconds, and whether torch came with them."""
    code = ("import time, sys; t = time.perf_counter(); import conftest, importlib\n"
            "for m in conftest.pytest_plugins: importlib.import_module(m)\n"
            "from visionaudit.families import families; families()\n"
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {"seconds": round(float(out[0]), 3), "torch_imported": out[1] == "True"}


def first_forward(spec: str, data: str, device: str, workers: int, repeats: int) -> dict[str, Any]:
    """Seconds from starting ``pytest audits`` to the first forward pass, ``repeats`` runs: median and all."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "first_forward.log"
            env = {**os.environ, "VISIONAUDIT_FIRST_FORWARD_LOG": str(log)}
            env.pop("VISIONAUDIT_LOGIT_CACHE", None)  # a cache hit runs no forward pass: nothing to time
            cmd = [sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-q", "-n", str(workers),
                   "-k", "test_clean_top1", "--audit-samples", "8", "--model", spec, "--audit-data", data,
                   "--device", device, "--audit-json", str(Path(tmp) / "r.json")]
            start = time.time()
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            if not log.exists():
                raise SystemExit(f"no forward pass in {' '.join(cmd)} (exit "
                                 f"{done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            times.append(min(float(line.split()[0]) for line in log.read_text().splitlines()) - start)
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times], "workers": workers,
            "command": f"pytest audits -n {workers} -k test_clean_top1 --audit-samples 8 --model {spec}"}
