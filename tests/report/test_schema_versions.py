"""Schema 4 (the model entry's classes, run.notes) still reads version-3 reports: as a baseline (the gate and
``compare``) and as merge parts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from tests.synthetic_runs import synthetic_run
from visionaudit.data.shards import Shard
from visionaudit.families.baseline.pairing import read_report
from visionaudit.families.records import report_schema
from visionaudit.report.compare import compare_reports, regressions
from visionaudit.report.merge import Unmergeable, merge_reports
from visionaudit.version import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
V3 = ROOT / "tests" / "report_fixtures" / "report_two_models.json"  # written by the suite at schema 3


def test_the_schema_is_version_9_with_the_run_selection_model_classes_and_per_image_labels_and_top1():
    schema = report_schema()
    # 9: alpha on every transform and condition entry, across_models' alphas (stop 42); 8: run.selection (stop 41);
    # 7: robustness across_models' classes_tested and alpha, compare's not_loaded and
    # new_verdict (stop 34); 6:
    # per-image top-1, corruption per-image outcomes in folder mode and shards, the baseline gate's corruption
    # comparisons and error consistency (issue 26); 5: preprocessing keys (issue 25), per-image labels (issue 24)
    assert SCHEMA_VERSION == 9 and schema["properties"]["schema_version"]["const"] == 9
    assert "selection" in schema["properties"]["run"]["properties"]
    assert "alphas" in schema["$defs"]["across_models_result"]["properties"]
    assert {"labels", "top1"} <= set(schema["properties"]["audits"]["items"]["properties"]["outcomes"]["properties"])
    model = schema["properties"]["models"]["additionalProperties"]
    assert "classes" in model["else"]["required"] and "notes" in schema["properties"]["run"]["properties"]


@pytest.mark.parametrize("version", [3, 4, 5, 6, 7, 8])
def test_reports_of_schemas_3_to_8_are_still_read(tmp_path, version):
    """Schemas 7, 8 and 9 only added keys: a baseline of each older schema is read, not refused as old or as newer."""
    data = json.loads(V3.read_text())
    data["schema_version"] = version
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert read_report(tmp_path / "old.json")["schema_version"] == version
    data["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "newer.json").write_text(json.dumps(data))
    with pytest.raises(Exception, match=f"has report schema {SCHEMA_VERSION + 1}, newer than this visionaudit's 9"):
        read_report(tmp_path / "newer.json")


def test_a_version_3_report_is_a_baseline_for_a_version_4_run(tmp_path):
    old = read_report(V3)  # the gate's reader: accepted, not refused as old
    assert old["schema_version"] == 3 and all("classes" not in m for m in old["models"].values())
    new = copy.deepcopy(old)
    new["schema_version"] = 4
    for info in new["models"].values():
        info["classes"] = {"count": info["num_classes"], "source": "test", "imagenet1k": False,
                           "names": [str(i) for i in range(info["num_classes"])]}
    (tmp_path / "new.json").write_text(json.dumps(new))
    comparison = compare_reports(old, read_report(tmp_path / "new.json"))
    results = [r for per in comparison["models"].values() for r in per["results"].values()]
    assert comparison["paired"] and len(results) >= 2  # something was compared, image by image
    assert comparison["baseline_schema"] == 3  # the page says why the old side names no top-1 classes
    assert regressions(comparison) == [] and {r.verdict for r in results} <= {"unchanged", "not_compared"}
    assert any(r.verdict == "unchanged" for r in results)
    # No per-image classes in a version-3 report: balanced and per-class accuracy are not compared, and say why.
    for per in comparison["models"].values():
        for name in ("balanced_accuracy", "per_class_accuracy"):
            r = per["results"][name]
            assert r.verdict == "not_compared" and r.missing_side == "baseline" and ("accuracy entry has no per-image classes "
                                                                                     "(outcomes.labels): a run "
                                                                                     "before schema 5") in r.reason


def _as_version_3(part):
    """A partial report as the version-3 suite wrote it: none of what schema 4 added (the model entry's classes,
    run.notes, the per-image labels, the class names, the bounds added with per-class accuracy)."""
    from tests.families.test_families import ADDED_SINCE

    part["schema_version"] = 3
    part["run"].pop("notes", None)
    for info in part["models"].values():
        info.pop("classes", None)
    for entry in part["audits"]:
        data = entry.get("shard_data")
        if data:
            data["arrays"].pop("labels", None)
            data["context"].pop("class_names", None)
            for key in ADDED_SINCE.get(entry["audit"], ()):
                data["thresholds"].pop(key, None)
    return part


def test_version_3_parts_merge_into_a_version_4_report():
    import numpy as np

    rng = np.random.default_rng(7)
    n = 300
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    clean = rng.random(n) < 0.8
    top5 = clean | (rng.random(n) < 0.5)
    labels = rng.integers(0, 20, n)

    whole = synthetic_run(None, lambda t: {"correct": clean, "top5": top5}, ids, ("accuracy",))  # no labels in v3
    parts = [_as_version_3(synthetic_run(Shard(k, 2), lambda t: {"correct": clean, "top5": top5, "labels": labels},
                                          ids, ("accuracy",))) for k in (1, 2)]
    data = parts[0]["audits"][0]["shard_data"]
    assert "min_class_images" not in data["thresholds"] and "labels" not in data["arrays"]  # a genuine v3 part
    merged = merge_reports(parts, ["p1", "p2"])
    assert merged["schema_version"] == SCHEMA_VERSION
    assert [e["outcome"] for e in merged["audits"]] == [e["outcome"] for e in whole["audits"]] == ["passed"]
    assert [e["metrics"] for e in merged["audits"]] == [e["metrics"] for e in whole["audits"]]
    assert merged["audits"][0]["metrics"]["clean_top1"] == float(clean.mean())  # independent of the assessor
    parts[0]["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(Unmergeable, match=f"p1 has schema {SCHEMA_VERSION + 1}; this suite reads schemas 3 to {SCHEMA_VERSION}"):
        merge_reports(parts, ["p1", "p2"])


def test_a_bound_missing_from_the_parts_is_judged_at_the_family_default():
    """Any family, any bound newer than the part: re-judged at the descriptor's default, not refused (here the
    per-class bounds taken out of parts that keep their labels)."""
    import numpy as np

    from visionaudit.families import get_family

    rng = np.random.default_rng(11)
    n = 300
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    arrays = {"correct": rng.random(n) < 0.8, "labels": rng.integers(0, 5, n)}
    whole = synthetic_run(None, lambda t: arrays, ids, ("accuracy",))
    parts = [synthetic_run(Shard(k, 2), lambda t: arrays, ids, ("accuracy",)) for k in (1, 2)]
    for part in parts:
        for key in ("min_class_images", "min_class_accuracy"):
            del part["audits"][0]["shard_data"]["thresholds"][key]
    merged = merge_reports(parts, ["p1", "p2"])["audits"][0]
    defaults = get_family("accuracy").defaults
    assert merged["thresholds"]["min_class_images"] == defaults["min_class_images"] == 10
    assert merged["thresholds"]["min_class_accuracy"] == defaults["min_class_accuracy"]
    assert merged["metrics"] == whole["audits"][0]["metrics"] and merged["outcome"] == whole["audits"][0]["outcome"]


def test_a_run_report_validates_with_classes_and_notes():
    report = json.loads(V3.read_text())
    report["schema_version"] = SCHEMA_VERSION
    report["run"]["notes"] = ["a note"]
    for info in report["models"].values():
        info["classes"] = {"count": 2, "source": "file", "imagenet1k": False, "names": ["a", "b"]}
    jsonschema.validate(report, report_schema())
    del next(iter(report["models"].values()))["classes"]
    with pytest.raises(jsonschema.ValidationError, match="'classes' is a required property"):
        jsonschema.validate(report, report_schema())


def test_a_warping_preprocessing_validates_and_only_as_said():
    """Schema 5: ``keep_aspect`` and ``floor_crop`` appear only when not the usual rule, with their one value."""
    report = json.loads(V3.read_text())
    report["schema_version"] = SCHEMA_VERSION
    info = next(iter(report["models"].values()))
    for m in report["models"].values():
        m["classes"] = {"count": 2, "source": "file", "imagenet1k": False, "names": ["a", "b"]}
    info["preprocessing"].update(keep_aspect=False, floor_crop=True)
    jsonschema.validate(report, report_schema())
    info["preprocessing"]["keep_aspect"] = True  # the usual rule goes unsaid
    with pytest.raises(jsonschema.ValidationError, match="False was expected"):
        jsonschema.validate(report, report_schema())


def test_alpha_on_white_is_in_the_schema_with_its_one_value():
    """Review 44 F3: ``alpha_on_white`` (an HF processor's do_convert_rgb) was written but not in the schema, so any
    value validated; like floor_crop it appears only when true."""
    report = json.loads(V3.read_text())
    report["schema_version"] = SCHEMA_VERSION
    info = next(iter(report["models"].values()))
    for m in report["models"].values():
        m["classes"] = {"count": 2, "source": "file", "imagenet1k": False, "names": ["a", "b"]}
    info["preprocessing"]["alpha_on_white"] = True
    jsonschema.validate(report, report_schema())
    assert "alpha_on_white" in report_schema()["properties"]["models"]["additionalProperties"]["properties"][
        "preprocessing"]["properties"]
    info["preprocessing"]["alpha_on_white"] = False  # the usual rule goes unsaid
    with pytest.raises(jsonschema.ValidationError, match="True was expected"):
        jsonschema.validate(report, report_schema())
