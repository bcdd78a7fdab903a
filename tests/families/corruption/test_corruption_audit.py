"""The corruption audit end to end on a tiny model and on a synthetic ImageNet-C folder, and what a run could not do
(a setting its device could not follow) said in the summary and through a merge of shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tests.families.corruption.imagenet_c_folders import (
    BRIGHT,
    CONFIG,
    DARK,
    FOLDER_CONFIG,
    write_folder,
)
from visionaudit.config import load_config
from visionaudit.families import corruption as C
from visionaudit.families.corruption.imagenet_c import ALEXNET_ERRORS, BENCHMARK
from visionaudit.families.outcomes import decode
from visionaudit.families.records import report_schema
from visionaudit.formatting import fmt
from visionaudit.html.page import render

ROOT = Path(__file__).resolve().parents[3]


def _audit(shared_data: Path, tmp_path: Path, max_mce: float, *extra: str,
           settings: str = "") -> tuple[subprocess.CompletedProcess, dict]:
    config = tmp_path / "audit.toml"
    config.write_text(CONFIG.format(max_mce=max_mce) + settings)
    report = tmp_path / "report.json"
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    cmd = [sys.executable, "-m", "pytest", "audits/test_corruption.py", "-p", "no:cacheprovider", "--model",
           "tests.tiny_models:tiny",
           "--audit-samples", "60", f"--audit-config={config}", f"--audit-json={report}", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    data = json.loads(report.read_text())
    jsonschema.validate(data, report_schema())
    return proc, data


@pytest.mark.slow
def test_the_audit_on_a_tiny_model(shared_data, tmp_path):
    """The tiny random model gets every image wrong: contrast's own bound (0.999) fails it, the default (1.0) not.
    Asked for nvJPEG (jpeg_on_device) on a CPU model, every entry and the summary say the round trip used libjpeg."""
    proc, data = _audit(shared_data, tmp_path, 1000.0, "-n", "2", settings="jpeg_on_device = true\nbatches_ahead = 2\n")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    entries = {a["nodeid"].split("::")[1]: a for a in data["audits"]}
    conditions = [a for a in data["audits"] if "corruption" in a["params"]]
    assert len(conditions) == 4 and len({a["worker"] for a in data["audits"]}) == 1  # one worker ran the whole family
    assert {a["params"]["corruption"]: a["outcome"] for a in conditions} == {"brightness": "passed", "contrast": "failed"}
    contrast = entries["test_corruption[tests.tiny_models:tiny-contrast-5]"]
    assert "under contrast at severity 5 is above max_error 0.999" in contrast["message"]
    assert contrast["thresholds"]["max_error"] == 0.999 and contrast["metrics"]["n_images"] == 40
    assert contrast["metrics"]["subset"] == "40 of 60 labelled images" and contrast["metrics"]["protocol"]["jpeg_quality"] == 85
    assert (contrast["outcomes"]["set"] == "corruption" and contrast["outcomes"]["n"] == 40
            and data["samples"]["corruption"]["n"] == 40)
    mce = entries["test_mce[tests.tiny_models:tiny]"]["metrics"]
    errors = {c: {s: entries[f"test_corruption[tests.tiny_models:tiny-{c}-{s}]"]["metrics"]["error"] for s in (1, 5)}
              for c in ("brightness", "contrast")}
    by_hand = [100 * (errors[c][1] + errors[c][5]) / (ALEXNET_ERRORS[c][0] + ALEXNET_ERRORS[c][4]) for c in errors]
    assert mce["mce"] == pytest.approx(sum(by_hand) / 2) and not mce["complete"]
    assert entries["test_mce[tests.tiny_models:tiny]"]["outcome"] == "passed"
    assert data["aggregates"]["corruption"]["models"]["tests.tiny_models:tiny"]["mce"] == pytest.approx(mce["mce"])
    lo, hi = mce["mce_ci"]
    assert lo <= mce["mce"] <= hi and "mCE over 2 of the 15 corruptions" in mce["note"]
    assert "corruption, tests.tiny_models:tiny: mCE" in proc.stdout and "not comparable with published" in proc.stdout
    word = "jpeg_on_device is set but the model runs on cpu: the round trip used libjpeg"
    assert f"corruption, tests.tiny_models:tiny: {word}" in proc.stdout, proc.stdout[-3000:]
    assert all(a["metrics"]["not_honoured"] == {"jpeg_on_device": word} and a["metrics"]["protocol"]["jpeg_codec"] == "libjpeg"
               for a in data["audits"] if a["outcome"] != "deselected"), [a["metrics"].get("not_honoured")
                                                                          for a in data["audits"]]
    html = render(data)  # the page's section: the mCE line, the caveat, a row per corruption with its errors
    section = html.split('<section id="corruption">', 1)[1].split("</section>", 1)[0]
    assert f"mCE {fmt(mce['mce'])} [95% {fmt(lo)}, {fmt(hi)}]" in section and "not comparable with published" in section
    assert f"<td>contrast</td><td>{fmt(mce['ce']['contrast'])}</td>" in section


@pytest.mark.slow
def test_the_mce_gate_fails_above_its_bound(shared_data, tmp_path):
    proc, data = _audit(shared_data, tmp_path, 1.0, "-k", "mce")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    (entry,) = [a for a in data["audits"] if a["outcome"] != "deselected" and "mce" in a["metrics"]]
    assert entry["outcome"] == "failed" and "is above max_mce 1.0" in entry["message"]


@pytest.mark.slow
def test_an_imagenet_c_folder_through_the_audit(tmp_path):
    """--audit-imagenet-c end to end: the files scored as they are, paired with their originals by sample id."""
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=300)
    write_folder(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})  # 2 of 5 wrong
    write_folder(tmp_path / "c" / "fog" / "2", {**clean, "a.JPEG": BRIGHT})  # 1 of 5 wrong
    config = tmp_path / "audit.toml"
    config.write_text(FOLDER_CONFIG.format(max_mce=1000.0))
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    cmd = [sys.executable, "-m", "pytest", "audits/test_corruption.py", "-p", "no:cacheprovider", "--model",
           "tests.tiny_models:red_threshold_1k", f"--audit-data={tmp_path}", f"--audit-images={tmp_path / 'val'}",
           f"--audit-imagenet-c={tmp_path / 'c'}", f"--audit-config={config}", f"--audit-json={report}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(report.read_text())
    jsonschema.validate(data, report_schema())
    by = {(a["params"].get("corruption"), a["params"].get("severity")): a for a in data["audits"]}
    assert by[("fog", 1)]["metrics"]["error"] == pytest.approx(0.4) and by[("fog", 2)]["metrics"]["error"] == pytest.approx(0.2)
    assert by[("fog", 1)]["metrics"]["discordant"] == [2, 0] and by[("fog", 1)]["metrics"]["clean_error"] == 0.0
    assert by[("fog", 1)]["metrics"]["source"] == f"ImageNet-C folder {tmp_path / 'c'}"
    assert data["run"]["imagenet_c"] == str((tmp_path / "c").resolve())  # where the page finds its images (review 26, 8)
    # per-image outcomes, compactly: the ids once (samples.imagenet-c), bits per condition (issue 26)
    ids = data["samples"]["imagenet-c"]["ids"]
    assert ids == ["n01440764/a.JPEG", "n01440764/b.JPEG", "n01440764/c.JPEG", "n01443537/d.JPEG", "n01443537/e.JPEG"]
    assert by[("fog", 1)]["outcomes"]["set"] == "imagenet-c"
    assert decode(by[("fog", 1)]["outcomes"]).tolist() == [True, True, False, True, False]
    assert decode(by[("fog", 2)]["outcomes"]).tolist() == [False, True, True, True, True]
    assert all(by[("snow", s)]["outcome"] == "skipped" and "snow/" in by[("snow", s)]["message"] for s in (1, 2))
    mce = by[(None, None)]["metrics"]
    assert mce["ce"]["fog"] == pytest.approx(100 * 0.6 / (0.67474 + 0.7605))
    assert mce["relative_ce"]["fog"] == pytest.approx(100 * 0.6 / (0.67474 + 0.7605 - 2 * 0.43478))
    assert mce["missing"]["snow"].startswith("not available: snow/1 is not in the ImageNet-C folder")
    assert not mce["comparable"] and "not comparable" in proc.stdout

    # In 2 shards merged (visionaudit merge): the unsharded report, field by field.
    from tests.sharded_runs import differences, merge_cli, without_timings

    for k in (1, 2):
        part = subprocess.run([*cmd[:-1], f"--audit-json={tmp_path / f'part{k}.json'}", "--audit-shard", f"{k}/2"], cwd=ROOT,
                              env=env,
                              capture_output=True, text=True, timeout=600)
        assert (tmp_path / f"part{k}.json").exists(), part.stdout[-3000:] + part.stderr[-3000:]
        sizes = json.loads((tmp_path / f"part{k}.json").read_text())["samples"]["imagenet-c"]["n"]
        assert 0 < sizes < 5
    merged = merge_cli(str(tmp_path / "part2.json"), str(tmp_path / "part1.json"), "-o", str(tmp_path / "merged.json"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert differences(without_timings(data), without_timings(json.loads((tmp_path / "merged.json").read_text()))) == []


@pytest.mark.slow
def test_an_imagenet_c_folder_with_a_folder_it_does_not_score_and_a_model_it_does_not_fit(tmp_path):
    """A corruption folder the run does not score (brightness, not configured, partly extracted: 2 of the 5 files) and
    sorting first used to be every condition's reference: each scored condition errored, "holds other images". And a
    model of its own classes (the folder's labels are ImageNet-1k's WNIDs) was scored anyway, every image counted
    wrong: error 1.0 as a measurement. Now the scored folders are compared with each other, and that model's tests
    say the folder does not apply to it."""
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=300)
    write_folder(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})  # 2 of 5 wrong
    write_folder(tmp_path / "c" / "fog" / "2", {**clean, "a.JPEG": BRIGHT})  # 1 of 5 wrong
    write_folder(tmp_path / "c" / "brightness" / "1", clean)
    for gone in ("n01440764/a.JPEG", "n01440764/b.JPEG", "n01443537/d.JPEG"):
        (tmp_path / "c" / "brightness" / "1" / gone).unlink()
    (tmp_path / "classes.txt").write_text("n01440764\nn01443537\n")  # red_threshold's two outputs, named by WNID
    config = tmp_path / "audit.toml"
    config.write_text(FOLDER_CONFIG.format(max_mce=1000.0).replace('corruptions = ["fog", "snow"]', 'corruptions = ["fog"]'))
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    own = f"tests.tiny_models:red_threshold?classes={tmp_path / 'classes.txt'}&name=own"
    cmd = [sys.executable, "-m", "pytest", "audits/test_corruption.py", "-p", "no:cacheprovider", "--model",
           "tests.tiny_models:red_threshold_1k", "--model", own, f"--audit-data={tmp_path}", f"--audit-images={tmp_path / 'val'}",
           f"--audit-imagenet-c={tmp_path / 'c'}", f"--audit-config={config}", f"--audit-json={report}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    data = json.loads(report.read_text())
    by = {(a["model"], a["params"].get("corruption"), a["params"].get("severity")): a for a in data["audits"]}
    imagenet = "tests.tiny_models:red_threshold_1k"
    assert by[(imagenet, "fog", 1)]["outcome"] == "passed", by[(imagenet, "fog", 1)]["message"]
    assert by[(imagenet, "fog", 1)]["metrics"]["error"] == pytest.approx(0.4)
    assert by[(imagenet, "fog", 2)]["metrics"]["error"] == pytest.approx(0.2)
    assert by[(imagenet, None, None)]["outcome"] == "passed"
    assert data["samples"]["imagenet-c"]["n"] == 5
    for key in [("own", "fog", 1), ("own", "fog", 2), ("own", None, None)]:
        assert by[key]["outcome"] == "skipped" and "error" not in by[key]["metrics"], by[key]
        assert "not ImageNet-1k's" in by[key]["message"] and "does not apply" in by[key]["message"], by[key]["message"]
    # own judged nothing in this run (its only family does not apply): not a pass, said so
    assert proc.returncode == 1 and data["verdict"] == "incomplete", proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "own: none of its 3 test(s) judged anything" in proc.stdout


@pytest.mark.slow
def test_an_imagenet_c_folder_s_reference_is_the_run_s_whatever_the_model_order(tmp_path):
    """Two models configured with other corruptions (fog; snow for the second): the folder the run's images are read
    from, and fingerprinted by (samples.imagenet-c), is the run's first scored condition (fog/1), whichever model runs
    first. It was each model's own first, so the report's fingerprint followed the --model order (or the worker that
    finished first with -n 2): the same images read as other images by a baseline compare."""
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=300)
    for condition, wrong in (("fog/1", "c.JPEG"), ("fog/2", "a.JPEG"), ("snow/1", "b.JPEG"), ("snow/2", "d.JPEG")):
        write_folder(tmp_path / "c" / condition, {**clean, wrong: BRIGHT if clean[wrong] == DARK else DARK})  # other files
    other = "tests.tiny_models:red_threshold_1k?size=224"
    config = tmp_path / "audit.toml"
    config.write_text(FOLDER_CONFIG.format(max_mce=1000.0).replace('corruptions = ["fog", "snow"]', 'corruptions = ["fog"]')
                      + f'\n[models."{other}".corruption]\ncorruptions = ["snow"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    fingerprints = []
    first = "tests.tiny_models:red_threshold_1k"
    for models in ([first, f"{other}&name=b"], [f"{other}&name=b", first]):
        report = tmp_path / f"report{len(fingerprints)}.json"
        cmd = [sys.executable, "-m", "pytest", "audits/test_corruption.py", "-p", "no:cacheprovider", "-p", "no:xdist",
               *[a for m in models for a in ("--model", m)], f"--audit-data={tmp_path}", f"--audit-images={tmp_path / 'val'}",
               f"--audit-imagenet-c={tmp_path / 'c'}", f"--audit-config={config}", f"--audit-json={report}"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        data = json.loads(report.read_text())
        passed = {(a["model"], a["params"].get("corruption")) for a in data["audits"] if a["outcome"] == "passed"}
        assert passed == {(first, "fog"), (first, None), ("b", "snow"), ("b", None)}
        fingerprints.append(data["samples"]["imagenet-c"]["fingerprint"])
    assert fingerprints[0] == fingerprints[1]


def test_the_summary_says_what_the_run_could_not_do():
    """From the report's entries (not the live run): a merged report or a baseline says it as the run did."""
    cpu_word = "jpeg_on_device is set but the model runs on cpu: the round trip used libjpeg"
    mps_word = ("batches_ahead = 2 is set but the model runs on mps: each batch was prepared in turn (PyTorch's MPS backend "
                "crashes when two threads run tensor ops at once)")
    entries = [{"model": "m", "audit": "corruption", "params": {"corruption": c, "severity": 1}, "thresholds": {"alpha": 0.05},
                "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5, "n_images": 10, "source": "kernels",
                            "comparable": False, "not_honoured": {"jpeg_on_device": cpu_word}}} for c in BENCHMARK]
    entries += [{"model": "other", "audit": "corruption", "params": {}, "thresholds": {}, "outcome": "error",
                 "metrics": {"not_honoured": {"batches_ahead": mps_word, "jpeg_on_device": cpu_word.replace("cpu", "mps")}}},
                {"model": "fine", "audit": "corruption", "params": {"corruption": "fog", "severity": 1}, "thresholds": {},
                 "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5, "n_images": 10, "source": "kernels"}}]
    report = {"audits": entries, "aggregates": {"corruption": C.FAMILY.aggregate(entries)}}
    lines = C.FAMILY.summary_lines(report)
    said = [line for line in lines if "is set but" in line]
    assert said == [f"corruption, m: {cpu_word}", f"corruption, other: {mps_word}",
                    "corruption, other: jpeg_on_device is set but the model runs on mps: the round trip used libjpeg"]
    assert lines[lines.index(said[0]) - 1].startswith("corruption, m: highest CE")  # after m's own lines
    assert not any(line.startswith("corruption, fine:") and "is set but" in line for line in lines)


def test_shards_merge_with_what_their_runs_could_not_do(monkeypatch):
    """``visionaudit merge`` of corruption parts whose runs could not follow a setting: every merged entry (each
    condition, the mCE) says it, as the unsharded run's do, and so does the merged report's summary; parts that
    differ in it (one shard's device could follow the setting, another's could not) merge, each reason said once with
    the parts that gave it; parts that differ only in ``batches_ahead`` (a speed setting) merge; parts that differ in a
    bound are refused, naming the bound and the parts."""
    from tests import synthetic_runs as S
    from visionaudit import config as config_module
    from visionaudit.data.shards import Shard
    from visionaudit.report.merge import Unmergeable, merge_reports

    mps = ("batches_ahead = 2 is set but the model runs on mps: each batch was prepared in turn (PyTorch's MPS backend "
           "crashes when two threads run tensor ops at once)")
    cpu = "jpeg_on_device is set but the model runs on cpu: the round trip used libjpeg"
    rng = np.random.default_rng(5)
    n = 300
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    clean = rng.random(n) < 0.7
    bits = {(c, s): clean & (rng.random(n) < 0.8) for c, s in (("fog", 1), ("contrast", 1))}

    def run(shard, said, **bounds):
        monkeypatch.setattr(S.GivenCorruptionBits, "not_honoured", said, raising=False)
        monkeypatch.setattr(config_module, "load_config", lambda path: _with_bounds(load_config(path), bounds))
        return S.synthetic_corruption_run(shard, ids, clean, bits, True)

    said = {"jpeg_on_device": cpu, "batches_ahead": mps}
    whole = run(None, said)
    merged = merge_reports([run(Shard(k, 2), said) for k in (1, 2)], ["p1", "p2"])
    entries = merged["audits"]
    assert len(entries) == 3 and all(e["metrics"]["not_honoured"] == said for e in entries), [e["metrics"] for e in entries]
    assert [e["metrics"] for e in entries] == [e["metrics"] for e in whole["audits"]]
    lines = C.FAMILY.summary_lines(merged)
    assert f"corruption, m: {cpu}" in lines and f"corruption, m: {mps}" in lines, lines

    # one shard's machine could follow both settings, the other's could not follow batches_ahead (another reason)
    nvjpeg = "batches_ahead = 2 is set but the JPEG round trip runs with nvJPEG (jpeg_on_device): each batch was prepared in turn"
    merged = merge_reports([run(Shard(1, 2), {"batches_ahead": mps}), run(Shard(2, 2), {})], ["p1", "p2"])
    assert all(e["metrics"]["not_honoured"] == {"batches_ahead": f"{mps} (p1)"} for e in merged["audits"])
    merged = merge_reports([run(Shard(1, 3), {"batches_ahead": mps, "jpeg_on_device": cpu}),
                            run(Shard(2, 3), {"batches_ahead": nvjpeg, "jpeg_on_device": cpu}),
                            run(Shard(3, 3), {"batches_ahead": mps, "jpeg_on_device": cpu})], ["p1", "p2", "p3"])
    assert all(e["metrics"]["not_honoured"] == {"batches_ahead": f"{mps} (p1, p3); {nvjpeg} (p2)", "jpeg_on_device": cpu}
               for e in merged["audits"])
    assert f"corruption, m: {mps} (p1, p3); {nvjpeg} (p2)" in C.FAMILY.summary_lines(merged)

    # batches_ahead moves no result: parts run with other values of it are one run; a bound is not
    parts = [run(Shard(1, 2), {}, batches_ahead=1), run(Shard(2, 2), {}, batches_ahead=4)]
    assert [e["shard_data"]["thresholds"]["batches_ahead"] for p in parts for e in p["audits"]][::3] == [1, 4]
    merged = merge_reports(parts, ["p1", "p2"])
    assert [e["metrics"] for e in merged["audits"]] == [e["metrics"] for e in run(None, {})["audits"]]
    # and the merged run says so once (its entries carry p1's value, which would otherwise stand for both)
    said = [n for n in merged["run"]["notes"] if "batches_ahead" in n]
    assert said == ["corruption: the parts ran with different batches_ahead (1 in p1; 4 in p2), a setting of speed "
                    "that moves no result; the merged entries show p1's"], merged["run"]["notes"]
    same = merge_reports([run(Shard(1, 2), {}, batches_ahead=4), run(Shard(2, 2), {}, batches_ahead=4)], ["p1", "p2"])
    assert not [n for n in same["run"]["notes"] if "batches_ahead" in n or "config files" in n], same["run"]["notes"]
    # each machine's own audit.toml: run.config_file is p1's, and the notes say the other was another file
    parts[0]["run"]["config_file"], parts[1]["run"]["config_file"] = "/gpu-host/audit.toml", "/cpu-host/audit.toml"
    assert ("the parts were run with different config files (/gpu-host/audit.toml in p1; /cpu-host/audit.toml in p2); "
            "run.config_file shows p1's") in merge_reports(parts, ["p1", "p2"])["run"]["notes"]
    parts[1] = run(Shard(2, 2), {}, batches_ahead=4, max_error=0.5)
    with pytest.raises(Unmergeable) as refused:
        merge_reports(parts, ["p1", "p2"])
    assert "the parts judged it with different thresholds, p1 vs p2: max_error (0.99 vs 0.5)" in str(refused.value)
    assert "batches_ahead" not in str(refused.value) and "same audit.toml" in str(refused.value)
    assert "same kind of device" not in str(refused.value)

    # jpeg_on_device followed on one shard's CUDA device (nvJPEG) and not on another's CPU (libjpeg): other pixels,
    # refused, and the fix named is the device, not the audit.toml both shards already shared
    def codec(name):
        monkeypatch.setattr(S.GivenCorruptionBits, "describe", lambda self, jpeg: {"jpeg_round_trip": jpeg, "jpeg_codec": name})
    codec("libjpeg")
    on_cpu = run(Shard(1, 2), {"jpeg_on_device": cpu})
    codec("nvjpeg")
    on_gpu = run(Shard(2, 2), {})
    with pytest.raises(Unmergeable) as refused:
        merge_reports([on_cpu, on_gpu], ["p1", "p2"])
    assert "jpeg_codec ('libjpeg' vs 'nvjpeg')" in str(refused.value), str(refused.value)
    assert "on the same kind of device (or with jpeg_on_device = false)" in str(refused.value)


def _with_bounds(config, bounds):
    """``config`` with the corruption family's bounds set as an audit.toml would set them."""
    import dataclasses

    audits = dict(config.audits)
    audits["corruption"] = {**audits.get("corruption", {}), **bounds}
    return dataclasses.replace(config, audits=audits)
