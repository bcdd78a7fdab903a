"""A model whose load kills its process (a segfault in native code, a library's os._exit) is said as such: its report
entry's error says the load crashed the worker, how the worker ended and, where faulthandler caught it, where; the
verdict, the terminal, the HTML page, compare, a baseline's refusal and the merge of shards read it. A load that raised
or timed out keeps its entry as before. Real runs of a test project (tests/tiny_models.py's crashing factories)."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torchvision  # noqa: F401  (imported at module level: see the developers' rules)

from tests.audit_runs import run_project
from tests.synthetic_runs import varied_runs
from visionaudit.errors import DataError
from visionaudit.families.baseline.pairing import model_pairs
from visionaudit.families.records import report_schema
from visionaudit.report.compare import compare_reports
from visionaudit.report.merge import merge_reports

ROOT = Path(__file__).resolve().parents[1]
TINY, SEGV, EXIT = "tests.tiny_models:tiny", "tests.tiny_models:segfault_load", "tests.tiny_models:exit_load"
BUG, SLOW = "tests.tiny_models:factory_bug", "tests.tiny_models:slow_load"
HOW = {SEGV: f"signal {int(signal.SIGSEGV)}, SIGSEGV", EXIT: "exit status 7"}  # exit_load's os._exit(7)

AUDIT = """
import pytest
import torch  # noqa: F401  (at collection, outside every test's time limit: tests/test_faults.py says why)

import visionaudit.models.loading  # noqa: F401

pytestmark = pytest.mark.audit("accuracy")


def test_a(model, record):
    record.metric("clean_top1", 0.9)


def test_b(model, record):
    record.metric("clean_top1", 0.8)
