"""The JSON report: schema, xdist equivalence, crashes, interruptions, summaries."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from tests.image_folders import cut_after_header, plain_images
from tests.once import project_run_once
from tests.terminal_text import said_once
from visionaudit.families.records import report_schema
from visionaudit.files import write_atomically
from visionaudit.models.specs import canonical_spec

ROOT = Path(__file__).resolve().parents[2]

AUDITS = """
import os
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_top1(imagenet_model, record, thresholds):
    assert record.check_min("clean_top1", 0.9, "min_top1", thresholds["min_top1"])

@pytest.mark.parametrize("angle", [10, 20])
def test_rotation(model, record, angle):
    record.metric("drop", angle / 100)
    record.table("per_class", [{"class": 1, "top1": 0.5}])

def test_fails(model, record):
    record.metric("clean_top1", 0.1)
    assert False, "clean top-1 too low"

@pytest.mark.audit("shape_bias")
def test_other_family(model, record):
    record.metric("shape_bias", 0.2)

def test_plain_check(model):
    pass  # in the module's audit family, records nothing itself
"""

CONFIG = """
[audits.accuracy]
min_top1 = 0.5
[models."tests.tiny_models:tiny_other".accuracy]
min_top1 = 0.95
"""

MODELS = ["--model", "tests.tiny_models:tiny", "--model", "tests.tiny_models:tiny_other",
          "--model", "tests.tiny_models:ten_classes", "--device", "cpu", "-p", "no:cacheprovider"]


@pytest.fixture
def audit_dir(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_audits=AUDITS)
    suite.makefile(".toml", audit=CONFIG)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return suite


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    jsonschema.validate(data, report_schema())
    return data


def comparable(report: dict) -> dict:
    audits = [{k: v for k, v in a.items() if k not in ("duration", "worker")} for a in report["audits"]]
    return {"models": report["models"], "audits": audits, "summary": report["summary"], "incomplete": report["incomplete"]}


@pytest.fixture(scope="module")
def serial_run(request: pytest.FixtureRequest) -> tuple[pytest.RunResult, Path]:
    """The three models' run of AUDITS without xdist, made once for the session (tests/once.py): the contents, the
    xdist equivalence and the step summary tests each check it (each made a run of its own, the same run). Its
    report is serial.json; the step summary it writes, summary.md."""
    return project_run_once(request, "report-serial", {"test_audits.py": AUDITS, "audit.toml": CONFIG}, *MODELS,
                            "--audit-json=serial.json", GITHUB_STEP_SUMMARY="summary.md")


def test_report_contents(serial_run):
    result, folder = serial_run
    result.assert_outcomes(passed=13, failed=4, skipped=1)
    data = load(folder / "serial.json")
    assert data["run"]["workers"] == 0 and data["run"]["exit_status"] == 1
    assert set(data["models"]) == {"tests.tiny_models:tiny", "tests.tiny_models:tiny_other", "tests.tiny_models:ten_classes"}
    assert data["models"]["tests.tiny_models:ten_classes"]["num_classes"] == 10
    by_id = {a["nodeid"]: a for a in data["audits"]}
    top1 = by_id["test_audits.py::test_top1[tests.tiny_models:tiny]"]
    assert top1["outcome"] == "passed" and top1["metrics"] == {"clean_top1": 0.9} and top1["thresholds"] == {"min_top1": 0.5}
    other = by_id["test_audits.py::test_top1[tests.tiny_models:tiny_other]"]
    assert other["outcome"] == "failed" and other["thresholds"] == {"min_top1": 0.95}
    skipped = by_id["test_audits.py::test_top1[tests.tiny_models:ten_classes]"]
    assert skipped["outcome"] == "skipped" and "not the 1,000 ImageNet-1k classes" in skipped["message"]
    fails = by_id["test_audits.py::test_fails[tests.tiny_models:tiny]"]
    assert fails["message"] == "AssertionError: clean top-1 too low" and fails["metrics"] == {"clean_top1": 0.1}
    rot = by_id["test_audits.py::test_rotation[tests.tiny_models:tiny-20]"]
    assert rot["params"] == {"angle": 20} and rot["tables"]["per_class"] == [{"class": 1, "top1": 0.5}]
    assert by_id["test_audits.py::test_other_family[tests.tiny_models:tiny]"]["audit"] == "shape_bias"
    assert data["summary"]["by_outcome"] == {"passed": 13, "failed": 4, "skipped": 1}
    assert data["summary"]["by_audit"]["shape_bias"] == {"passed": 3}
    assert data["summary"]["by_model"]["tests.tiny_models:tiny_other"] == {"failed": 2, "passed": 4}
    assert data["incomplete"] == {"interrupted": False, "interrupted_tests": [], "crashed": [], "timeout": [], "not_run": []}
    assert data["verdict"] == "fail" and data["error"] is None
    # The terminal summary has one row per model and audit, with the key metric, bound and verdict.
    out = result.stdout.str()
    assert "visionaudit summary" in out
    for model in data["models"]:
        for audit in ("accuracy", "shape_bias"):
            assert any(line.startswith(model) and f" {audit} " in line for line in out.splitlines()), (model, audit)
    result.stdout.fnmatch_lines(["tests.tiny_models:tiny_other *accuracy*clean_top1=0.1..0.9*min_top1=0.95*FAIL*"])


def test_same_report_with_and_without_xdist(audit_dir, serial_run):
    audit_dir.runpytest_subprocess(*MODELS, "-n", "2", "--audit-json=parallel.json")
    serial, parallel = load(serial_run[1] / "serial.json"), load(audit_dir.path / "parallel.json")
    assert parallel["run"]["workers"] == 2
    assert {a["worker"] for a in parallel["audits"]} <= {"gw0", "gw1"}
    assert comparable(serial) == comparable(parallel)


def test_crashed_worker_still_leaves_a_report(audit_dir):
    audit_dir.makepyfile(test_crash="""
