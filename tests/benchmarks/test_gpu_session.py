"""benchmarks/gpu_session.sh cannot rot unseen between the sessions lent a GPU: every script and test file it names
exists, every option it gives a benchmark is one the benchmark takes, each pytest selection it makes selects
tests, and each part refuses to start without the images part 1 carries (exit 4, saying what to do)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"


def _commands() -> list[list[str]]:
    """Each ``step NAME LIMIT COMMAND...`` of the script, its continuation lines joined, as the words after LIMIT."""
    text = re.sub(r"\\\n\s*", " ", SCRIPT.read_text())
    steps = [line.strip() for line in text.splitlines() if line.strip().startswith("step ")]
    # the Python one-liner's body is not a command line of its own: keep the words before it
    return [shlex.split(line.split(' -c "')[0])[3:] for line in steps]


def test_the_script_parses_and_names_every_step():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    commands = _commands()
    assert len(commands) == 8 and all(c[0] == "$PY" for c in commands), commands


@pytest.mark.slow(data=False)
def test_every_file_and_benchmark_option_it_names_exists():
    seen, helps = 0, {}
    for words in _commands():
        for word in words:
            if re.fullmatch(r"(benchmarks|tests)/[\w/]+\.py", word):
                assert (ROOT / word).is_file(), word
        if len(words) > 1 and words[1].startswith("benchmarks/"):
            if words[1] not in helps:  # one --help per script: each imports torch
                helps[words[1]] = subprocess.run([sys.executable, words[1], "--help"], cwd=ROOT, capture_output=True,
                                                 text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
            helped = helps[words[1]]
            assert helped.returncode == 0, helped.stderr[-2000:]
            for option in (w for w in words[2:] if w.startswith("--")):
                assert re.search(rf"{re.escape(option)}\b", helped.stdout), f"{words[1]} takes no {option}"
                seen += 1
    assert seen >= 10


@pytest.mark.slow(data=False)
def test_each_pytest_selection_selects_tests():
    for words in (w for w in _commands() if w[1:3] == ["-m", "pytest"]):
        args = [w for w in words[3:] if w not in ("-s", "-q", "-rs")]
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert re.search(r"^\d+(/\d+)? tests? (collected|selected)", done.stdout, re.M), done.stdout[-2000:]


def test_a_part_without_the_images_says_to_run_part_1_first(tmp_path):
    copy = tmp_path / "repo"
    (copy / "benchmarks").mkdir(parents=True)
    (copy / "benchmarks" / "gpu_session.sh").write_text(SCRIPT.read_text())
    for part in ("part1", "part2"):
        done = subprocess.run(["bash", str(copy / "benchmarks" / "gpu_session.sh"), part], capture_output=True, text=True,
                              env={**os.environ, "OUT": str(tmp_path / "out")}, check=False)
        assert done.returncode == 4 and "run part1 first (carry .gpu/data)" in done.stderr, done.stderr
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_part_2_on_a_fresh_machine_runs_on_the_images_it_carries_saying_so(tmp_path):
    copy = tmp_path / "repo"
    (copy / "benchmarks").mkdir(parents=True)
    (copy / "benchmarks" / "gpu_session.sh").write_text(SCRIPT.read_text())
    (copy / ".gpu" / "fallback" / "imagenet-sample").mkdir(parents=True)
    done = subprocess.run(["bash", str(copy / "benchmarks" / "gpu_session.sh"), "part2"], capture_output=True, text=True,
                          env={**os.environ, "OUT": str(tmp_path / "out"), "IMAGES": "1000"}, check=False)
    assert "lite0 runs on 300 images from .gpu/fallback" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 4  # and then stops: this copy has no wheels to install


def test_the_python_it_runs_inline_imports_names_that_exist():
    """The GPU-names step's inline Python runs only on the device: a renamed function would fail only there."""
    import importlib

    imports = re.findall(r"^from ([\w.]+) import (.+)$", SCRIPT.read_text(), re.M)
    assert imports, "the script's inline Python imports nothing from visionaudit any more: update this test"
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(loaded, name), f"{module} has no {name}"