"""


@pytest.fixture
def project(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_load=AUDIT)
    suite.makefile(".toml", audit="[audits.accuracy]\nmin_top1 = 0.5\nmin_images = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def _report(path: Path) -> dict:
    data = json.loads(path.read_text())
    jsonschema.validate(data, report_schema())
    return data


def _first_line(model: str) -> str:
    return f"the worker crashed ({HOW[model]}) while loading this model: worker gw"


@pytest.mark.slow(data=False)
def test_a_load_that_crashes_its_worker_is_said_in_its_entry_and_everywhere_it_is_read(project):
    models = [TINY, SEGV, EXIT, BUG, SLOW]
    proc = run_project(project.path, *(a for m in models for a in ("--model", m)), "--device", "cpu", "-n", "2",
                       "-p", "no:cacheprovider", "--audit-json=report.json", "--audit-html=report.html",
                       "--audit-timeout", "10",  # 10 s: far above the tiny model's load, as tests/test_faults.py's
                       # One crash per crashing model: every crash is a worker xdist replaces (cheaper; two crashes
                       # close together are tests/plugins/test_crash_rescheduling.py's).
                       *(a for m in (SEGV, EXIT) for a in ("--deselect", f"test_load.py::test_b[{m}]")))
    output = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "INTERNALERROR" not in proc.stdout + proc.stderr, output  # the scheduler's (review 41 F1), said as such
    data = _report(project.path / "report.json")
    entries = data["models"]
    for model in (SEGV, EXIT):
        entry = entries[model]
        assert entry["loaded"] is False and entry["error"].startswith(_first_line(model)), entry
        assert re.fullmatch(rf"{re.escape(_first_line(model))}\d+'s process died during the load", entry["error"].splitlines()[0])
        mine = [a for a in data["audits"] if a["model"] == model]
        assert [a["outcome"] for a in mine] == ["crashed"], mine
        assert all(f"({HOW[model]}) while loading its model {model}: the load crashed the worker" in a["message"]
                   for a in mine)
        assert f"{model} did not load: {_first_line(model)}" in data["verdict_reason"]
        assert f"{model} did not load: {_first_line(model)}" in proc.stdout  # the terminal's verdict line
    # faulthandler's traceback, through the factory, where the worker left one; an os._exit leaves none
    assert "Fatal Python error: Segmentation fault" in entries[SEGV]["error"] and "in segfault_load" in entries[SEGV]["error"]
    assert "\n" not in entries[EXIT]["error"]
    # a load that raised, one that timed out and one that loaded: their entries as they were
    assert entries[BUG] == {"spec": BUG, "spec_as_given": BUG, "loaded": False,
                            "error": "RuntimeError: factory bug: weights file missing"}
    assert entries[SLOW] == {"spec": SLOW, "spec_as_given": SLOW, "loaded": False,
                             "error": "the load was stopped: Timeout (>10.0s) from pytest-timeout."}
    assert re.fullmatch(r"[0-9a-f]{64}", entries[TINY]["sha256"]) and "loaded" not in entries[TINY]
    assert {a["outcome"] for a in data["audits"] if a["model"] == TINY} == {"passed"}
    assert data["verdict"] == "fail"
    page = (project.path / "report.html").read_text()
    assert f"not loaded: {_first_line(SEGV)}" in page and f"not loaded: {_first_line(EXIT)}" in page
    assert "<details><summary>more</summary><pre>its fatal-error traceback (faulthandler):" in page  # the rest, folded

    # compare: the new report's model that did not load, said by the error's first line
    comparison = compare_reports(data, data)
    said = comparison["verdict_reason"]
    assert re.search(rf"the new report's model {re.escape(SEGV)} did not load \({re.escape(_first_line(SEGV))}\d+'s "
                     r"process died during the load\): nothing compared", said), said
    # --audit-baseline: a baseline whose model's load crashed is refused by that error's first line, no traceback
    with pytest.raises(DataError) as refused:
        model_pairs([SEGV], data)
    assert f"did not load in that run (its load error: {_first_line(SEGV)}" in str(refused.value)
    assert "Fatal Python error" not in str(refused.value)
    _merges(entries[SEGV])


def test_a_crash_after_the_load_in_the_batch_size_probe_is_no_load_crash(project):
    """Review 41 F2: the model loaded, then its worker died in the batch-size probe (an OOM kill, say): the model's
    entry has its identity (not a load error, not "no test got that far"), the test crashed as any test whose worker
    died, and the verdict does not say the model did not load."""
    probe = "tests.tiny_models:probe_crash"
    proc = run_project(project.path, "--model", TINY, "--model", probe, "--device", "cpu", "-n", "2",
                       "-p", "no:cacheprovider", "--audit-json=report.json", "--deselect", f"test_load.py::test_b[{probe}]")
    output = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, output
    data = _report(project.path / "report.json")
    entry = data["models"][probe]
    # its identity, as the tiny model's (the same weights: manual_seed(0)), not a load error
    assert "loaded" not in entry and "error" not in entry, entry
    assert entry["sha256"] == data["models"][TINY]["sha256"] and entry["spec"] == probe, entry
    mine = [a for a in data["audits"] if a["model"] == probe]
    assert [a["outcome"] for a in mine] == ["crashed"], mine
    assert re.match(r"worker gw\d+ died while running it \(killed, out of memory", mine[0]["message"]), mine[0]["message"]
    assert data["verdict"] == "fail"  # a crashed test fails the run
    assert "did not load" not in (data["verdict_reason"] or "") and "did not load" not in proc.stdout


def _merges(crashed: dict) -> None:
    """Shards: one loaded the model, the other's load crashed its worker: the merged entry is the loaded one's. Both
    crashed: the merged entry says so, and so does the merged verdict."""
    _, parts = varied_runs(7)
    crashed = {**crashed, "name": "m"}
    loaded = copy.deepcopy(parts[0]["models"]["m"])
    assert loaded.get("sha256")
    parts[1]["models"]["m"] = crashed
    merged = merge_reports(copy.deepcopy(parts), ["part1.json", "part2.json"])
    assert merged["models"]["m"] == loaded
    assert "m did not load" not in (merged["verdict_reason"] or "")
    parts[0]["models"]["m"] = crashed
    merged = merge_reports(parts, ["part1.json", "part2.json"])
    assert merged["models"]["m"] == crashed
    assert f"m did not load: {_first_line(SEGV)}" in merged["verdict_reason"]


def test_a_load_that_crashes_a_run_without_xdist_is_said_by_the_report_its_journal_rebuilds(project):
    """Without xdist the segfault ends the run itself: no report, but the journal says which load had begun."""
    proc = run_project(project.path, "--model", SEGV, "--device", "cpu", "-p", "no:cacheprovider", "--audit-json=report.json")
    assert proc.returncode == -signal.SIGSEGV, proc.stdout[-2000:] + proc.stderr[-2000:]
    journal = project.path / "report.json.journal.jsonl"
    rebuilt = subprocess.run([sys.executable, "-m", "visionaudit", "report", "--from-journal", str(journal)],
                             capture_output=True, text=True, timeout=120, cwd=project.path)
    assert rebuilt.returncode == 1, rebuilt.stderr
    data = _report(project.path / "report.json")
    assert data["models"][SEGV]["loaded"] is False
    assert data["models"][SEGV]["error"].startswith("the run ended while loading this model (killed, or its load crashed")
    assert {a["nodeid"]: a["outcome"] for a in data["audits"]} == {
        f"test_load.py::test_a[{SEGV}]": "interrupted", f"test_load.py::test_b[{SEGV}]": "not_run"}
    assert f"{SEGV} did not load: the run ended while loading this model" in data["verdict_reason"]


def test_a_serial_run_that_dies_after_a_load_is_rebuilt_with_the_model_loaded(project):
    """Review 41 F4: the journal says a load ended too (and what it loaded), so a run without xdist that died after
    the load, in the batch-size probe, is rebuilt with the model's identity, not "the run ended while loading"."""
    probe = "tests.tiny_models:probe_crash"
    proc = run_project(project.path, "--model", probe, "--device", "cpu", "-p", "no:cacheprovider", "--audit-json=report.json")
    assert proc.returncode == 9, proc.stdout[-2000:] + proc.stderr[-2000:]  # probe_crash's os._exit(9)
    journal = project.path / "report.json.journal.jsonl"
    rebuilt = subprocess.run([sys.executable, "-m", "visionaudit", "report", "--from-journal", str(journal)],
                             capture_output=True, text=True, timeout=120, cwd=project.path)
    assert rebuilt.returncode == 1, rebuilt.stderr
    entry = _report(project.path / "report.json")["models"][probe]
    assert "loaded" not in entry and "error" not in entry, entry
    assert entry["spec"] == probe and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry


def test_how_a_worker_ended_is_told_where_it_can_be_and_nothing_breaks_where_it_cannot():
    """Review 41 F3: a best-effort diagnostic: a process object that waits otherwise says nothing, raises nothing."""
    from types import SimpleNamespace

    from plugins.load_crashes import how_it_ended

    def node(wait):
        return SimpleNamespace(gateway=SimpleNamespace(_io=SimpleNamespace(popen=SimpleNamespace(wait=wait))))

    assert how_it_ended(node(lambda timeout: -int(signal.SIGSEGV))) == f"signal {int(signal.SIGSEGV)}, SIGSEGV"
    assert how_it_ended(node(lambda timeout: 7)) == "exit status 7"
    assert how_it_ended(node(lambda: 7)) is None  # no timeout argument: TypeError
    assert how_it_ended(SimpleNamespace()) is None