import os
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_dies(model, record):
    record.metric("before", 1)
    os._exit(3)
""")
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny", "-n", "2", "-p", "no:cacheprovider",
                                            "--audit-json=report.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = load(audit_dir.path / "report.json")
    lost = "test_crash.py::test_dies[tests.tiny_models:tiny]"
    assert data["incomplete"]["crashed"] == [lost]
    entry = next(a for a in data["audits"] if a["nodeid"] == lost)
    assert entry["outcome"] == "crashed" and "died while running it" in entry["message"]
    assert data["verdict"] == "fail"
    result.stdout.fnmatch_lines([f"crashed (worker died): {lost}"])


def test_interrupted_run_leaves_a_partial_report(audit_dir):
    audit_dir.makepyfile(test_audits="""
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_a(model, record):
    record.metric("clean_top1", 0.8)

def test_b(model, record):
    raise KeyboardInterrupt

def test_c(model, record):
    record.metric("clean_top1", 0.7)
""")
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny", "-p", "no:cacheprovider",
                                            "--audit-json=report.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = load(audit_dir.path / "report.json")
    assert data["incomplete"]["interrupted"] is True and data["verdict"] == "incomplete"
    done = {a["nodeid"]: a["outcome"] for a in data["audits"]}
    assert done == {"test_audits.py::test_a[tests.tiny_models:tiny]": "passed",
                    "test_audits.py::test_b[tests.tiny_models:tiny]": "interrupted",
                    "test_audits.py::test_c[tests.tiny_models:tiny]": "not_run"}


def test_model_that_fails_to_load_is_in_the_report_and_said_once(audit_dir):
    bad = audit_dir.path / "bad.pth"
    bad.write_bytes(b"\x80garbage")
    result = audit_dir.runpytest_subprocess(f"--model={bad}", "--arch", "torchvision:resnet18", "-p", "no:cacheprovider",
                                            "--audit-json=report.json")
    result.assert_outcomes(errors=6)
    data = load(audit_dir.path / "report.json")
    (spec,) = data["models"]
    model = data["models"][spec]
    assert model["loaded"] is False and "is corrupt or truncated" in model["error"]
    errors = [a for a in data["audits"] if a["outcome"] == "error"]
    assert len(errors) == 6 and sum("same_error_as" not in a for a in errors) == 1
    out = result.stdout.str()
    # The verdict names the model that did not load, with its message (hunt 35, F5): not a failed gate.
    verdict = next(line for line in out.splitlines() if line.startswith("verdict: FAIL"))
    assert f"{spec} did not load: " in verdict and "is corrupt or truncated" in verdict, verdict
    assert said_once(out.replace(verdict, ""), "is corrupt or truncated")  # said once; the other five point to it


@pytest.mark.parametrize("workers", [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="two-workers")])
def test_the_models_section_says_what_became_of_each_model_whatever_its_tests_did(audit_dir, tmp_path, workers):
    """Issue 23, item 5: a data error made a loaded model ``loaded: false`` with the data error as its error, and a
    model whose first test was skipped ``loaded: false, error: null``; each has its identity now, and a model that
    failed to load its load error."""
    images = plain_images(tmp_path / "images", "n01440764_0.JPEG")
    cut_after_header(images / "n01443537_1.JPEG")  # found as decoded (a file that is no image stops the run at startup)
    audit_dir.makepyfile(test_audits="""
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_a_skipped_first(imagenet_model, record):
    record.metric("clean_top1", 1.0)

