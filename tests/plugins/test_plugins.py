"""The pytest side: options, parametrization, recording, skips, config errors, xdist."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plugins.record_transport import record_of
from tests.audit_runs import suite_conftest
from tests.once import project_run_once
from tests.terminal_text import said_once

ROOT = Path(__file__).resolve().parents[2]

AUDIT = """
import os
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_first(imagenet_model, record, thresholds):
    record.metric("worker", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    record.metric("classes", imagenet_model.num_classes)
    assert record.check_min("score", 0.9, "min_top1", thresholds["min_top1"])

@pytest.mark.parametrize("severity", [1, 2])
def test_second(model, record, severity):
    record.metric("worker", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    record.metric("severity_seen", severity)

def test_failing(model, record):
    record.metric("worker", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    record.metric("measured_before_failing", 0.25)
    assert False, "planted failure"
"""

CONFIG = """
[audits.accuracy]
min_top1 = 0.5
[models."tests.tiny_models:tiny_other".accuracy]
min_top1 = 0.95
"""

COLLECT = """
import json

def pytest_runtest_logreport(report):
    from plugins.record_transport import record_of
    rec = record_of(report)
    if rec is not None and report.when == "call" or (rec is not None and report.skipped):
        with open("records.jsonl", "a") as f:
            f.write(json.dumps({"nodeid": report.nodeid, "outcome": report.outcome, "record": rec}) + "\\n")
"""


@pytest.fixture
def audit_dir(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_audit=AUDIT)
    suite.makefile(".toml", audit=CONFIG)
    conftest = (suite.path / "conftest.py").read_text()
    (suite.path / "conftest.py").write_text(conftest + COLLECT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("VISIONAUDIT_TEST_LOAD_LOG", str(suite.path / "loads.log"))
    return suite


def records(p: pytest.Pytester | Path) -> list[dict]:
    return [json.loads(line) for line in (getattr(p, "path", p) / "records.jsonl").read_text().splitlines()]


MODELS = ["--model", "tests.tiny_models:tiny", "--model", "tests.tiny_models:tiny_other", "--device", "cpu"]
# Tables for models not in the run: one of another run (silent), one a typo of this run's (a warning). Neither
# changes a bound of the run's models.
OTHER_TABLES = CONFIG + ('[models."torchvision:resnet50".accuracy]\nmin_top1 = 0.75\n'
                         '[models."tests.tiny_models:tiny_othre".accuracy]\nmin_top1 = 0.75\n')


@pytest.fixture(scope="module")
def two_models_run(request: pytest.FixtureRequest) -> tuple[pytest.RunResult, Path]:
    """The two models' run of AUDIT without xdist, under OTHER_TABLES, made once for the session (tests/once.py): the
    records test and the other tables' test each check it (each made the same run of its own)."""
    files = {"test_audit.py": AUDIT, "audit.toml": OTHER_TABLES, "conftest.py": suite_conftest() + COLLECT}
    return project_run_once(request, "plugins-two-models", files, *MODELS, "-p", "no:cacheprovider",
                            VISIONAUDIT_TEST_LOAD_LOG="loads.log")


def test_records_thresholds_and_one_load_per_model(two_models_run):
    result, folder = two_models_run
    result.assert_outcomes(passed=5, failed=3)
    recs = {r["nodeid"]: r for r in records(folder)}
    first = recs["test_audit.py::test_first[tests.tiny_models:tiny]"]["record"]
    assert first["audit"] == "accuracy" and first["model"] == "tests.tiny_models:tiny"
    assert first["metrics"]["score"] == 0.9 and first["thresholds"] == {"min_top1": 0.5}
    assert first["model_info"]["num_classes"] == 1000 and first["model_info"]["device"] == "cpu"
    # The per-model override fails the other model, and the failed test still carries its metrics.
    other = recs["test_audit.py::test_first[tests.tiny_models:tiny_other]"]
    assert other["outcome"] == "failed" and other["record"]["thresholds"] == {"min_top1": 0.95}
    assert recs["test_audit.py::test_failing[tests.tiny_models:tiny]"]["record"]["metrics"]["measured_before_failing"] == 0.25
    assert recs["test_audit.py::test_second[tests.tiny_models:tiny-2]"]["record"]["params"] == {"severity": 2}
    # Session scope: each model was built once in this process, not once per test.
    assert len((folder / "loads.log").read_text().splitlines()) == 2


def test_model_without_imagenet_classes_is_skipped_with_reason(audit_dir):
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:ten_classes", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*has 10 output classes, not the 1,000 ImageNet-1k classes this audit needs*"])


def test_unknown_spec_is_a_usage_error(audit_dir):
    result = audit_dir.runpytest_subprocess("--model", "resnet50", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown model spec 'resnet50'. Did you mean torchvision:resnet50?*"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_bad_config_is_a_usage_error_said_once_before_any_model_loads(audit_dir, workers):
    audit_dir.makefile(".toml", audit='[audits.robustness]\nnot_significant = ["horizontal_flp"]\n')
    result = audit_dir.runpytest_subprocess(*MODELS, *workers, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = (f"{audit_dir.path / 'audit.toml'}: audits.robustness.not_significant = ['horizontal_flp'] unknown item "
               "'horizontal_flp'")
    output = result.stdout.str() + result.stderr.str()
    assert said_once(output, message), output
    assert "did you mean 'horizontal_flip'?" in output
    assert not (audit_dir.path / "loads.log").exists()


def test_model_table_for_another_model_is_silent_and_a_typo_a_warning(two_models_run):
    result, _ = two_models_run
    result.assert_outcomes(passed=5, failed=3)
    result.stdout.fnmatch_lines([('*[[]models."tests.tiny_models:tiny_othre"[]] names no model of this run nor one that exists '
                                  'here; did you mean "tests.tiny_models:tiny_other"? Its bounds are not used*')])
    assert "resnet50" not in result.stdout.str()  # a table for a model of another run says nothing


def test_spellings_of_one_model_share_its_canonical_id_and_table(audit_dir):
    """The dash alias and a reordered query name the model the table names; test ids use the canonical spec."""
    audit_dir.makefile(".toml", audit="""
[audits.accuracy]
min_top1 = 0.5
[models."tests.tiny_models:tiny?mean=0.5,0.5,0.5&std=0.5,0.5,0.5".accuracy]
min_top1 = 0.95
""")
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny?std=0.5,0.5,0.5&mean=0.5,0.5,0.5", "--device",
                                            "cpu",
                                            "-p", "no:cacheprovider", "--audit-json=report.json")
    result.assert_outcomes(passed=2, failed=2)
    canonical = "tests.tiny_models:tiny?mean=0.5,0.5,0.5&std=0.5,0.5,0.5"
    recs = {r["nodeid"]: r for r in records(audit_dir)}
    first = recs[f"test_audit.py::test_first[{canonical}]"]
    assert first["outcome"] == "failed" and first["record"]["thresholds"] == {"min_top1": 0.95}
    report = json.loads((audit_dir.path / "report.json").read_text())
    assert report["models"][canonical]["spec_as_given"] == "tests.tiny_models:tiny?std=0.5,0.5,0.5&mean=0.5,0.5,0.5"


def test_unloadable_model_errors_once_with_the_message(audit_dir):
    bad = audit_dir.path / "bad.pth"
    bad.write_bytes(b"\x80garbage")
    result = audit_dir.runpytest_subprocess(f"--model={bad}", "--arch", "torchvision:resnet18", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines([f"*cannot load model {bad}: checkpoint {bad} is corrupt or truncated*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_missing_data_stops_the_run_at_startup_naming_every_folder(suite, monkeypatch, tmp_path, workers):
    """Exit 4 before any test runs, one message naming each missing folder and its fetch command."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    suite.makepyfile(test_data="""
import pytest

@pytest.mark.parametrize("stimuli", ["edges"])
def test_shape_only(shape_only_images, stimuli):
    pass

def test_conflict(cue_conflict_images):
    pass

def test_weights_only():
    pass
""")
    root = tmp_path / "data"
    (root / "edges").mkdir(parents=True)  # there; cue-conflict is not
    result = suite.runpytest_subprocess(f"--audit-data={root}", *workers, "-p", "no:cacheprovider", "--audit-json=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    fix = f"cue-conflict not found at {root / 'cue-conflict'}: python -m visionaudit fetch cue-conflict --dest {root}"
    assert said_once(output, fix) and "edges not found" not in output, output
    report = json.loads((suite.path / "r.json").read_text())
    assert report["verdict"] == "incomplete" and fix in report["error"]
    assert {a["nodeid"].split("::")[1]: a["outcome"] for a in report["audits"]} == {
        "test_shape_only[edges]": "not_run", "test_conflict": "not_run", "test_weights_only": "not_run"}


def test_xdist_groups_each_model_on_one_worker(audit_dir):
    result = audit_dir.runpytest_subprocess(*MODELS, "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=3)
    workers: dict[str, set] = {}
    for r in records(audit_dir):
        workers.setdefault(r["record"]["model"], set()).add(r["record"]["metrics"]["worker"])
    assert all(len(w) == 1 for w in workers.values()), workers
    assert set().union(*workers.values()) <= {"gw0", "gw1"}
    # Two models, two workers, grouped: two loads in all.
    assert len((audit_dir.path / "loads.log").read_text().splitlines()) == 2


SHORT_NAMES = """
import os
import pytest

pytestmark = pytest.mark.audit("accuracy")

@pytest.mark.parametrize("kind, level", [("gaussian_noise", 3)])
def test_c(model, record, kind, level):
    record.metric("worker", os.environ.get("PYTEST_XDIST_WORKER", "main"))
"""


def test_xdist_keeps_a_model_with_a_short_name_whole_where_its_name_is_another_tests_parameter(audit_dir):
    """Review 37 F7: the scheduler read a test's model from its id's brackets, where a name such as 3 is also another
    parameter's id: test_c[x-gaussian_noise-3] went with model 3's tests, loading x on 3's worker too."""
    audit_dir.makepyfile(test_short=SHORT_NAMES)
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny?name=3", "--model",
                                            "tests.tiny_models:tiny_other?name=x", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7, failed=3)
    workers: dict[str, set] = {}
    for r in records(audit_dir):
        workers.setdefault(r["record"]["model"], set()).add(r["record"]["metrics"]["worker"])
    assert "test_short.py::test_c[x-gaussian_noise-3]" in {r["nodeid"] for r in records(audit_dir)}
    assert set(workers) == {"3", "x"} and all(len(w) == 1 for w in workers.values()), workers
    assert len((audit_dir.path / "loads.log").read_text().splitlines()) == 2  # each model loaded once


def test_xdist_spreads_one_model_over_workers(audit_dir):
    result = audit_dir.runpytest_subprocess("--model", "tests.tiny_models:tiny", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    assert {r["record"]["metrics"]["worker"] for r in records(audit_dir)} == {"gw0", "gw1"}


def test_record_of_reads_user_properties():
    class Report:
        user_properties = [("other", 1), ("visionaudit", {"audit": "x"})]

    assert record_of(Report()) == {"audit": "x"}


def test_model_scope_reads_the_model_from_test_ids():
    from plugins.distribution import model_scope

    ids = ["efficientnet_lite0", "torchvision:resnet50", "torchvision:resnet50:none"]
    assert model_scope("a.py::t[efficientnet_lite0]", ids) == "model:efficientnet_lite0"
    assert model_scope("a.py::t[torchvision:resnet50:none-rotation]", ids) == "model:torchvision:resnet50:none"
    assert model_scope("a.py::t[rotation-torchvision:resnet50]", ids) == "model:torchvision:resnet50"
    assert model_scope("a.py::t[x-efficientnet_lite0-2]", ids) == "model:efficientnet_lite0"
    assert model_scope("a.py::t[other]", ids) == "a.py::t[other]"


def test_the_scheduler_takes_a_tests_model_from_its_collection_where_it_has_it():
    """Review 37 F7: a short name read from the brackets can be another parameter's id; the collection says which
    parameter is the model. A test of no model is no model's, whatever its id holds."""
    from plugins.distribution import family_scope, model_scope

    ids = ["3", "x"]
    nodeid = "a.py::test_c[x-gaussian_noise-3]"
    meta = {"audit": "corruption", "model": "x", "params": {"corruption": "gaussian_noise", "severity": 3}}
    assert model_scope(nodeid, ids, meta) == "model:x"
    assert family_scope(nodeid, "corruption", ids, meta) == "corruption:x"
    assert model_scope("a.py::test_d[gaussian_noise-3]", ids, {"audit": "corruption", "model": None}) == \
        "a.py::test_d[gaussian_noise-3]"


def test_a_controls_tests_are_one_scope_whatever_their_family():
    """An architecture's random-init control tests go to one worker together, which builds it once (fixtures/models.py)."""
    from plugins.distribution import control_scope

    spec, group = "torchvision:vit_b_16:none", "random-init controls"
    metas = [{"audit": "channel_bias", "model": spec, "params": {"arch": "vit_b_16"}, "control": group},
             *({"audit": "conversion", "model": spec, "params": {"arch": "vit_b_16", "direction": d}, "control": group}
               for d in ("rgb_to_gray", "gray_to_rgb"))]
    assert {control_scope(m) for m in metas} == {"control:torchvision:vit_b_16:none"}
    assert control_scope({**metas[0], "model": "torchvision:alexnet:none"}) == "control:torchvision:alexnet:none"
    assert control_scope({"audit": "conversion", "model": "efficientnet_lite0", "params": {}}) is None
    assert control_scope(None) is None
    # and the scheduler the suite gives xdist uses it, models grouped whole or not (review 45 F2)
    from types import SimpleNamespace

    from plugins.collector import COLLECTOR_KEY
    from plugins.distribution import pytest_xdist_make_scheduler
    from plugins.settings import SETTINGS_KEY

    ids = ["audits/test_channel_bias.py::test_random_init_control[vit_b_16]",
           *(f"audits/test_conversion.py::test_zoo[vit_b_16-{d}]" for d in ("rgb_to_gray", "gray_to_rgb"))]
    other = "audits/test_conversion.py::test_zoo[alexnet-rgb_to_gray]"
    said = {**dict(zip(ids, metas)), other: {**metas[1], "model": "torchvision:alexnet:none"}}
    for models in (["efficientnet_lite0"], ["m1", "m2", "m3"]):
        config = SimpleNamespace(stash=pytest.Stash(), invocation_params=SimpleNamespace(args=("-n", "2")),
                                 option=SimpleNamespace(loadscopereorder=True),
                                 getvalue=lambda name: {"tx": ["2*popen"], "dist": "load"}.get(name))
        config.stash[SETTINGS_KEY] = SimpleNamespace(models=models)
        config.stash[COLLECTOR_KEY] = SimpleNamespace(meta=said)
        scheduler = pytest_xdist_make_scheduler(config, None)
        assert {scheduler._split_scope(i) for i in ids} == {"control:torchvision:vit_b_16:none"}, models
        assert scheduler._split_scope(other) == "control:torchvision:alexnet:none"


def test_a_family_that_asks_keeps_a_models_tests_on_one_worker(monkeypatch):
    """The scope the scheduler gives a test when models are not grouped whole: its family and model when the
    family's descriptor asks for one worker per model (a family registered at runtime, as a package would)."""
    from plugins.distribution import family_scope
    from visionaudit import Family, register_family
    from visionaudit.families import registry

    registry.families()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_family(Family(name="toy_grouped", gates="x", key_metric="s", higher_is_better=True, thresholds={},
                           one_worker_per_model=True))
    register_family(Family(name="toy_spread", gates="x", key_metric="s", higher_is_better=True, thresholds={}))
    ids = ["tests.tiny_models:tiny", "tests.tiny_models:tiny_other"]
    assert family_scope("t.py::test_a[tests.tiny_models:tiny-1]", "toy_grouped", ids) == "toy_grouped:tests.tiny_models:tiny"
    assert family_scope("t.py::test_b[2-tests.tiny_models:tiny]", "toy_grouped", ids) == "toy_grouped:tests.tiny_models:tiny"
    assert family_scope("t.py::test_a[tests.tiny_models:tiny_other-1]", "toy_grouped",
                        ids) == "toy_grouped:tests.tiny_models:tiny_other"
    assert family_scope("t.py::test_a[tests.tiny_models:tiny-1]", "toy_spread", ids) == "t.py::test_a[tests.tiny_models:tiny-1]"
    assert family_scope("t.py::test_a[no-model]", "toy_grouped", ids) == "t.py::test_a[no-model]"
    assert family_scope("t.py::test_a[tests.tiny_models:tiny]", None, ids) == "t.py::test_a[tests.tiny_models:tiny]"
    # the built-in families as before: baseline and corruption grouped, the rest spread
    assert {n for n, f in registry.families().items() if f.one_worker_per_model} == {"baseline", "corruption", "toy_grouped"}
    # a family that reuses another's per-model work runs on that family's worker for the model
    register_family(Family(name="toy_reader", gates="x", key_metric="s", higher_is_better=True, thresholds={},
                           shares_worker_with="toy_grouped"))
    assert family_scope("t.py::test_r[tests.tiny_models:tiny-x]", "toy_reader", ids) == "toy_grouped:tests.tiny_models:tiny"


def test_a_models_baseline_comparisons_run_on_its_corruption_tests_worker():
    """The baseline's live side reads the model's corruption run (fixtures/baseline.py): on another worker it would
    score every condition again, doubling the heaviest audit. So a model's baseline comparisons share the scope of
    its corruption conditions and mCE test, and another model's stay apart."""
    from plugins.distribution import family_scope

    ids = ["efficientnet_lite0", "efficientnet_lite0?mean=0.485,0.456,0.406"]
    lite0 = {family_scope("audits/test_baseline.py::test_against_baseline[efficientnet_lite0-corruption_fog_3]", "baseline", ids),
             family_scope("audits/test_baseline.py::test_against_baseline[efficientnet_lite0-clean_top1]", "baseline", ids),
             family_scope("audits/test_corruption.py::test_corruption[efficientnet_lite0-fog-3]", "corruption", ids),
             family_scope("audits/test_corruption.py::test_mce[efficientnet_lite0]", "corruption", ids)}
    assert lite0 == {"corruption:efficientnet_lite0"}
    other = family_scope("audits/test_baseline.py::test_against_baseline[efficientnet_lite0?mean=0.485,0.456,0.406-mce]",
                         "baseline", ids)
    assert other == "corruption:efficientnet_lite0?mean=0.485,0.456,0.406"
