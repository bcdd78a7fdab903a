"""Start-up (issue 27): the xdist controller loads the plugins, fixtures and family descriptors and checks the
settings and data, but runs no model, so it never imports torch, torchvision or scipy.stats (seconds of start-up
before the first worker starts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit_runs import audit

ROOT = Path(__file__).resolve().parents[2]
# New processes, not fork server children (tests/warm_runs.py): it checks what a run's controller imports.
pytestmark = pytest.mark.real_process
HEAVY = ("torch", "torchvision", "scipy.stats")

LOAD = """
import importlib, json, sys
import conftest
for name in conftest.pytest_plugins:
    importlib.import_module(name)
from visionaudit.families import families
families()
print(json.dumps([m for m in %r if m in sys.modules]))
""" % (HEAVY,)

PROBE = """
import json, os, sys
import pytest

def _note(when):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a worker: it runs the models
    path = os.environ["CONTROLLER_PROBE"]
    data = json.load(open(path)) if os.path.exists(path) else {}
    data[when] = [m for m in %r if m in sys.modules]
    data["pid"] = os.getpid()
    json.dump(data, open(path, "w"))

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    _note("collected")

def pytest_sessionfinish(session):
    _note("finished")
""" % (HEAVY,)


def test_the_plugins_fixtures_and_family_descriptors_load_without_torch():
    done = subprocess.run([sys.executable, "-c", LOAD], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.slow
def test_the_xdist_controller_of_a_real_run_starts_and_measures_without_torch(tmp_path, shared_data, monkeypatch):
    (tmp_path / "controller_probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}")
    monkeypatch.setenv("CONTROLLER_PROBE", str(out))
    forwards = tmp_path / "forwards.log"
    monkeypatch.setenv("VISIONAUDIT_FIRST_FORWARD_LOG", str(forwards))
    monkeypatch.delenv("VISIONAUDIT_LOGIT_CACHE", raising=False)  # a cache hit would run no forward pass at all
    proc, report = audit(tmp_path, shared_data, "controller", "-n", "1", "-p", "controller_probe", "-k", "test_clean_top1",
                         "--audit-samples", "8")
    assert report is not None and report["error"] is None, proc.stdout[-3000:] + proc.stderr[-3000:]
    # 8 images are too few to judge (not_judged), but the worker loaded the model and ran it: a real run
    assert [e["outcome"] for e in report["audits"]] == ["not_judged"]
    seen = json.loads(out.read_text())
    (line,) = forwards.read_text().splitlines()  # one process ran a forward pass: the worker, not the controller
    assert int(line.split()[1]) != seen.pop("pid")
    # "finished": when the session's measurement has ended; the report and page writers run after it, and the page's
    # thumbnails (--audit-html, not asked here) do import torch then: at the end of a run, not at its start
    assert seen == {"collected": [], "finished": []}
