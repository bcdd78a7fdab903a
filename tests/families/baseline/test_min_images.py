"""A baseline comparison on fewer paired images than `min_images` (20) is not judged, never a pass (stop 34): a
baseline made from 5 images compared "unchanged" (McNemar on no discordant pair, p = 1) and passed the gate on
almost nothing. Hand-built per-image outcomes of every kind, compared as a run and as `visionaudit compare` do."""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.data.imagenet16 import categories
from visionaudit.errors import ConfigError
from visionaudit.families.assessment import NotJudged
from visionaudit.families.baseline import (
    BaselineComparison,
    ModelOutcomes,
    assess_comparison,
    compare_model,
    settings_from,
)
from visionaudit.families.outcomes import encode_bits
from visionaudit.families.records import AuditRecord
from visionaudit.report.compare import compare_reports

DEFAULTS = load_config(None).thresholds("baseline", "m")
CATEGORIES = list(categories())
CONDITIONS = [(c, s) for c in ("gaussian_noise", "fog") for s in (1, 2, 3)]
IMAGE_KINDS = ["clean_top1", "balanced_accuracy", "per_class_accuracy", "top1_rotation", "edges_accuracy",
               "silhouettes_accuracy", *(f"corruption_{c}_{s}" for c, s in CONDITIONS), "mce"]


def _cue_ids(conflicting: int, same: int) -> tuple[str, ...]:
    """``conflicting`` cue-conflict ids whose shape and texture differ, then ``same`` whose cues agree (shape bias
    leaves those out: they are not among the images it is judged on)."""
    ids = [f"{CATEGORIES[k % 16]}/{CATEGORIES[k % 16]}{k}-{CATEGORIES[(k + 1) % 16]}{k}.png" for k in range(conflicting)]
    return tuple(ids + [f"{CATEGORIES[k % 16]}/{CATEGORIES[k % 16]}{k}-{CATEGORIES[k % 16]}{k}.png" for k in range(same)])


def _sides(n: int, conflicting: int | None = None, same_cues: int = 0) -> tuple[ModelOutcomes, ModelOutcomes]:
    """Two identical releases over ``n`` images of every set (``conflicting`` + ``same_cues`` cue-conflict images):
    every comparison "unchanged", the pass a handful of images must not give. Half the images right everywhere."""
    ids = tuple(f"n{1440764 + k % 2:08d}_{k}.JPEG" for k in range(n))  # two classes
    stimuli = tuple(f"{CATEGORIES[k % 16]}/{CATEGORIES[k % 16]}{k}.png" for k in range(n))
    cues = _cue_ids(n if conflicting is None else conflicting, same_cues)
    right = np.arange(n) % 2 == 0
    sides = ModelOutcomes("m", corruption_summary="mce"), ModelOutcomes("m", corruption_summary="mce")
    for side in sides:
        labelled = SampleSet("labelled", "s", ids, "f", None, 0)
        side.add(labelled, "clean", right)
        side.add_classes(labelled, [i.split("_")[0] for i in ids])
        side.add(labelled, "rotation", right)
        for role in ("edges", "filled-silhouettes"):
            truth = np.array([s.split("/")[0] for s in stimuli], dtype=object)
            side.add(SampleSet(role, role[0], stimuli, "g", None, 0), role, np.where(right, truth, "knife"))
        shape = np.array([c.split("/")[0] for c in cues], dtype=object)  # every decision the shape category
        side.add(SampleSet("cue-conflict", "c", cues, "h", None, 0), "cue-conflict", shape)
        corruption = SampleSet("corruption", "k", ids, "f", None, 0)
        for c, s in CONDITIONS:
            side.add(corruption, f"{c}-{s}", right)
    return sides


def _compare(n: int, bounds: dict | None = None, paired: bool = True, **kw) -> dict:
    return compare_model(*_sides(n, **kw), settings_from({**DEFAULTS, **(bounds or {})}, paired=paired))


def test_the_default_is_20_paired_images():
    assert DEFAULTS["min_images"] == 20


def test_19_paired_images_are_not_judged_in_every_comparison_naming_the_count_bound_and_key():
    results = _compare(19)
    for name in [*IMAGE_KINDS, "shape_bias"]:
        r = results[name]
        assert (r.verdict, r.missing_side) == ("not_compared", "candidate"), (name, r.verdict, r.reason)
        what = {"shape_bias": "conflicting cue-conflict images", "edges_accuracy": "stimuli", "silhouettes_accuracy": "stimuli",
                "mce": "images (each with every condition)"}.get(name, "images")
        assert r.reason.startswith(f"19 paired {what}; this comparison needs at least 20 (min_images in [audits.baseline], "
                                   "audit.toml)"), (name, r.reason)
        assert r.p_value is None and r.n == 19, name


