"""Fault injection: every way a run can end leaves a true, schema-valid report (or a journal that rebuilds one).

Each scenario runs pytest in a subprocess on a tiny model. The fault is delivered at a deterministic
point by the audited test itself: it waits until the run's journal shows the test before it finished
and itself started, then sends the signal, kills its worker or the whole run, or hangs.
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

from tests.audit_runs import run_project, suite_conftest
from tests.image_folders import (
    TWO_ACCURACY_TESTS,
    cut_after_header,
    decompression_bomb,
    plain_images,
)
from tests.terminal_text import said_once
from visionaudit.families.records import report_schema

ROOT = Path(__file__).resolve().parents[1]
# New processes, not fork server children (tests/warm_runs.py): its runs signal, kill or hang their controller (their parent).
pytestmark = pytest.mark.real_process
A, B, C = (f"test_fault.py::test_{x}[tests.tiny_models:tiny]" for x in "abc")

AUDIT = """
import os
import signal
import time

import pytest
# Imported at collection, outside every test's time limit, as an xdist worker imports torch at its start
# (plugins/distribution.py): in a single process the first test's setup would import them, over 15 s on a loaded
# 2-core machine, and a short --audit-timeout stopped test_a there instead of the test meant to hang.
import torch  # noqa: F401

import visionaudit.models.loading  # noqa: F401
from tests.journal_waits import when_journal_shows

pytestmark = pytest.mark.audit("accuracy")
FAULT = os.environ.get("FAULT", "")


def controller():
    return os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()


def test_a(model, record):
    record.metric("clean_top1", 0.9)


@pytest.fixture
def slow_setup():
    if FAULT == "hang_setup":  # a fixture that hangs (a model load, a decode) is bounded as well
        time.sleep(120)


def test_b(model, record, request, slow_setup):
    record.metric("clean_top1", 0.8)
    if FAULT in ("", "hang_setup"):
        return
    when_journal_shows(("finished", "test_fault.py::test_a[tests.tiny_models:tiny]"), ("started", request.node.nodeid))
    if FAULT in ("ctrl_c", "sigterm"):
        os.kill(controller(), signal.SIGINT if FAULT == "ctrl_c" else signal.SIGTERM)
        # The run stops this test (KeyboardInterrupt here in one process; its controller ends a worker): a signal
        # that stopped nothing passed test_b after a sleep, "3 passed", which named no cause.
        time.sleep(120)
        pytest.fail(f"{FAULT}: the signal to the run's controller did not stop the run in 120 s")
    elif FAULT == "kill_worker":
        os.kill(os.getpid(), signal.SIGKILL)
    elif FAULT == "kill_run":
        os.kill(controller(), signal.SIGKILL)
        os._exit(0)  # a worker left behind ends too
    elif FAULT == "hang":
        time.sleep(120)
    elif FAULT == "exit":
        pytest.exit("a plugin stopped the run", returncode=3)
    elif FAULT == "bug":
        raise RuntimeError("a bug in the audit")


def test_c(model, record):
    record.metric("clean_top1", 0.7)
