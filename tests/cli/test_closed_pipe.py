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