def test_b_data_error(evaluated, record):
    record.metric("clean_top1", 1.0)
""")
    # The 10-class model names its classes so that the images' two WNIDs are classes of it (else they stop the run).
    (tmp_path / "ten.txt").write_text("\n".join(["n01440764", "n01443537"] + [f"class{i}" for i in range(8)]))
    ten = canonical_spec(f"tests.tiny_models:ten_classes?classes={tmp_path / 'ten.txt'}")
    result = audit_dir.runpytest_subprocess("--model", ten, "--model", "tests.tiny_models:tiny",
                                            "--model", "tests.tiny_models:not_a_module",
                                            "--model", "tests.tiny_models:factory_bug", "--device", "cpu", "-p",
                                            "no:cacheprovider", f"--audit-images={images}", f"--audit-data={tmp_path}",
                                            "--audit-json=report.json", *workers)
    data = load(audit_dir.path / "report.json")
    outcomes = {(a["model"], a["nodeid"].split("::")[1].split("[")[0]): a["outcome"] for a in data["audits"]}
    assert outcomes == {(ten, "test_a_skipped_first"): "skipped",
                        (ten, "test_b_data_error"): "error",
                        ("tests.tiny_models:tiny", "test_a_skipped_first"): "passed",
                        ("tests.tiny_models:tiny", "test_b_data_error"): "error",
                        ("tests.tiny_models:not_a_module", "test_a_skipped_first"): "error",
                        ("tests.tiny_models:not_a_module", "test_b_data_error"): "error",
                        ("tests.tiny_models:factory_bug", "test_a_skipped_first"): "error",
                        ("tests.tiny_models:factory_bug", "test_b_data_error"): "error"}, result.stdout.str()[-3000:]
    models = data["models"]
    # TinyNet: a 3->4 conv with 3x3 kernels and bias (112), then a 4->classes linear layer with bias.
    for spec, classes in ((ten, 10), ("tests.tiny_models:tiny", 1000)):
        entry = models[spec]
        assert "loaded" not in entry and "error" not in entry, entry
        assert entry["parameters"] == 3 * 4 * 9 + 4 + 4 * classes + classes and entry["num_classes"] == classes
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) and entry["spec_as_given"] == spec
    broken = models["tests.tiny_models:not_a_module"]
    assert broken["loaded"] is False and "returned int, not a torch.nn.Module" in broken["error"], broken
    assert "cannot be used" not in broken["error"]  # the load error, not the data error of a test
    # A load failing with an exception that is not visionaudit's: its error too, not "error": null.
    bug = models["tests.tiny_models:factory_bug"]
    assert bug["loaded"] is False and bug["error"] == "RuntimeError: factory bug: weights file missing", bug


def test_unknown_weights_and_devices_stop_the_run_at_startup(audit_dir):
    result = audit_dir.runpytest_subprocess("--model", "torchvision:resnet18:IMAGENET1K_V9", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*torchvision:resnet18 has no weights 'IMAGENET1K_V9'; known: DEFAULT, none, IMAGENET1K_V1*"])
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny", "--device", "cdua", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown device 'cdua': use auto, cpu, cuda, cuda:N or mps*"])


def test_github_step_summary(serial_run):
    text = (serial_run[1] / "summary.md").read_text()
    assert "| model | audit | key metric | bound | verdict | tests |" in text
    # The tests column counts every outcome: the passes out of all, then the failures.
    assert ("| `tests.tiny_models:tiny_other` | accuracy | clean_top1=0.1..0.9 | min_top1=0.95 | **FAIL** | 3/5 "
            "passed, 2 failed |") in text


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    write_atomically(path, {"a": 1})

    def broken_replace(*a, **k):  # the new text is in the temporary file; the rename fails
        raise RuntimeError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(RuntimeError):
        write_atomically(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_non_finite_numbers_are_null(tmp_path):
    import numpy as np
    import torch

    write_atomically(tmp_path / "r.json",
                     {"x": float("nan"), "y": [float("inf"), -float("inf"), 1.5], "t": torch.tensor([float("nan")]),
                                           "n": np.float64("nan")})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": None, "y": [None, None, 1.5], "t": [None], "n": None}


ROBUSTNESS = """
import pytest