"""

ARGS = ["--model", "tests.tiny_models:tiny", "--device", "cpu", "-p", "no:cacheprovider", "--audit-json=report.json"]
MODES = [pytest.param([], id="serial"), pytest.param(["-n", "1"], id="xdist")]


# Ctrl-C in a terminal reaches a run in the foreground, whose SIGINT raises KeyboardInterrupt. A suite started in the
# background (`pytest tests ... &`, nohup) hands its runs SIGINT ignored, which Python keeps ignored: the ctrl_c fault
# then stopped nothing (the run passed). The run gets a terminal's SIGINT back, whoever started the suite.
FOREGROUND_SIGINT = """
import signal
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
"""


@pytest.fixture
def project(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makeconftest(suite_conftest() + FOREGROUND_SIGINT)
    suite.makepyfile(test_fault=AUDIT)
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("VISIONAUDIT_TEST_LOAD_LOG", str(suite.path / "loads.log"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def run(project: pytest.Pytester, fault: str, *args: str) -> subprocess.CompletedProcess:
    return run_project(project.path, *ARGS, *args, FAULT=fault)


def report(project: pytest.Pytester) -> dict:
    data = json.loads((project.path / "report.json").read_text())
    jsonschema.validate(data, report_schema())
    return data


def outcomes(data: dict) -> dict[str, str]:
    return {a["nodeid"]: a["outcome"] for a in data["audits"]}


def metrics(data: dict, nodeid: str) -> dict:
    return next(a["metrics"] for a in data["audits"] if a["nodeid"] == nodeid)


@pytest.mark.parametrize("fault", ["ctrl_c", "sigterm"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow(data=False)
def test_interrupt_keeps_the_finished_and_says_what_was_running(project, fault, mode):
    proc = run(project, fault, *mode)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = report(project)
    assert outcomes(data) == {A: "passed", B: "interrupted", C: "not_run"}
    assert metrics(data, A) == {"clean_top1": 0.9}
    assert data["verdict"] == "incomplete" and data["incomplete"]["interrupted"] is True
    assert not (project.path / "report.json.journal.jsonl").exists()  # the report holds everything now
    assert f"interrupted while running: {B}" in proc.stdout


@pytest.mark.parametrize("mode", [pytest.param(["-n", "1"], id="one-worker"), pytest.param(["-n", "2"], id="two-workers")])
@pytest.mark.slow(data=False)
def test_a_killed_worker_is_crashed_with_its_last_output(project, mode):
    proc = run(project, "kill_worker", *mode)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = report(project)
    assert outcomes(data) == {A: "passed", B: "crashed", C: "passed"}  # xdist replaces the worker; the rest runs
    crashed = next(a for a in data["audits"] if a["nodeid"] == B)
    assert "died while running it" in crashed["message"] and "its last progress: " in crashed["message"].splitlines()[0]
    assert "tests.tiny_models:tiny: loading on cpu" in crashed["message"]
    assert metrics(data, A) == {"clean_top1": 0.9} and metrics(data, C) == {"clean_top1": 0.7}
    assert data["verdict"] == "fail"


@pytest.mark.parametrize("mode", MODES)
def test_a_killed_run_leaves_a_journal_that_rebuilds_the_report(project, mode):
    proc = run(project, "kill_run", *mode)
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (project.path / "report.json").exists()
    journal = project.path / "report.json.journal.jsonl"
    rebuilt = subprocess.run([sys.executable, "-m", "visionaudit", "report", "--from-journal", str(journal)],
                             capture_output=True, text=True, timeout=120, cwd=project.path)
    assert rebuilt.returncode == 1, rebuilt.stderr  # rebuilt, and its verdict (incomplete) is not pass
    data = report(project)
    assert outcomes(data) == {A: "passed", B: "interrupted", C: "not_run"}
    assert metrics(data, A) == {"clean_top1": 0.9}
    assert data["verdict"] == "incomplete" and data["run"]["exit_status"] is None
    assert "tests.tiny_models:tiny" in data["models"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow(data=False)
def test_a_hanging_test_ends_as_timeout(project, mode):
    # 8 s: test_a, which loads the model (torch is imported before the clock starts: AUDIT), needs about 0.5 s, 2-3 s on
    # a loaded 2-core machine, and must not itself time out; test_b hangs for 120 s.
    proc = run(project, "hang", "--audit-timeout", "8", *mode)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = report(project)
    assert outcomes(data) == {A: "passed", B: "timeout", C: "passed"}
    assert metrics(data, B) == {"clean_top1": 0.8}  # what it measured before it hung
    assert data["verdict"] == "fail" and data["incomplete"]["timeout"] == [B]


@pytest.mark.parametrize("mode", [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="two-workers")])
@pytest.mark.slow(data=False)
def test_images_cut_off_after_their_header_are_one_data_error_naming_every_file(project, tmp_path, mode):
    """What no header shows is found as the images are decoded: one error naming every such file, said once, in
    each test that needed them; the model, which loaded, keeps its identity in the report (issue 23, item 5).
    (A file that is no image at all is refused at startup: tests/plugins/test_image_headers.py.)"""
    images = plain_images(tmp_path / "images", "n01440764_0.JPEG", "n01443537_1.JPEG")
    cut_after_header(images / "n01484850_2.JPEG")
    cut_after_header(images / "n01491361_3.JPEG")
    project.makepyfile(test_fault=TWO_ACCURACY_TESTS)
    proc = run(project, "", f"--audit-images={images}", f"--audit-data={tmp_path}", *mode)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    data = report(project)
    one, two = (next(a for a in data["audits"] if a["nodeid"].startswith(f"test_fault.py::test_{n}")) for n in ("one", "two"))
    assert one["outcome"] == two["outcome"] == "error"  # bad data, not a failed gate
    assert "2 of 4 images cannot be used" in one["message"]
    assert "n01484850_2.JPEG is unreadable or truncated (OSError: image file is truncated" in one["message"]
    assert "n01491361_3.JPEG is unreadable or truncated" in one["message"] and "replace or remove" in one["message"]
    first, second = sorted((one, two), key=lambda a: "same_error_as" in a)
    assert second.get("same_error_as") == first["nodeid"] and first["message"].startswith("DataError: 2 of 4")
    assert said_once(proc.stdout, "n01484850_2.JPEG is unreadable")  # said once, where it belongs, by any worker
    model = data["models"]["tests.tiny_models:tiny"]
    assert "loaded" not in model and re.fullmatch(r"[0-9a-f]{64}", model["sha256"]) and model["parameters"] == 5112


@pytest.mark.slow(data=False)
def test_an_oversized_image_is_named_once_with_the_limit_at_startup(project, tmp_path):
    """Issue 23, item 6: a decompression bomb was 60 lines of traceback naming no file. Its size is in its header:
    refused at startup (exit 4), before any model loads, with the limit and how to raise it."""
    images = plain_images(tmp_path / "images", "n01440764_0.JPEG", "n01443537_1.JPEG")
    bomb = decompression_bomb(images / "n01484850_bomb.png")
    project.makepyfile(test_fault=TWO_ACCURACY_TESTS)
    proc = run(project, "", f"--audit-images={images}", f"--audit-data={tmp_path}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert "Traceback" not in output and "DecompressionBomb" not in output, output[-3000:]
    assert said_once(proc.stdout, f"image {bomb} is too large to decode: 30000 x 30000 = 900,000,000 pixels, more than "
                                  "the limit of 178,956,970\n"), output[-3000:]
    assert said_once(proc.stdout, "Images over the limit of 178,956,970 pixels: it is a guard against decompression bombs; "
                                  "if they are genuine, raise it with --audit-max-image-pixels N or [run] max_image_pixels = N")
    data = report(project)
    assert data["run"]["exit_status"] == 4 and "n01484850_bomb.png is too large to decode" in data["error"]
    assert not (project.path / "loads.log").exists()  # before any model loads

    bomb.unlink()  # the limit, from audit.toml, then from the command line over it
    project.makefile(".toml", audit="[run]\nmax_image_pixels = 1000\n[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    proc = run(project, "", f"--audit-images={images}", f"--audit-data={tmp_path}")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-3000:]
    assert "n01440764_0.JPEG is too large to decode: 40 x 40 = 1,600 pixels, more than the limit of 1,000\n" in proc.stdout
    assert said_once(proc.stdout, "Images over the limit of 1,000 pixels"), proc.stdout[-4000:]
    proc = run(project, "", f"--audit-images={images}", f"--audit-data={tmp_path}", "--audit-max-image-pixels", "1600")
    assert proc.returncode == 0 and {a["outcome"] for a in report(project)["audits"]} == {"passed"}, proc.stdout[-3000:]


def test_an_unwritable_report_path_is_refused_before_any_model_loads(project):
    (project.path / "a_file").write_text("")
    proc = run(project, "", "--audit-json=a_file/report.json")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--audit-json a_file/report.json: a_file is a file, not a folder" in proc.stderr
    assert not (project.path / "loads.log").exists()
    proc = run(project, "", f"--audit-json={project.path}")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR and "is a directory; give a file path" in proc.stderr


@pytest.mark.parametrize("mode", MODES)
def test_a_config_error_exits_4_with_the_error_in_the_report(project, mode):
    project.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 1.5\n")
    proc = run(project, "", *mode)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert proc.stderr.count("audits.accuracy.min_top1 = 1.5 is out of range") == 1
    data = report(project)
    assert data["verdict"] == "incomplete" and "min_top1 = 1.5 is out of range" in data["error"]
    assert data["audits"] == [] and data["run"]["exit_status"] == 4
    assert not (project.path / "loads.log").exists()


@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_bad_batch_size_is_a_usage_error(project, value):
    proc = run(project, "", f"--audit-batch-size={value}")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"--audit-batch-size must be a positive number of images per forward pass, got {value}" in proc.stderr


@pytest.mark.slow(data=False)
def test_too_few_images_is_not_judged_with_the_minimum(project):
    project.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 5\n")
    project.makepyfile(test_fault="""
