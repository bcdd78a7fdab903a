"""A command whose reader went away (`python -m visionaudit compare A B | head`): no BrokenPipeError traceback, and the
command's own exit code (a gate job under `set -o pipefail` reads it), for every command, in visionaudit/cli main()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.test_compare_releases import release
from visionaudit import exit_codes

ROOT = Path(__file__).resolve().parents[2]


BUFFERED = ("block-buffered", "unbuffered")  # a pipe's stdout: what is left in the buffer fails at exit, else at write


def into_a_closed_pipe(*argv: str, buffered: str = BUFFERED[0]) -> tuple[int, str]:
    """Run ``python -m visionaudit ARGV`` with its stdout a pipe whose reader is gone before the command writes (it
    is closed as the process starts, long before its imports are done), as `| head` leaves it after its lines."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update({"PYTHONUNBUFFERED": "1"} if buffered == "unbuffered" else {})
    proc = subprocess.Popen([sys.executable, "-m", "visionaudit", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        return proc.wait(timeout=120), err
    finally:
        proc.kill()


@pytest.mark.parametrize("buffered", BUFFERED)
@pytest.mark.parametrize("argv", [["families", "--thresholds"], ["--version"]])  # argparse's own output too
def test_a_command_whose_reader_went_away_exits_quietly(argv, buffered):
    returncode, err = into_a_closed_pipe(*argv, buffered=buffered)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert returncode == exit_codes.PASS, err


@pytest.mark.parametrize("buffered", BUFFERED)
def test_compare_into_a_closed_pipe_keeps_its_verdicts_exit_code(tmp_path, buffered):
    """The exit code is the comparison's, not one of the broken pipe: 0 for a pass, 1 for a verdict that is not pass."""
    passing, failed = tmp_path / "pass.json", tmp_path / "fail.json"
    passing.write_text(json.dumps({**release("a"), "aggregates": {}}))
    # OLD itself not a pass: compare's verdict is incomplete
    failed.write_text(json.dumps({**release("a"), "aggregates": {}, "verdict": "fail"}))
    for old, code in ((passing, exit_codes.PASS), (failed, exit_codes.NOT_PASS)):
        unpiped = subprocess.run([sys.executable, "-m", "visionaudit", "compare", str(old), str(passing)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
        assert unpiped.returncode == code, unpiped.stdout + unpiped.stderr  # what it exits with when read whole
        returncode, err = into_a_closed_pipe("compare", str(old), str(passing), buffered=buffered)
        assert "Traceback" not in err and "Exception ignored" not in err, err
        assert returncode == code, err


def stderr_into_a_closed_pipe(tmp_path: Path, *argv: str, with_stdout: bool = False) -> tuple[int, str]:
    """Run ``python -m visionaudit ARGV`` with its stderr a pipe whose reader is gone before the command writes, and its
    stdout too (``with_stdout``: ``2>&1 | head``) or a file (``2> >(head -1)``): the exit code and what the file holds.
    Python's own last words (a traceback, "Exception ignored") would go to that closed stderr: the exit code says them."""
    out = tmp_path / "stdout.txt"
    with open(out, "w") as stdout:
        if with_stdout:  # 2>&1: stderr onto stdout's pipe
            proc = subprocess.Popen([sys.executable, "-m", "visionaudit", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            proc.stdout.close()
        else:
            proc = subprocess.Popen([sys.executable, "-m", "visionaudit", *argv], cwd=ROOT, stdout=stdout,
                                    stderr=subprocess.PIPE)
            proc.stderr.close()
        try:
            return proc.wait(timeout=300), out.read_text()
        finally:
            proc.kill()


def test_an_error_said_into_a_closed_pipe_keeps_its_exit_code(tmp_path):
    """Stop 42's notes: the closed-pipe fix covered stdout only; a message on stderr to a reader gone (`merge A | head`
    with 2>&1, an error) ended in a BrokenPipeError, exit 1, not the command's 4."""
    part = tmp_path / "part.json"
    part.write_text("{}")
    args = ("merge", str(part), "-o", str(tmp_path / "merged.json"))
    unpiped = subprocess.run([sys.executable, "-m", "visionaudit", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert unpiped.returncode == exit_codes.USAGE and "is not a visionaudit report" in unpiped.stderr, unpiped.stderr
    for with_stdout in (False, True):
        assert stderr_into_a_closed_pipe(tmp_path, *args, with_stdout=with_stdout)[0] == exit_codes.USAGE


@pytest.mark.slow
def test_shape_bias_with_its_progress_into_a_closed_pipe_ends_quietly_with_its_result(tmp_path, shared_data):
    """`visionaudit shape-bias --model ... 2>&1 | head`: the progress on stderr (the load, the decoding, the forward
    passes) to a reader gone is dropped, and the command ends with its own exit code; with stdout a file, the result
    is written there whole."""
    args = ("shape-bias", "--model", "tests.tiny_models:tiny", "--device", "cpu", "--data", str(shared_data))
    returncode, out = stderr_into_a_closed_pipe(tmp_path, *args)
    assert returncode == exit_codes.PASS, out
    assert json.loads(out)["model"] == "tests.tiny_models:tiny" and 0 <= json.loads(out)["shape_bias"] <= 1
    assert stderr_into_a_closed_pipe(tmp_path, *args, with_stdout=True)[0] == exit_codes.PASS