def test_20_paired_images_are_judged():
    results = _compare(20)
    for name in [*IMAGE_KINDS, "shape_bias"]:
        if name == "per_class_accuracy":  # 10 images in each of its two classes: compared (min_class_images 10)
            assert results[name].per_class["compared"] == 2
        assert results[name].verdict == "unchanged", (name, results[name].reason)


def test_shape_bias_counts_its_conflicting_images_only():
    """25 cue-conflict images of which 6 have one cue twice: 19 images to judge a shape bias on, not 25."""
    results = _compare(20, conflicting=19, same_cues=6)
    assert results["shape_bias"].verdict == "not_compared"
    assert results["shape_bias"].reason.startswith("19 paired conflicting cue-conflict images; this comparison needs at least 20")
    assert results["clean_top1"].verdict == "unchanged"  # the labelled images are 20


def test_min_images_is_configurable_in_audit_toml(tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text("[audits.baseline]\nmin_images = 5\n")
    bounds = load_config(config).thresholds("baseline", "m")
    assert bounds["min_images"] == 5
    results = compare_model(*_sides(5), settings_from(bounds))
    assert all(results[name].verdict == "unchanged" for name in ["clean_top1", "top1_rotation", "shape_bias", "mce"])
    assert _compare(4, {"min_images": 5})["clean_top1"].reason.startswith("4 paired images; this comparison needs at least 5")
    config.write_text("[audits.baseline]\nmin_images = 0\n")
    with pytest.raises(ConfigError, match="min_images"):
        load_config(config)


def test_unpaired_counts_the_smaller_side():
    old, _ = _sides(19)
    _, new = _sides(40)
    r = compare_model(old, new, settings_from(DEFAULTS, paired=False))["clean_top1"]
    assert (r.verdict, r.missing_side) == ("not_compared", "candidate"), r.reason
    assert r.reason.startswith("19 images on the smaller side (unpaired); this comparison needs at least 20")


def test_channel_shares_are_weights_and_never_too_few():
    old, new = _sides(5)
    old.shares = new.shares = [0.3, 0.4, 0.3]
    r = compare_model(old, new, settings_from(DEFAULTS))["channel_shares"]
    assert r.verdict == "unchanged", r.reason


def test_the_gate_ends_not_judged_and_records_the_bound():
    results = _compare(5)
    record = AuditRecord("baseline", "m", params={"comparison": "clean_top1"})
    with pytest.raises(NotJudged, match=r"not compared with m: 5 paired images; this comparison needs at least 20 \(min_images"):
        assess_comparison(record, BaselineComparison(results["clean_top1"], "m", True), DEFAULTS,
                          {"model": "m", "comparison": "clean_top1"})
    assert record.thresholds["min_images"] == 20 and record.not_judged.startswith("not compared with m: 5 paired images")


def _report(n: int) -> dict:
    ids = [f"n{1440764 + k % 2:08d}_{k}.JPEG" for k in range(n)]
    samples = {"labelled": {"name": "s", "n": n, "subset": None, "seed": 0, "protocol": 2, "fingerprint": "f", "ids": ids}}
    entry = {"nodeid": "audits/test_accuracy.py::test_clean_top1[m]", "audit": "accuracy", "model": "m", "outcome": "passed",
             "metrics": {}, "outcomes": {"set": "labelled", "condition": "clean", **encode_bits(np.arange(n) % 2 == 0)}}
    return {"schema_version": 4, "verdict": "pass", "run": {"seed": 0, "samples": None}, "models": {"m": {"loaded": True}},
            "samples": samples, "audits": [entry]}


def test_compare_does_not_pass_on_5_images():
    """The issue as seen: two reports of 5 images, clean top-1 unchanged, and compare said PASS."""
    small = compare_reports(_report(5), _report(5))
    r = small["models"]["m"]["results"]["clean_top1"]
    assert r.verdict == "not_compared" and r.reason.startswith("5 paired images; this comparison needs at least 20")
    assert small["verdict"] == "incomplete" and "first: 5 paired images; this comparison needs" in small["verdict_reason"]
    assert compare_reports(_report(20), _report(20))["verdict"] == "pass"