import pytest

pytestmark = pytest.mark.audit("accuracy")

from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import PerImage

def test_small(model, assess):
    three = SampleSet("labelled", "three", ("a/1.png", "a/2.png", "b/3.png"), "f", None, 0)
    assess("clean_top1", PerImage(three, {"correct": [True, True, True], "top5": [True, True, True]}),
           model=model.id, set_name="three", preprocessing="p")  # 3 of 3 right: a pass, were it judged
""")
    proc = run(project, "")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:]  # not judged is not a pass
    data = report(project)
    (entry,) = data["audits"]
    # Not judged, but what was measured is kept (issue 23, item 2): 3 of 3 right.
    assert entry["outcome"] == "not_judged" and entry["metrics"] == {"n_images": 3, "clean_top1": 1.0, "top5": 1.0}
    assert entry["message"] == "not judged: 3 labelled images; this gate needs at least 5 (min_images in audit.toml)"
    assert data["verdict"] == "incomplete"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.slow(data=False)
def test_progress_reaches_the_terminal_and_the_report(project, mode):
    proc = run(project, "", *mode)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("visionaudit: 1 model (tests.tiny_models:tiny) on cpu"), first  # before workers start
    worker = " [gw0]" if mode else ""
    assert f"visionaudit{worker} tests.tiny_models:tiny: loading on cpu ..." in proc.stdout
    data = report(project)
    loads = [p for p in data["run"]["phases"] if p["phase"] == "load"]
    assert loads and loads[0]["subject"] == "tests.tiny_models:tiny" and loads[0]["worker"] == (worker.strip(" []") or "main")
    quiet = run(project, "", "-q", *mode)
    assert "visionaudit: 1 model" not in quiet.stdout and "loading on cpu" not in quiet.stdout


def test_a_batch_size_past_free_memory_is_capped_and_said(project):
    proc = run(project, "", "--audit-batch-size=100000")
    assert proc.returncode == pytest.ExitCode.OK, proc.stdout[-2000:]
    info = report(project)["models"]["tests.tiny_models:tiny"]
    assert 1 <= info["batch_size"] < 100000 and "batch size 100000 capped to" in info["batch_note"]


@pytest.mark.slow(data=False)
def test_a_hanging_fixture_ends_as_timeout(project):
    proc = run(project, "hang_setup", "--audit-timeout", "8")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:]
    assert outcomes(report(project)) == {A: "passed", B: "timeout", C: "passed"}


@pytest.mark.slow(data=False)
def test_a_model_load_that_times_out_is_one_timeout_the_others_pointing_to_it(project):
    """stop-33 review A3: a session fixture's timeout was ten timeouts of 0.0 s, the traceback printed ten times, and the
    model's error null; pytest re-raises the cached failure in every later test, which never ran."""
    slow = "tests.tiny_models:slow_load"
    proc = run(project, "", "--model", slow, "--audit-timeout", "10")  # 10: far above the tiny model's load
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = report(project)
    mine = sorted((a for a in data["audits"] if a["model"] == slow), key=lambda a: "same_error_as" in a)
    assert [a["outcome"] for a in mine] == ["timeout", "error", "error"]
    first = mine[0]
    assert first["duration"] > 9 and "same_error_as" not in first
    assert all(a["same_error_as"] == first["nodeid"] and a["duration"] < 1 for a in mine[1:])
    assert all(f"timed out in {first['nodeid']}" in a["message"] for a in mine[1:])
    assert data["incomplete"]["timeout"] == [first["nodeid"]]
    assert all(a["outcome"] == "passed" for a in data["audits"] if a["model"] == "tests.tiny_models:tiny")
    info = data["models"][slow]
    assert info["loaded"] is False and "Timeout (>10.0s)" in info["error"]
    assert proc.stdout.count("time.sleep(60)") == 1  # the traceback (through the factory) printed once