pytestmark = pytest.mark.audit("robustness")
P = {"tests.tiny_models:tiny": {"vertical_flip": 0.001, "horizontal_flip": 0.5, "rotation": 0.02},
     "tests.tiny_models:tiny_other": {"vertical_flip": 0.04, "horizontal_flip": 0.9, "rotation": 0.03}}

@pytest.mark.parametrize("transform", ["vertical_flip", "horizontal_flip", "rotation"])
def test_transform(model, record, transform):
    record.metric("p_value", P[model.id][transform])
    record.metric("drop", 0.1)
    record.threshold("alpha", 0.05)
    record.table("classwise_clean", [1.0, 1.0, 0.0, float("nan")])
    record.table("classwise_transformed",
                 [0.0, 1.0, 0.0, float("nan")] if transform == "vertical_flip" else [1.0, 1.0, 0.0, float("nan")])
"""


def test_robustness_aggregates_holm_and_classes_affected(audit_dir):
    audit_dir.makepyfile(test_audits=ROBUSTNESS)
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny", "--model", "tests.tiny_models:tiny_other",
                                            "-p", "no:cacheprovider", "--audit-json=report.json")
    result.assert_outcomes(passed=6)
    data = load(audit_dir.path / "report.json")
    tiny = data["aggregates"]["robustness"]["models"]["tests.tiny_models:tiny"]
    # Holm over three p-values: 0.001*3 = 0.003, 0.02*2 = 0.04, 0.5*1 = 0.5.
    assert {t: round(r["p_value_holm"], 10) for t, r in tiny.items()} == {"vertical_flip": 0.003, "rotation": 0.04,
                                                                          "horizontal_flip": 0.5}
    other = data["aggregates"]["robustness"]["models"]["tests.tiny_models:tiny_other"]
    # 0.03*3 = 0.09 first, then max(0.04*2, 0.09): nothing is significant for the second model.
    assert not any(r["significant"] for r in other.values())
    entry = next(a for a in data["audits"] if a["nodeid"].endswith("test_transform[tests.tiny_models:tiny-rotation]"))
    assert entry["metrics"]["significant"] is True and entry["metrics"]["p_value_holm"] == pytest.approx(0.04)
    across = data["aggregates"]["robustness"]["across_models"]
    # 4 classes, the last without images (NaN): 3 tested, about 0.15 classes expected below 0.05 by chance
    assert across["vertical_flip"] == {"classes_affected": 1, "classes": [0], "models": 2, "classes_tested": 3, "alpha": 0.05}
    assert across["horizontal_flip"]["classes_affected"] == 0
    result.stdout.fnmatch_lines([("*robustness across 2 models, vertical_flip: 1 of 3 classes differ at p < 0.05 (the study's "
                                  "per-class t-test, uncorrected for the classes tested, about 0.15 expected by chance alone)*")])
