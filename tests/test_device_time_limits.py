"""A time limit hit while a process resolves its models' device (the session fixture ``audit_device``, which in a
single process imports torch first): the load it stopped says so, and each later model of the process, whose load
pytest fails with the same kept fixture failure, says its load never began (fixtures/models.py). Moved from
tests/test_faults.py, whose runs these follow."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.audit_runs import run_project
from visionaudit.families.records import report_schema

ROOT = Path(__file__).resolve().parents[1]
# New processes, not fork server children (tests/warm_runs.py): runs check their imports, a hung run is stopped.
pytestmark = pytest.mark.real_process
ARGS = ["test_device.py", "--model", "tests.tiny_models:tiny", "--device", "cpu", "-p", "no:cacheprovider",
        "--audit-json=report.json"]
SLOW_DEVICE = """
import time

import pytest

pytestmark = pytest.mark.audit("accuracy")


@pytest.fixture(scope="session")
def audit_device():  # the worker's device, as slow to come as torch's first import on a loaded machine
    time.sleep(60)


def test_d(model, record):
    record.metric("clean_top1", 0.9)
"""


@pytest.fixture
def project(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_device=SLOW_DEVICE)
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def run(project: pytest.Pytester, *args: str) -> subprocess.CompletedProcess:
    return run_project(project.path, *ARGS, *args)


def report(project: pytest.Pytester) -> dict:
    data = json.loads((project.path / "report.json").read_text())
    jsonschema.validate(data, report_schema())
    return data


def outcomes(data: dict) -> dict[str, str]:
    return {a["nodeid"]: a["outcome"] for a in data["audits"]}


@pytest.mark.slow(data=False)
def test_a_time_limit_hit_finding_the_models_device_is_that_loads_reason(project):
    """In a single process the device's fixture imports torch first: a time limit hit there left the model's entry
    with no error (fixflaky, stop 35)."""
    proc = run(project, "--audit-timeout", "5")
    data = report(project)
    assert outcomes(data) == {"test_device.py::test_d[tests.tiny_models:tiny]": "timeout"}, proc.stdout[-2000:]
    info = data["models"]["tests.tiny_models:tiny"]
    assert info["loaded"] is False and "Timeout (>5.0s)" in (info["error"] or ""), info


@pytest.mark.slow(data=False)
def test_each_later_model_says_its_load_never_began_not_the_first_models_timeout(project):
    """Stop 37: pytest keeps the failed session fixture of the device and re-raises it for every later model of the
    process, which said the first model's timeout as its own load's reason ("the load was stopped: Timeout")."""
    # torch imported at collection, as an xdist worker imports it at its start: the limit is hit finding the device,
    # not in torch's first import (which a loaded machine can stretch past it)
    project.makepyfile(test_device="import torch  # noqa: F401\nimport visionaudit.models.loading  # noqa: F401\n" + SLOW_DEVICE)
    first, later = "tests.tiny_models:tiny", "tests.tiny_models:tiny_other"
    proc = run(project, "--model", later, "--audit-timeout", "5")
    assert (project.path / "report.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = report(project)
    assert outcomes(data) == {f"test_device.py::test_d[{first}]": "timeout",
                              f"test_device.py::test_d[{later}]": "error"}, proc.stdout[-2000:]
    assert "Timeout (>5.0s)" in (data["models"][first]["error"] or "")
    said = (f"not loaded: its load never began: {first}'s load was stopped by the time limit before it began (finding "
            f"the device; see {first})")
    assert data["models"][later]["loaded"] is False and data["models"][later]["error"] == said, data["models"][later]
    assert said in next(a["message"] for a in data["audits"] if a["model"] == later)


SLOW_TORCH_IMPORT = """
import importlib.machinery
import sys
import time


class SlowTorch:  # torch's first import (not a look-up of its version), as slow as a loaded machine can make it
    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = SlowLoader(spec.loader)
        return spec


class SlowLoader:
    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, SlowTorch)]
        time.sleep(60)
        self.real.exec_module(module)


if "torch" not in sys.modules:
    sys.meta_path.insert(0, SlowTorch())
"""


def test_a_later_model_after_a_time_limit_in_torchs_first_import_says_so_not_the_device(project):
    """Review 37 F3: every later model said "the device could not be resolved earlier", also when the limit was hit in
    torch's first import (a single process that has not imported it), before any device was asked for."""
    project.makepyfile(test_device=SLOW_DEVICE.replace("time.sleep(60)", "pass"))
    conftest = project.path / "conftest.py"  # the suite's wiring (tests/conftest.py), after the slow import's finder
    conftest.write_text(SLOW_TORCH_IMPORT + conftest.read_text())
    # models whose startup checks import no torch (a factory's module does): the first import is the first load's
    first, later = "efficientnet_lite0", "efficientnet_lite1"
    args = [a for a in ARGS if a != "tests.tiny_models:tiny"]
    proc = run_project(project.path, *args[:2], first, *args[2:], "--model", later, "--audit-timeout", "5")
    assert (project.path / "report.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = report(project)
    assert outcomes(data) == {f"test_device.py::test_d[{first}]": "timeout",
                              f"test_device.py::test_d[{later}]": "error"}, proc.stdout[-2000:]
    said = (f"not loaded: its load never began: {first}'s load was stopped by the time limit before it began (torch's "
            f"first import; see {first})")
    assert data["models"][later]["error"] == said, data["models"][later]
