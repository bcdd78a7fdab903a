"""Option values refused at startup (stop 40). An option given an empty value (an unset CI variable:
`--audit-baseline "$PREV"`) stops the run at startup, exit 4, naming the option: before, most were read as not given,
so `--audit-baseline ""` ran without the baseline gate and `--audit-images ""` audited the default images, each a pass
on what the user did not ask for; `--audit-config ""` and `--audit-imagenet-c ""` read the working directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUDIT = """
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_ran(model):
    open("ran.txt", "w").write(model.id)
"""
RUN = ("-p", "no:cacheprovider", "--device", "cpu", "--model", "tests.tiny_models:tiny")


@pytest.fixture
def team(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_audit=AUDIT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return suite


@pytest.mark.parametrize("flag", ["--audit-baseline", "--audit-images", "--audit-classes", "--audit-data", "--arch",
                                  "--audit-config", "--audit-cache", "--audit-imagenet-c", "--audit-baseline-as",
                                  "--audit-shape-bias-reference", "--device", "--audit-decode-memory"])
def test_an_empty_option_value_is_refused_at_startup_naming_the_option(team, flag):
    result = team.runpytest_subprocess(*RUN, f"{flag}=")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert f"{flag} is empty (an unset variable?); give " in output and f"or leave {flag} out" in output, output[-3000:]
    assert "Traceback" not in output
    assert not (team.path / "ran.txt").exists()


def test_an_empty_baseline_is_refused_under_xdist_and_in_the_report(team):
    result = team.runpytest_subprocess(*RUN, "-n", "2", "--audit-baseline", " ", "--audit-json", "report.json")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert "--audit-baseline is empty (an unset variable?)" in output and "Traceback" not in output
    data = json.loads((team.path / "report.json").read_text())
    assert data["verdict"] == "incomplete" and data["error"].startswith("--audit-baseline is empty"), data["error"]
    assert not (team.path / "ran.txt").exists()


@pytest.mark.parametrize("where", ["option", "environment", "config"])
def test_a_logit_cache_under_a_file_is_refused_at_startup(team, monkeypatch, where):
    """Stop 40: each write failed with a log line nobody saw, so every run computed its logits again."""
    (team.path / "cache").write_text("a file")
    args: list[str] = []
    if where == "option":
        args, said = ["--audit-cache", "cache/logits"], "--audit-cache cache/logits: cache is a file"
    elif where == "environment":
        monkeypatch.setenv("VISIONAUDIT_LOGIT_CACHE", "cache")
        said = "$VISIONAUDIT_LOGIT_CACHE cache: cache is a file"
    else:
        team.makefile(".toml", audit='[run]\ncache = "cache"\n')
        said = "[run] cache cache: cache is a file"  # audit.toml in the working directory: its paths as written
    result = team.runpytest_subprocess(*RUN, *args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert said in output, output[-3000:]
    assert "is a file, not a folder; give the logit cache a folder" in output and "Traceback" not in output
    assert not (team.path / "ran.txt").exists()


def test_a_logit_cache_path_that_cannot_be_looked_at_is_refused_without_a_traceback(team):
    """Review 40 F2: a path the check cannot stat (a name too long here; a folder the job user cannot enter in CI) was
    an INTERNALERROR (exit 3) with a traceback and no report."""
    long = "x" * 300  # over every file system's 255-byte name limit, and refused to root too
    result = team.runpytest_subprocess(*RUN, "--audit-cache", f"{long}/logits", "--audit-json", "report.json")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert f"--audit-cache {long}/logits: {long}/logits cannot be reached (File name too long); give a folder you " \
           "can write to, or leave the cache out" in output, output[-3000:]
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert json.loads((team.path / "report.json").read_text())["error"].startswith(f"--audit-cache {long}/logits: ")
    assert not (team.path / "ran.txt").exists()


def test_a_baseline_of_another_shape_stops_the_run_with_exit_4_and_the_report_says_so(team):
    """Review 40 F5 (1728e17's claim): a baseline whose audits is an object was an INTERNALERROR (exit 3) in the gate's
    startup, with no report written."""
    odd = json.loads((ROOT / "tests" / "report_fixtures" / "report_two_models.json").read_text())
    odd["audits"] = {"x": 1}
    (team.path / "odd.json").write_text(json.dumps(odd))
    result = team.runpytest_subprocess(*RUN, "--audit-baseline", "odd.json", "--audit-json", "r.json")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert "INTERNALERROR" not in output and "Traceback" not in output, output[-3000:]
    error = json.loads((team.path / "r.json").read_text())["error"]
    assert error.startswith("baseline report odd.json is not a whole visionaudit report: its audits is an object, not a "
                            "list"), error
    assert not (team.path / "ran.txt").exists()
