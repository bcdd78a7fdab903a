"""benchmarks/phases.py on a tiny setting, so that it cannot rot: every phase printed, the numbers consistent with
each other (phases inside their family's time, ratios and per-image figures from the seconds), the start-up
measured. No timing is asserted: the machine's speed is not the script's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.once import built_once, load_process, save_process

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("accuracy", "robustness", "corruption", "corruption-ahead")
PHASES = ("transforms", "corruption kernels", "JPEG round trip", "statistics", "report")


@pytest.fixture(scope="session")
def tiny_run(shared_data: Path, request: pytest.FixtureRequest):
    """The benchmark's run, made once per session and shared by the xdist workers (tests/once.py): module scope made
    it once per worker this module's tests went to (half a minute each)."""
    def build(folder: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "benchmarks/phases.py", "--data", str(shared_data), "--images", "6",
                               "--batch", "4", "--device", "cpu", "--model", "benchmarks.near_free:conv1x1",
                               "--corruption-severities", "1", "--startup-repeats", "1", "--startup-workers", "0",
                               "--json", str(folder / "phases.json")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
        save_process(folder / "phases.process.json", done)

    folder = built_once(request, "phases-benchmark", build)
    done = load_process(folder / "phases.process.json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads((folder / "phases.json").read_text())


@pytest.mark.slow
def test_every_phase_and_family_is_printed(tiny_run):
    stdout, _ = tiny_run
    header = next(line for line in stdout.splitlines() if line.strip().startswith("family"))
    for phase in PHASES:
        assert phase in header
    rows = {line.split()[0] for line in stdout.splitlines() if line.startswith("  ") and line.split()
            and line.split()[0] in FAMILIES}
    assert rows == set(FAMILIES)
    ahead = next(line.split() for line in stdout.splitlines() if line.split()[:1] == ["corruption-ahead"])
    assert ahead.count("-") == len(("corruption kernels", "JPEG round trip")), ahead  # in the threads: not timed
    assert "bare forward" in stdout and "decode 256/224 bilinear" in stdout
    assert "first forward pass after" in stdout


@pytest.mark.slow
def test_the_numbers_agree_with_each_other(tiny_run):
    _, data = tiny_run
    (model,) = data["models"]
    # written model by model (a run stopped at a time limit keeps what it finished), complete once the start-up is in
    assert data["complete"] is True and data["torch"] == torch.__version__ and data["device_name"] == "cpu"
    n = model["images"]
    assert n == 6
    # the defaults: 9 transforms at 1 severity; 15 corruptions (in turn, and again with threads ahead)
    passes = {"accuracy": 1, "robustness": 1 + 9, "corruption": 2 + 15, "corruption-ahead": 2 + 15}
    for family, row in model["families"].items():
        assert row["passes"] == passes[family]
        timed = {p: v for p, v in row["phases_s"].items() if v is not None}
        # the phases are timed inside the family's run, one after another: together no more than the whole
        assert sum(timed.values()) <= row["audit_s"] + 1e-3, family
        assert all(v >= 0 for v in timed.values())
        bare = model["forward_us"] * 1e-6 * n * row["passes"]
        assert row["bare_forward_s"] == pytest.approx(bare, rel=0.02, abs=2e-3)
        assert row["ratio"] == pytest.approx(row["audit_s"] / row["bare_forward_s"], rel=0.02)
        for phase, seconds in timed.items():
            assert row["phases_us"][phase] == pytest.approx(seconds / (n * row["passes"]) * 1e6, rel=0.02, abs=0.2)
        assert row["own_us"] == pytest.approx(max(0.0, row["audit_s"] - row["bare_forward_s"]) / (n * row["passes"]) * 1e6,
                                              rel=0.02, abs=0.2)
    rows = model["families"]
    # each family ran its own phases, and only those
    assert rows["robustness"]["phases_s"]["transforms"] > 0 and rows["corruption"]["phases_s"]["transforms"] == 0
    assert rows["corruption"]["phases_s"]["corruption kernels"] > 0 and rows["corruption"]["phases_s"]["JPEG round trip"] > 0
    assert rows["robustness"]["phases_s"]["corruption kernels"] == 0
    # as a run does it: the kernels and the JPEG round trip in the threads ahead, not timed (None, printed "-")
    ahead = rows["corruption-ahead"]
    assert ahead["phases_s"]["corruption kernels"] is None and ahead["phases_us"]["JPEG round trip"] is None
    assert ahead["phases_s"]["transforms"] == 0 and set(ahead["phases_s"]) == set(PHASES)
    assert all(rows[f]["phases_s"]["statistics"] > 0 and rows[f]["phases_s"]["report"] > 0 for f in FAMILIES)


@pytest.mark.slow
def test_start_up_is_measured(tiny_run):
    _, data = tiny_run
    first = data["startup"]["first_forward"]
    assert len(first["runs_s"]) == 1 and first["median_s"] == first["runs_s"][0] > 0
    imports = data["startup"]["controller_imports"]
    assert imports["seconds"] > 0 and isinstance(imports["torch_imported"], bool)


@pytest.mark.slow
def test_a_run_stopped_part_way_keeps_the_models_it_measured(shared_data: Path, tmp_path: Path):
    """The JSON is written model by model: a run that stops at its second model (here a model that cannot load; on a
    lent GPU, a step's time limit) keeps the first, marked not complete."""
    out = tmp_path / "phases.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "benchmarks/phases.py", "--data", str(shared_data), "--images", "4", "--batch", "4",
                           "--device", "cpu", "--families", "accuracy", "--startup-repeats", "0", "--json", str(out),
                           "--model", "benchmarks.near_free:conv1x1", "--model", "benchmarks.near_free:no_such_model"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "no_such_model" in done.stderr, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["complete"] is False and [m["model"] for m in data["models"]] == ["benchmarks.near_free:conv1x1"]
    assert data["models"][0]["families"]["accuracy"]["passes"] == 1
