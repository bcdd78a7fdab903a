"""--audit-shard I/N and `visionaudit merge`: shards partition the images, and the merged report equals the
unsharded run's, metric by metric (real audits, a tiny model, real data)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.audit_runs import ROOT, audit
from visionaudit.datasets import labelled_images
from visionaudit.sharding import Shard, parse_shard, select, shard_of

# The split families (accuracy, robustness, shape bias) and two that run whole in shard 1.
SELECTION = "test_clean_top1 or test_transform or test_shape_bias or test_shape_only or test_weight_shares or bf16_cpu"
TIMINGS = ("start", "end", "duration", "command", "phases", "merged_from", "exit_status", "workers")


def merge_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visionaudit", "merge", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def differences(a, b, path: str = "") -> list[str]:
    """Every place where two JSON documents differ (numbers exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in {'first' if k in a else 'second'}" for k in set(a) ^ set(b)]
        return out + [d for k in sorted(set(a) & set(b)) for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


def without_timings(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    for key in TIMINGS:
        report["run"].pop(key, None)
    for entry in report["audits"]:
        entry.pop("duration", None)
        entry.pop("worker", None)
    return report


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=60, unique=True), st.integers(1, 5))
def test_shards_partition_the_images_whatever_else_is_in_the_set(ids, count):
    shards = [{i for i in ids if shard_of(i, count) == k} for k in range(1, count + 1)]
    assert sorted(i for s in shards for i in s) == sorted(ids)  # each image in exactly one shard
    # An image's shard depends on its id alone: the same in any subset, on any machine.
    assert all(shard_of(i, count) == shard_of(i, count) for i in ids[: len(ids) // 2])


def test_shards_of_the_real_labelled_sample_are_balanced_and_named_as_the_whole(shared_data):
    whole = labelled_images(shared_data / "imagenet-sample")
    parts = [select(whole, Shard(k, 3)) for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == len(whole) == 1000
    assert set().union(*(p.sample_ids for p in parts)) == set(whole.sample_ids)
    assert all(280 < len(p) < 390 for p in parts), [len(p) for p in parts]  # 333 each, binomial sd ~15
    assert all(p.name == whole.name for p in parts) and len({p.key for p in parts}) == 3
    subset = whole.stratified_subset(300, 0)
    assert set(select(subset, Shard(2, 3)).sample_ids) == set(subset.sample_ids) & set(parts[1].sample_ids)


@pytest.mark.parametrize("text, error", [("3/2", "between 1 and N"), ("0/2", "between 1 and N"), ("1-2", "I/N"), ("a/b", "I/N")])
def test_a_bad_shard_is_refused_naming_the_form(text, error):
    with pytest.raises(ValueError, match=error):
        parse_shard(text)


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    """The unsharded run and its 2 and 3 shards, on 60 images per set."""
    tmp = tmp_path_factory.mktemp("shards")
    args = ("-k", SELECTION, "--audit-samples", "60")
    out = {"whole": audit(tmp, shared_data, "whole", *args)}
    for count in (2, 3):
        for index in range(1, count + 1):
            out[f"{index}/{count}"] = audit(tmp, shared_data, f"part{index}of{count}", *args, "--audit-shard", f"{index}/{count}")
    for name, (proc, data) in out.items():
        assert data is not None, name + proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, out


@pytest.mark.parametrize("count", [2, 3])
def test_merged_shards_equal_the_unsharded_run(runs, count):
    tmp, out = runs
    parts = [str(tmp / f"part{i}of{count}.json") for i in range(count, 0, -1)]  # any order
    proc = merge_cli(*parts, "-o", str(tmp / f"merged{count}.json"))
    whole = out["whole"][1]
    assert proc.returncode == whole["run"]["exit_status"] == 1, proc.stdout + proc.stderr  # the tiny model fails gates
    merged = json.loads((tmp / f"merged{count}.json").read_text())
    assert differences(without_timings(whole), without_timings(merged)) == []
    # Not vacuous: the shards judged fewer images, and the merge re-judged the statistics on all of them.
    split = [e for e in whole["audits"] if e["audit"] in ("accuracy", "robustness", "shape_bias")]
    assert len(split) == 13 and all(e["outcome"] in ("passed", "failed") for e in split)
    part = out[f"1/{count}"][1]
    assert all(e["outcome"] == "not_judged" for e in part["audits"] if e["audit"] in ("accuracy", "robustness", "shape_bias"))
    assert merged["samples"]["labelled"]["ids"] == whole["samples"]["labelled"]["ids"]
    assert "shard_data" not in json.dumps(merged) and merged["run"]["shard"] is None


def test_only_split_audits_run_in_later_shards(runs):
    _, out = runs
    families = lambda data: {e["audit"] for e in data["audits"]}  # noqa: E731
    assert families(out["1/3"][1]) == families(out["whole"][1]) >= {"channel_bias", "deployment"}
    assert families(out["2/3"][1]) == families(out["3/3"][1]) == {"accuracy", "robustness", "shape_bias"}
    assert "shard 2/3" in out["2/3"][0].stdout


def test_parts_that_do_not_belong_together_are_refused_naming_each_difference(runs):
    tmp, _ = runs
    part = lambda i, n: json.loads((tmp / f"part{i}of{n}.json").read_text())  # noqa: E731

    def write(name: str, data: dict) -> str:
        (tmp / name).write_text(json.dumps(data))
        return str(tmp / name)

    cases = {
        "missing": ([str(tmp / "part1of3.json"), str(tmp / "part2of3.json")], "3/3 missing"),
        "twice": ([str(tmp / "part1of2.json"), str(tmp / "part1of2.json")], "given twice"),
        "mixed counts": ([str(tmp / "part1of2.json"), str(tmp / "part2of3.json")], "split the images differently"),
        "unsharded": ([str(tmp / "whole.json"), str(tmp / "part1of2.json")], "not a partial report"),
    }
    other_seed = part(2, 2)
    other_seed["run"]["seed"] = 7
    cases["seed"] = ([str(tmp / "part1of2.json"), write("seed.json", other_seed)], "seed (--audit-seed) differs")
    other_weights = part(2, 2)
    other_weights["models"]["tests.tiny_models:tiny"]["sha256"] = "f" * 64
    cases["weights"] = ([str(tmp / "part1of2.json"), write("weights.json", other_weights)], "has other weights")
    other_bound = part(2, 2)
    next(e for e in other_bound["audits"] if "shard_data" in e)["shard_data"]["thresholds"]["min_images"] = 1
    cases["thresholds"] = ([str(tmp / "part1of2.json"), write("bound.json", other_bound)], "different thresholds")
    for name, (paths, message) in cases.items():
        proc = merge_cli(*paths, "-o", str(tmp / "refused.json"))
        assert proc.returncode == 4 and message in proc.stderr, (name, proc.stderr)
    assert not (tmp / "refused.json").exists()


def test_a_shard_is_never_compared_with_a_baseline(shared_data, tmp_path):
    baseline = tmp_path / "old.json"
    baseline.write_text("{}")
    proc, data = audit(tmp_path, shared_data, "refused", "--audit-shard", "1/2", "--audit-baseline", str(baseline))
    assert proc.returncode == 4
    assert "python -m visionaudit compare BASELINE.json REPORT.json" in proc.stdout + proc.stderr
    assert data is not None and "--audit-shard 1/2 with --audit-baseline" in data["error"]
