"""The corruption family in shards (issue 26): lite0's corruption audit run whole and in 3 shards, merged by
`visionaudit merge`, equals the unsharded run field by field; the merge of hand-made per-image bits equals the whole
judgement (tests/synthetic_runs.py)."""

from __future__ import annotations

import json
import os

import pytest

from tests.once import built_once, run_audit, save_process
from tests.sharded_runs import (
    differences,
    load_runs,
    merge_cli,
    shard_names,
    without_timings,
)
from tests.synthetic_runs import synthetic_corruption_run
from visionaudit.data.shards import Shard

# What the merge must reproduce (every number recomputed from the parts' per-image bits) does not need many images:
# 30 (60 before stop 36), each part too few to judge at min_images 25 (a part of 3 shards holds about 10), the whole run
# enough. Three shards only (two as well before stop 39: six lite0 runs, the slowest fixture of the sharding tests):
# merge's reading of 2 parts as of 3 is tested on the cheap runs of tests/test_sharding.py.
CORRUPTION_IMAGES, CORRUPTION_MIN_IMAGES, SHARDS = 30, 25, 3
CORRUPTION_CONFIG = f"""
[audits.corruption]
corruptions = ["gaussian_noise", "contrast"]
severities = [2, 4]
images = {CORRUPTION_IMAGES}
bootstrap_resamples = 300
min_images = {CORRUPTION_MIN_IMAGES}
"""
CORRUPTION_FIELDS = ("error", "error_ci", "clean_error", "p_value", "p_value_holm", "significant", "discordant", "n_images",
                     "mce", "mce_ci", "relative_mce", "relative_mce_ci", "mean_error", "ce", "relative_ce", "jpeg_only_error")


@pytest.fixture(scope="session")
def corruption_runs(shared_data, request):
    """lite0's corruption audit (2 corruptions x 2 severities on a 30-image subset of 100 labelled images):
    unsharded, and in 3 shards merged; made once per session and shared by the xdist workers (tests/once.py)."""
    args = ("-k", "test_corruption or test_mce", "--audit-samples", "100")
    names = shard_names(SHARDS)

    def build(folder):
        config = folder / "audit.toml"
        config.write_text(CORRUPTION_CONFIG)
        for name, extra in names.values():
            proc = run_audit(request, folder, shared_data, name, *args, f"--audit-config={config}", *extra,
                             model="efficientnet_lite0")
            save_process(folder / f"{name}.process.json", proc)

    tmp = built_once(request, "corruption-shards", build)
    out = load_runs(tmp, names)
    merged = tmp / f"merged{SHARDS}-{os.getpid()}.json"  # each worker merges for itself: merge is what is tested
    proc = merge_cli(*[str(tmp / f"part{i}of{SHARDS}.json") for i in range(SHARDS, 0, -1)], "-o", str(merged))  # any order
    assert proc.returncode == out["whole"][1]["run"]["exit_status"], proc.stdout + proc.stderr
    out[f"merged{SHARDS}"] = json.loads(merged.read_text())
    return out


@pytest.mark.slow
def test_merged_corruption_shards_equal_the_unsharded_run(corruption_runs):
    """Errors, Wilson intervals, McNemar p-values, Holm, CE, mCE and its bootstrap interval, the clean and JPEG-only
    errors: the merge recomputes them from the shards' per-image bits and gets the unsharded run's, field by field."""
    from visionaudit.families.corruption.imagenet_c import ALEXNET_ERRORS
    from visionaudit.families.outcomes import decode

    count = SHARDS
    whole, merged = corruption_runs["whole"][1], corruption_runs[f"merged{count}"]
    assert differences(without_timings(whole), without_timings(merged)) == []
    entries = [e for e in merged["audits"] if e["audit"] == "corruption"]
    assert len(entries) == 5 and all(e["outcome"] in ("passed",
                                                      "failed") for e in entries), [(e["nodeid"], e["outcome"]) for e in entries]
    for entry in entries:  # the listed fields are there, so the equality above covers them
        assert set(CORRUPTION_FIELDS) & set(entry["metrics"]) >= ({"error", "error_ci", "p_value", "p_value_holm", "discordant"}
                                                                   if "corruption" in entry["params"]
                                                                   else {"mce", "mce_ci", "ce"})
    # Not vacuous: each part scored fewer images (too few to judge: min_images 25), all 30 merged.
    parts = [corruption_runs[f"{i}/{count}"][1] for i in range(1, count + 1)]
    sizes = [len(p["samples"]["corruption"]["ids"]) for p in parts]
    assert sum(sizes) == CORRUPTION_IMAGES and max(sizes) < CORRUPTION_MIN_IMAGES, sizes
    assert all(e["outcome"] == "not_judged" for p in parts for e in p["audits"] if e["audit"] == "corruption")
    # the shards' ids together are the unsharded subset, in its order
    assert merged["samples"]["corruption"]["ids"] == whole["samples"]["corruption"]["ids"]
    assert sorted(i for p in parts for i in p["samples"]["corruption"]["ids"]) == sorted(whole["samples"]["corruption"]["ids"])
    # The merged numbers are the images': each condition's error from its bits, the mCE from AlexNet's errors by hand.
    by = {(e["params"].get("corruption"), e["params"].get("severity")): e for e in entries}
    errors = {}
    for (c, s), e in by.items():
        if c is not None:
            bits = decode(e["outcomes"])
            assert (e["metrics"]["error"] == pytest.approx(1 - bits.mean())
                    and e["metrics"]["n_images"] == bits.size == CORRUPTION_IMAGES)
            errors.setdefault(c, {})[s] = e["metrics"]["error"]
    mce = by[(None, None)]["metrics"]
    by_hand = [100 * sum(errors[c].values()) / sum(ALEXNET_ERRORS[c][s - 1] for s in errors[c]) for c in errors]
    assert mce["mce"] == pytest.approx(sum(by_hand) / len(by_hand))
    assert mce["mce_ci"][0] <= mce["mce"] <= mce["mce_ci"][1] and mce["n_images"] == CORRUPTION_IMAGES
    assert merged["aggregates"]["corruption"] == whole["aggregates"]["corruption"]
    assert "shard_data" not in json.dumps(merged)




