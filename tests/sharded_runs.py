"""Helpers of the sharding tests (tests/test_sharding*.py and the corruption family's): `visionaudit merge` run as a
user runs it, and the comparison of a merged report with the unsharded run's, field by field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.audit_runs import ROOT
from tests.once import load_process

TIMINGS = ("start", "end", "duration", "command", "phases", "merged_from", "exit_status", "workers")


def merge_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visionaudit", "merge", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def differences(a, b, path: str = "") -> list[str]:
    """Every place where two JSON documents differ (numbers exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in {'first' if k in a else 'second'}" for k in set(a) ^ set(b)]
        return out + [d for k in sorted(set(a) & set(b)) for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


def without_timings(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    for key in TIMINGS:
        report["run"].pop(key, None)
    for entry in report["audits"]:
        entry.pop("duration", None)
        entry.pop("worker", None)
    return report



def shard_names(*counts: int) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The unsharded run ("whole") and each part of ``counts`` shards ("I/N"): its report's name and its extra arguments."""
    return {"whole": ("whole", ())} | {f"{i}/{n}": (f"part{i}of{n}", ("--audit-shard", f"{i}/{n}"))
                                       for n in counts for i in range(1, n + 1)}


def load_runs(folder: Path, names: dict[str, tuple[str, tuple[str, ...]]]) -> dict[str, tuple[subprocess.CompletedProcess, dict]]:
    """The runs a session fixture made in ``folder`` (tests/once.py): each one's process and report, which must be there."""
    out = {key: (load_process(folder / f"{name}.process.json"),
                 json.loads((folder / f"{name}.json").read_text()) if (folder / f"{name}.json").exists() else None)
           for key, (name, _) in names.items()}
    for name, (proc, data) in out.items():
        assert data is not None and not data["error"], name + proc.stdout[-3000:] + proc.stderr[-3000:]
    return out
