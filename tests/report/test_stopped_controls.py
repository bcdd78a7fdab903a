"""Random-init controls that a run stopped in, or never reached, are reported under their model and fold into
the controls' row like the finished ones: after SIGTERM, and in a report rebuilt from a killed run's journal.

A real run (a subprocess) of three controls: the first is built and judged, the second stops the run while it
runs, the third never runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.audit_runs import run_project
from visionaudit.families.records import report_schema

ROOT = Path(__file__).resolve().parents[2]
# New processes, not fork server children (tests/warm_runs.py): its runs signal their own controller (found as their parent).
pytestmark = pytest.mark.real_process
CONTROLS = ("resnet18", "squeezenet1_1", "mobilenet_v2")  # small: built in a second on a loaded machine

AUDIT = """
import os
import signal
import time

import pytest

from tests.journal_waits import when_journal_shows
from visionaudit.families.channel_bias import weight_bias

pytestmark = pytest.mark.audit("channel_bias")


def controller():
    return os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()


@pytest.mark.parametrize("arch", %r)
def test_random_init_control(arch, control_model, assess, request):
    if arch == %r:  # the second control: stop the run while it runs, before it built its model
        when_journal_shows(("started", request.node.nodeid))  # its start is journalled: interrupted, not not_run
        os.kill(controller(), getattr(signal, os.environ["STOP_WITH"]))
        if os.environ.get("PYTEST_XDIST_WORKER"):
            os._exit(0)  # a worker left behind by its killed controller ends too
        time.sleep(60)
    model = control_model(arch)
    assess("random_init_control", weight_bias(model), model=model.id, arch=arch)
""" % (CONTROLS, CONTROLS[1])


@pytest.fixture
def project(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_controls=AUDIT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def run(project: pytest.Pytester, stop_with: str, *args: str) -> subprocess.CompletedProcess:
    return run_project(project.path, "--model", "tests.tiny_models:tiny", "--device", "cpu", "-p", "no:cacheprovider",
                       "--audit-json=report.json", *args, timeout=300, STOP_WITH=stop_with)


def check(data: dict, terminal: str, html: str) -> None:
    jsonschema.validate(data, report_schema())
    entries = {e["params"]["arch"]: e for e in data["audits"]}
    assert {a: e["outcome"] for a, e in entries.items()} == dict(zip(CONTROLS, ("passed", "interrupted", "not_run")))
    for arch, e in entries.items():  # each under its control's own spec, in the controls' group
        assert e["model"] == f"torchvision:{arch}:none" and e["control"] == "random-init controls", e
    row = re.search(r"^3 random-init controls +channel_bias .*$", terminal, re.MULTILINE)
    assert row and re.search(r" INTERRUPTED +1/3 passed, 1 interrupted, 1 not run$", row.group(0)), terminal
    assert not re.search(r"^None ", terminal, re.MULTILINE), terminal
    assert "<code>3 random-init controls</code>" in html and not re.search(r"<code>\s*None\s*</code>", html)


@pytest.mark.slow(data=False)
def test_controls_a_sigterm_stopped_are_under_their_model(project):
    proc = run(project, "SIGTERM", "--audit-html=report.html")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout[-3000:] + proc.stderr[-3000:]
    check(json.loads((project.path / "report.json").read_text()), proc.stdout, (project.path / "report.html").read_text())


@pytest.mark.slow(data=False)
def test_controls_of_a_killed_run_are_under_their_model_when_rebuilt(project):
    proc = run(project, "SIGKILL", "-n", "1")  # the tests' parameters reach the journal from the worker's collection
    assert proc.returncode == -9, proc.stdout[-3000:] + proc.stderr[-3000:]
    journal = project.path / "report.json.journal.jsonl"
    cli = [sys.executable, "-m", "visionaudit"]
    rebuilt = subprocess.run([*cli, "report", "--from-journal", str(journal)], capture_output=True, text=True,
                             timeout=120, cwd=project.path)
    assert rebuilt.returncode == 1, rebuilt.stdout + rebuilt.stderr  # rebuilt; a killed run's verdict is incomplete
    page = subprocess.run([*cli, "html", "report.json", "-o", "page.html"], capture_output=True, text=True, timeout=120,
                          cwd=project.path)
    assert page.returncode in (0, 1), page.stderr
    check(json.loads((project.path / "report.json").read_text()), rebuilt.stdout, (project.path / "page.html").read_text())


def test_the_controller_names_each_control_by_its_canonical_spec():
    from visionaudit.models.controls import CONTROL_ZOO, control_spec
    from visionaudit.models.specs import canonical_spec

    assert all(canonical_spec(control_spec(arch)) == control_spec(arch) for arch in CONTROL_ZOO)
