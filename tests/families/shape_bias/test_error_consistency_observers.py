"""The model's error consistency with the human observers (visionaudit/families/shape_bias/consistency.py) against
model-vs-human's own definition, re-implemented here from the CSV files in plain Python; the observers' data set
(texture-vs-shape-raw) verified, and an absent observer named."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest

from visionaudit.data.observers import observer_files
from visionaudit.errors import DataError
from visionaudit.families.shape_bias.consistency import observer_consistency
from visionaudit.families.shape_bias.decisions_csv import read_observers

ROOT = Path(__file__).resolve().parents[3]
OBSERVERS = "texture-vs-shape-raw"


# --- model-vs-human, re-implemented without pandas (github.com/bethgelab/model-vs-human at 79ed7cd1d9ac, code
# licence: see its licenses/CODE_LICENSE). helper/plotting_helper.py get_short_imagename; plotting/analyses.py
# SixteenClassAccuracy.analysis and ErrorConsistency.error_consistency / .analysis, line for line.

def get_short_imagename(imagename):
    splits = imagename.split("_")
    if len(splits) > 1:
        name = splits[-2:]
        if name[0].startswith("n0"):
            name = name[0] + "_" + name[1]
        else:
            name = name[1]
    else:
        name = splits[0]
    return name


def read_csv(path):
    with open(path, newline="") as f:
        rows = [{k.lower(): v for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:
        row["image_id"] = get_short_imagename(row["imagename"])
    return rows


def sixteen_class_accuracy(df):
    return len([r for r in df if r["object_response"] == r["category"]]) / len(df)


def mvh_error_consistency(expected_consistency, observed_consistency):
    if observed_consistency == 1.0:
        return 1.0
    return (observed_consistency - expected_consistency) / (1.0 - expected_consistency)


def mvh_analysis(df1, df2):
    assert len(df1) == len(df2)
    p1, p2 = sixteen_class_accuracy(df1), sixteen_class_accuracy(df2)
    expected_consistency = p1 * p2 + (1 - p1) * (1 - p2)
    df1 = sorted(df1, key=lambda r: r["image_id"])
    df2 = sorted(df2, key=lambda r: r["image_id"])
    assert [r["image_id"] for r in df1] == [r["image_id"] for r in df2]
    observed_consistency = sum((a["object_response"] == a["category"]) == (b["object_response"] == b["category"])
                               for a, b in zip(df1, df2)) / len(df1)
    return {"expected-consistency": expected_consistency, "observed-consistency": observed_consistency,
            "error-consistency": mvh_error_consistency(expected_consistency, observed_consistency)}

# --- end of model-vs-human


def _csvs(folder: Path) -> dict[str, Path]:
    return {p.name.split("_")[1]: p for p in sorted(folder.glob("*.csv"))}


pytestmark = pytest.mark.slow


def test_the_observers_data_set_is_verified_and_the_absent_observer_named(shared_data, tmp_path):
    files = observer_files(shared_data / OBSERVERS)
    assert list(files.files) == [f"subject-{k:02d}" for k in range(2, 11)] and files.missing == ("subject-01",)
    assert files.listed == 10 and "9 of the 10 observers' files: subject-01 absent" in files.note()
    # a changed byte is refused, naming the file and the fix
    copy = tmp_path / OBSERVERS
    shutil.copytree(shared_data / OBSERVERS, copy)
    victim = sorted(copy.iterdir())[3]
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes().replace(b"oven", b"bear", 1))
    with pytest.raises(DataError, match=rf"{victim.name} is not the upstream file .* fetch texture-vs-shape-raw"):
        observer_files(copy)


def test_observers_kappas_are_model_vs_humans_on_their_csvs(shared_data):
    """Each observer against each other, and one observer taken as "the model", against the re-implementation."""
    csvs = _csvs(shared_data / OBSERVERS)
    observers = read_observers(observer_files(shared_data / OBSERVERS))
    rows = {s: read_csv(p) for s, p in csvs.items()}
    model = "subject-04"
    others = {**observers, "subjects": {s: r for s, r in observers["subjects"].items() if s != model}}
    by_image = {r["image_id"]: r for r in rows[model]}
    ids = [f"{by_image[i]['category']}/{i}" for i in observers["images"]]
    shapes = [by_image[i]["category"] for i in observers["images"]]
    found = observer_consistency(ids, observers["subjects"][model], shapes, others, resamples=200)
    for s in others["subjects"]:
        ref = mvh_analysis(rows[model], rows[s])
        got = found["per_observer"][s]
        assert got["n"] == 1280
        assert got["observed"] == pytest.approx(ref["observed-consistency"], abs=1e-12)
        assert got["expected"] == pytest.approx(ref["expected-consistency"], abs=1e-12)
        assert got["kappa"] == pytest.approx(ref["error-consistency"], abs=1e-12)
    pairs = {f"{a} / {b}": mvh_analysis(rows[a], rows[b])["error-consistency"]
             for a, b in combinations(sorted(others["subjects"]), 2)}
    assert found["observers_pairwise"] == pytest.approx(pairs, abs=1e-12) and len(pairs) == 28
    assert found["observers_mean"] == pytest.approx(sum(pairs.values()) / 28)
    # model-vs-human's humans' value: the mean over observers of each one's mean kappa with the others
    per_human = [sum(v for k, v in pairs.items() if h in k.split(" / ")) / 7 for h in others["subjects"]]
    assert found["observers_mean"] == pytest.approx(sum(per_human) / len(per_human))
    assert found["mean"] == pytest.approx(sum(mvh_analysis(rows[model],
                                                           rows[s])["error-consistency"] for s in others["subjects"]) / 8)
    assert found["detail"]["n_trials"] == 1280 and found["detail"]["observers_missing"] == ["subject-01"]


def test_lite0_in_the_audit_report_is_model_vs_humans_on_its_exported_decisions(shared_data, tmp_path, lite0_shape_bias_run):
    """lite0's decisions exported as model-vs-human raw data (``visionaudit shape-bias --export``), compared with each
    observer's CSV by the re-implementation, against what the real audit recorded (all 1,280 stimuli): the session's
    run of lite0's shape-bias audit (tests/conftest.py), which other tests compare against too."""
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    export = subprocess.run([sys.executable, "-m", "visionaudit", "shape-bias", "--model", "efficientnet_lite0", "--export",
                             str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert export.returncode == 0, export.stderr[-3000:]
    exported = read_csv(tmp_path / "cue-conflict_efficientnet-lite0_session-1.csv")
    run, data, report = lite0_shape_bias_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    entry = next(a for a in data["audits"] if "test_shape_bias" in a["nodeid"])
    assert entry["metrics"]["shape_bias"] == pytest.approx(0.2405, abs=5e-5)  # unchanged (the family's docstring)
    table = entry["tables"]["error_consistency"]
    csvs = _csvs(shared_data / OBSERVERS)
    refs = {s: mvh_analysis(exported, read_csv(p)) for s, p in csvs.items()}
    assert set(table) == set(refs) and len(refs) == 9
    for s, ref in refs.items():
        assert table[s]["kappa"] == pytest.approx(ref["error-consistency"], abs=1e-12), s
        assert table[s]["observed"] == pytest.approx(ref["observed-consistency"], abs=1e-12)
        lo, hi = table[s]["kappa_ci"]
        assert lo < table[s]["kappa"] < hi
    assert entry["metrics"]["human_error_consistency"] == pytest.approx(sum(r["error-consistency"] for r in refs.values()) / 9)
    pairs = [mvh_analysis(read_csv(csvs[a]), read_csv(csvs[b]))["error-consistency"] for a, b in combinations(sorted(csvs), 2)]
    assert entry["metrics"]["observers_error_consistency"] == pytest.approx(sum(pairs) / len(pairs))
    detail = entry["metrics"]["error_consistency_detail"]
    assert detail["n_trials"] == 1280 and detail["observers_missing"] == ["subject-01"]
    notes = json.loads(report.read_text())["run"]["notes"]
    assert any("subject-01 absent" in n for n in notes), notes


def _root_without_observers(shared_data: Path, tmp_path: Path) -> Path:
    """A data root with everything the shape-bias and accuracy audits read but the observers' decisions."""
    root = tmp_path / "data"
    root.mkdir()
    for item in shared_data.iterdir():
        if item.name != OBSERVERS:
            (root / item.name).symlink_to(item)
    return root


@pytest.mark.parametrize("offline", [True, False])
def test_without_the_observers_shape_bias_runs_and_the_reason_is_recorded(shared_data, tmp_path, offline):
    """The observers are optional for the gate: a data root without them (offline, or a root the user named, which
    is never fetched into) runs shape bias and records why the error consistency is absent, said once."""
    from tests.audit_runs import audit

    root = _root_without_observers(shared_data, tmp_path)
    proc, report = audit(tmp_path, root, "r", "-n", "0", "-k", "accuracy or test_shape_bias", "--audit-samples", "64",
                         *(["--audit-offline"] if offline else []))
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1) and "stopped at startup" not in output and "Traceback" not in output, output[-3000:]
    entry = next(a for a in report["audits"] if a["nodeid"].endswith("test_shape_bias[tests.tiny_models:tiny]"))
    assert entry["outcome"] in ("passed", "failed") and isinstance(entry["metrics"]["shape_bias"], float)
    assert "human_error_consistency" not in entry["metrics"] and "error_consistency" not in entry["tables"]
    reason = entry["metrics"]["error_consistency_detail"]["reason"]
    fetch = f"python -m visionaudit fetch {OBSERVERS} --dest {root}"
    assert str(root / OBSERVERS) in reason and fetch in reason
    said = [n for n in report["run"]["notes"] if "error consistency with the human observers" in n]
    assert len(said) == 1 and fetch in said[0], report["run"]["notes"]
    assert output.count(f"note: {said[0]}") == 1
    assert any(a["audit"] == "accuracy" and a["outcome"] in ("passed", "failed") for a in report["audits"])


def test_a_corrupt_observers_file_still_stops_the_run_naming_the_fix(shared_data, tmp_path):
    from tests.audit_runs import audit

    root = _root_without_observers(shared_data, tmp_path)
    shutil.copytree(shared_data / OBSERVERS, root / OBSERVERS)
    victim = min((root / OBSERVERS).glob("*.csv"))
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes().replace(b"oven", b"bear", 1))
    proc, _ = audit(tmp_path, root, "r", "-n", "0", "-k", "test_shape_bias", "--audit-samples", "64", "--audit-offline")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4 and f"{victim.name} is not the upstream file" in output, output[-3000:]
    assert f"python -m visionaudit fetch {OBSERVERS} --dest {root}" in output and "Traceback" not in output