def test_any_other_early_exit_leaves_the_running_test_interrupted(project):
    proc = run(project, "exit")
    assert proc.returncode == 3, proc.stdout[-2000:]
    data = report(project)
    assert outcomes(data) == {A: "passed", B: "interrupted", C: "not_run"}
    assert metrics(data, B) == {"clean_top1": 0.8}  # what it had recorded, kept (the test ran in this process)
    assert data["verdict"] == "incomplete"


def test_a_bug_in_an_audit_is_an_error_not_a_failed_gate(project):
    proc = run(project, "bug")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED
    data = report(project)
    assert outcomes(data) == {A: "passed", B: "error", C: "passed"}
    assert "RuntimeError: a bug in the audit" in next(a["message"] for a in data["audits"] if a["nodeid"] == B)


def test_a_test_file_that_does_not_import_fails_the_run_by_name(project):
    project.makepyfile(test_broken="import a_module_that_is_not_there\n")
    proc = run(project, "")
    data = report(project)
    assert data["verdict"] == "fail" and "test_broken.py" in data["error"] and "a_module_that_is_not_there" in data["error"]
    assert proc.returncode != 0


def test_a_reraised_fixture_timeout_points_to_the_setup_that_timed_out_there():
    """stop-33 review R1: pytest-timeout's message is the same for every timeout, so a re-raised fixture failure was
    pointed to the run's first timeout of any kind (A, which timed out in its own call), not to the setup where that
    fixture hung (C). Reports as pytest makes them: a re-raise keeps the fixture's traceback, so the same crash place."""
    from types import SimpleNamespace

    from plugins.collector import Collector
    from plugins.interruptions import TIMEOUT_KEY

    config = SimpleNamespace(stash=pytest.Stash(), getoption=lambda *a, **k: 0)
    config.stash[TIMEOUT_KEY] = 10.0
    collector = Collector(config)
    said = "Failed: Timeout (>10.0s) from pytest-timeout."

    def add(nodeid, when, duration, where=None):
        longrepr = (SimpleNamespace(reprcrash=SimpleNamespace(path="/x/fixtures.py", lineno=where), __str__=lambda self: said)
                    if where else None)
        collector.add(SimpleNamespace(nodeid=nodeid, when=when, duration=duration, failed=where is not None,
                                      passed=where is None, skipped=False, longrepr=longrepr, longreprtext=said if where else "",
                                      user_properties=[], keywords={}, sections=[]))

    add("A", "setup", 0.5)
    add("A", "call", 9.99, where=6)    # its own slow call: nothing shared
    add("C", "setup", 9.99, where=40)  # a session fixture hangs here
    add("D", "setup", 0.001, where=40)  # pytest re-raises C's cached failure
    add("E", "setup", 0.001, where=77)  # a re-raise of a timeout no setup here ran into: left as it is
    e = collector.entries
    assert [e[k]["outcome"] for k in "ACDE"] == ["timeout", "timeout", "error", "timeout"]
    assert e["D"]["same_error_as"] == "C" and "timed out in C," in e["D"]["message"]
    assert "same_error_as" not in e["A"] and "same_error_as" not in e["C"] and "same_error_as" not in e["E"]