@pytest.mark.parametrize("imagenet", [True, False])
def test_merge_of_varied_corruption_bits_equals_the_whole_judgement(imagenet):
    """Random right/wrong per condition (lite0's runs above are mostly right; these vary), a corruption not available,
    an ImageNet-1k model (mCE) and one of its own label space (mean error and mean rise: the 10-class case); parts out
    of order. The merge judges the bits with the same assessors and gets the whole run's entries and aggregate."""
    import numpy as np

    from visionaudit.families.outcomes import decode_labels
    from visionaudit.report.merge import merge_reports

    rng = np.random.default_rng(11)
    n = 400
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    clean = rng.random(n) < 0.7
    bits = {(c, s): clean & (rng.random(n) < 1 - p) | (rng.random(n) < 0.05)
            for c, s, p in (("fog", 1, 0.1), ("fog", 3, 0.4), ("contrast", 1, 0.05), ("contrast", 3, 0.6))}
    top1 = {k: rng.integers(0, 1000, n) for k in bits}
    whole = synthetic_corruption_run(None, ids, clean, bits, imagenet, unavailable=("frost",), top1=top1)
    parts = [synthetic_corruption_run(Shard(k, 3), ids, clean, bits, imagenet, unavailable=("frost",),
                                      top1=top1) for k in (2, 3, 1)]
    merged = merge_reports(parts, ["p2", "p3", "p1"])
    # each condition's top-1 (the names of the images a release lost) comes through the shards as the whole run's
    for report in (whole, merged):
        for (c, s), values in top1.items():
            (entry,) = [e for e in report["audits"] if e["params"] == {"corruption": c, "severity": s}]
            assert decode_labels(entry["outcomes"]["top1"]).tolist() == values.tolist(), (c, s)
    strip = lambda r: [{k: e.get(k) for k in ("nodeid", "outcome", "metrics", "tables", "message",
                                              "outcomes")} for e in r["audits"]]  # noqa: E731
    assert strip(merged) == strip(whole)
    assert merged["aggregates"] == whole["aggregates"] and merged["samples"] == whole["samples"]
    outcomes = {e["nodeid"]: e["outcome"] for e in whole["audits"]}
    assert sum(o == "skipped" for o in outcomes.values()) == 2 and all(o != "not_judged" for o in outcomes.values()), outcomes
    assert all(e["outcome"] in ("not_judged", "skipped") for p in parts for e in p["audits"])
    # the numbers are the bits' (by hand)
    mce = next(e for e in merged["audits"] if e["params"] == {})["metrics"]
    mean_error = np.mean([1 - v.mean() for v in bits.values()])
    if imagenet:
        assert "mce" in mce and mce["mce_ci"][0] <= mce["mce"] <= mce["mce_ci"][1]
        assert mce["mean_error"] == pytest.approx(mean_error)
    else:
        assert "mce" not in mce and mce["mean_error"] == pytest.approx(mean_error)
        assert mce["mean_rise"] == pytest.approx(mean_error - (1 - clean.mean()))
        assert mce["mean_error_ci"][0] <= mce["mean_error"] <= mce["mean_error_ci"][1]
    assert mce["clean_error"] == pytest.approx(1 - clean.mean()) and mce["jpeg_only_error"] == pytest.approx(1 - clean.mean())
    fog3 = next(e for e in merged["audits"] if e["params"] == {"corruption": "fog", "severity": 3})["metrics"]
    right_to_wrong, wrong_to_right = int((clean & ~bits[("fog", 3)]).sum()), int((~clean & bits[("fog", 3)]).sum())
    assert fog3["discordant"] == [right_to_wrong, wrong_to_right] and fog3["n_images"] == n


