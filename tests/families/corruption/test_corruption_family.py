"""The corruption family: metrics against hand-computed and published values, the protocol's steps against
independent references (PIL), the ImageNet-C folder path on a synthetic folder counted by hand, and the
audit run end to end on a tiny model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image

from visionaudit.config import load_config
from visionaudit.data.decoding import decode_image
from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.errors import ConfigError, DataError
from visionaudit.families import corruption as C
from visionaudit.families.corruption.folder import FolderRun
from visionaudit.families.corruption.imagenet_c import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    BENCHMARK,
    check_root,
    corruption_error,
    relative_corruption_error,
    summarize,
)
from visionaudit.families.outcomes import decode
from visionaudit.families.records import report_schema
from visionaudit.formatting import fmt
from visionaudit.html.page import render
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Geometry, whole_image

ROOT = Path(__file__).resolve().parents[3]

# google-research/augmix imagenet.py, ALEXNET_ERR ("Raw AlexNet errors taken from hendrycks/robustness"),
# typed from that source: per-corruption means, a transcription independent of the per-severity table.
AUGMIX_ALEXNET_ERR = [0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572,
                      0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500]


def augmix_compute_mce(corruption_accs: dict[str, list[float]]) -> float:
    """AugMix's compute_mce (imagenet.py), as written there: a reference implementation of the mCE."""
    mce = 0.0
    for i, name in enumerate(BENCHMARK):
        avg_err = 1 - np.mean(corruption_accs[name])
        mce += 100 * avg_err / AUGMIX_ALEXNET_ERR[i] / 15
    return mce


# -- metrics --------------------------------------------------------------------------------------------


def test_the_two_transcriptions_of_alexnets_errors_agree():
    assert list(ALEXNET_ERRORS) == ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                                    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform",
                                    "pixelate", "jpeg_compression"]
    for (name, per_severity), mean in zip(ALEXNET_ERRORS.items(), AUGMIX_ALEXNET_ERR):
        assert sum(per_severity) / 5 == pytest.approx(mean, abs=5e-7), name


def test_alexnet_scores_100_on_every_measure():
    """The normalization's fixed point: AlexNet's own errors give CE 100 everywhere, mCE and relative mCE 100."""
    errors = {c: dict(zip((1, 2, 3, 4, 5), e)) for c, e in ALEXNET_ERRORS.items()}
    s = summarize(errors, ALEXNET_CLEAN_ERROR)
    assert s.complete and not s.note and s.mce == pytest.approx(100) and s.relative_mce == pytest.approx(100)
    assert all(v == pytest.approx(100) for v in (*s.ce.values(), *s.relative_ce.values()))
    assert s.mean_error == pytest.approx(sum(AUGMIX_ALEXNET_ERR) / 15)


def test_ce_and_relative_ce_by_hand():
    # gaussian noise: AlexNet sums to 4.43214; a model at 0.5 on every severity with clean error 0.2
    errors = {s: 0.5 for s in (1, 2, 3, 4, 5)}
    assert corruption_error(errors, "gaussian_noise") == pytest.approx(100 * 2.5 / 4.43214)
    # relative: sum of (0.5 - 0.2) = 1.5 over sum of (AlexNet - 0.43478) = 4.43214 - 2.1739 = 2.25824
    assert relative_corruption_error(errors, 0.2, "gaussian_noise") == pytest.approx(100 * 1.5 / 2.25824)
    # two severities only: AlexNet's same two (0.69528 + 0.99452)
    assert corruption_error({1: 0.3, 5: 0.9}, "gaussian_noise") == pytest.approx(100 * 1.2 / 1.6898)


def test_mce_matches_augmix_reference_implementation():
    rng = np.random.default_rng(3)
    accs = {c: list(rng.uniform(0.05, 0.9, 5)) for c in BENCHMARK}
    errors = {c: {s + 1: 1 - a for s, a in enumerate(v)} for c, v in accs.items()}
    assert summarize(errors, 0.25).mce == pytest.approx(augmix_compute_mce(accs), rel=1e-6)


def test_fewer_corruptions_or_severities_are_marked_not_published():
    errors = {c: {s: 0.5 for s in (1, 2, 3, 4, 5)} for c in BENCHMARK if c != "frost"}
    s = summarize(errors, 0.2, {"frost": "not available: no frost pictures"})
    assert not s.complete and s.missing == {"frost": "not available: no frost pictures"} and "frost" not in s.ce
    assert "mCE over 14 of the 15 corruptions (not available: no frost pictures: frost): not the published mCE" in s.note
    fewer = summarize({c: errors[c] for c in ("fog", "snow")}, 0.2, {"frost": "not available: no pictures"})
    assert fewer.note.startswith("mCE over 2 of the 15 corruptions (not in the configured corruptions: gaussian_noise, shot_noise, ")
    assert "; not available: no pictures: frost)" in fewer.note
    assert s.mce == pytest.approx(sum(100 * 2.5 / sum(ALEXNET_ERRORS[c]) for c in errors) / 14)
    partial = summarize({c: {1: 0.4, 3: 0.6} for c in BENCHMARK}, 0.2)
    assert not partial.complete and "severities 1, 3 only" in partial.note
    with pytest.raises(ValueError, match="different severities"):
        summarize({"fog": {1: 0.4}, "snow": {1: 0.4, 2: 0.5}}, 0.2)


def test_holm_over_conditions_by_hand():
    out = C.holm_over_conditions({"fog-1": 0.01, "snow-2": 0.04, "frost-3": 0.03, "folder-1": math.nan}, alpha=0.05)
    # sorted 0.01, 0.03, 0.04: adjusted 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.06, 1 * 0.04) = 0.06; NaN left out
    assert out == {"fog-1": {"p_value_holm": pytest.approx(0.03), "significant": True},
                   "frost-3": {"p_value_holm": pytest.approx(0.06), "significant": False},
                   "snow-2": {"p_value_holm": pytest.approx(0.06), "significant": False}}


def test_clean_error_is_errors_over_n():
    """4 wrong of 25 is stored as 4/25 = 0.16, not 1 - mean's 0.16000000000000003; the mCE entry's clean and
    JPEG-only errors too."""
    from visionaudit.families.corruption.judging import _error

    clean = np.ones(25, dtype=bool)
    clean[[1, 5, 9, 20]] = False
    assert C.paired("fog", 1, clean.copy(), clean).clean_error == 4 / 25 == 0.16
    assert _error(clean) == 0.16 and _error(np.ones(3, dtype=bool)) == 0.0


def test_paired_condition_counts_and_mcnemar():
    clean = np.array([1, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
    corrupted = np.array([0, 0, 1, 1, 0, 0, 1, 0], dtype=bool)
    r = C.paired("fog", 2, corrupted, clean)
    assert r.discordant == (4, 1) and r.error == pytest.approx(5 / 8) and r.clean_error == pytest.approx(2 / 8)
    assert r.p_value == pytest.approx(12 / 32)  # P(|X - 2.5| >= 1.5), X ~ Bin(5, 1/2): 2 * (1 + 5) / 32


def test_aggregate_writes_holm_back_and_summarizes_from_entries():
    entries = [{"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05},
                "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 1e-4 if c == "fog" else 0.5, "n_images": 10,
                            "source": "kernels", "comparable": False}}
               for c in BENCHMARK for s in (1, 2, 3, 4, 5)]
    agg = C.FAMILY.aggregate(entries)["models"]["m"]
    assert agg["mce"] == pytest.approx(sum(250 / sum(ALEXNET_ERRORS[c]) for c in BENCHMARK) / 15)
    assert agg["significant"] == [f"fog-{s}" for s in (1, 2, 3, 4, 5)] and agg["complete"]  # 75 * 1e-4 < 0.05
    assert entries[0]["metrics"]["significant"] is False and entries[0]["metrics"]["p_value_holm"] == 1.0
    line = C.FAMILY.summary_lines({"aggregates": {"corruption": {"models": {"m": agg}}}})[0]
    assert line.startswith(f"corruption, m: mCE {agg['mce']:.1f}") and "not comparable with published ImageNet-C values" in line


def test_the_summary_says_why_each_corruption_is_missing():
    """Issue 23, item 13: corruptions deselected by -k were "not in the configured corruptions"."""
    def entry(model, c, s, outcome="passed", message=None, **metrics):
        scored = {"error": 0.5, "clean_error": 0.2, "p_value": 0.5} if outcome == "passed" else {}
        return {"model": model, "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": outcome,
                "message": message, "metrics": {**scored, **metrics}}

    skip = "fog at severity 1 is not configured for m ([audits.corruption])"
    entries = [entry("m", "gaussian_noise", 1), entry("m", "snow", 1),  # -k "noise-1 or snow-1 or fog-1 or frost-1"
               entry("m", "fog", 1, "skipped", skip), entry("m", "frost", 1, "error", "DataError: ...")]
    missing = C.FAMILY.aggregate([dict(e) for e in entries])["models"]["m"]["missing"]
    assert missing["fog"] == "not configured for m" and missing["frost"] == "not measured (its tests ended error)"
    assert missing["shot_noise"] == "not in this run's tests (deselected, e.g. by -k, or configured for no model)"
    assert "not in the configured corruptions" not in missing.values()
    # With the mCE's own account (it scores every configured corruption): deselected, or truly not configured.
    mce = {"model": "m", "params": {}, "thresholds": {}, "outcome": "passed", "message": None,
           "metrics": {"mce": 90.0, "missing": {"zoom_blur": "not in the configured corruptions", "fog": "not in the configured corruptions"}}}
    missing = C.FAMILY.aggregate([dict(e) for e in entries] + [mce])["models"]["m"]["missing"]
    assert missing["shot_noise"] == "deselected: its tests were not collected in this run (-k, or the test paths given)"
    assert missing["zoom_blur"] == "not in the configured corruptions" and missing["fog"] == "not configured for m"
    note = C.FAMILY.aggregate([dict(e) for e in entries] + [mce])["models"]["m"]["note"]
    assert note.startswith("mCE over 2 of the 15 corruptions (deselected: its tests were not collected in this run")


@pytest.mark.parametrize("hole", ["crashed", "deselected"])
def test_one_missing_condition_is_named_not_called_different_severities(hole):
    """stop-33 review A5: one condition deselected or crashed made the summary say "no mCE (the corruptions were scored at
    different severities)" beside the mCE test's row showing its mCE."""
    entries = [{"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": "passed",
                "message": None, "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5}}
               for c in BENCHMARK for s in (1, 2, 3, 4, 5)]
    lost = next(i for i, e in enumerate(entries) if e["params"] == {"corruption": "gaussian_noise", "severity": 4})
    if hole == "crashed":
        entries[lost] = {**entries[lost], "outcome": "crashed", "message": "worker gw1 died", "metrics": {}}
    else:
        del entries[lost]
    mce = {"model": "m", "params": {}, "thresholds": {}, "outcome": "failed", "message": None,
           "metrics": {"mce": 129.3, "mce_ci": [120.0, 140.0]}}  # test_mce scored every condition itself
    agg = C.FAMILY.aggregate(entries + [mce])["models"]["m"]
    why = ("severity 4 not measured (its test ended crashed)" if hole == "crashed"
           else "severity 4 deselected (its test was not collected in this run)")
    assert "error" not in agg and agg["missing"] == {"gaussian_noise": why}
    others = [c for c in BENCHMARK if c != "gaussian_noise"]  # the 14 whole ones, by hand: CE = 5 * 50 / sum(AlexNet's)
    assert agg["mce"] == pytest.approx(sum(250 / sum(ALEXNET_ERRORS[c]) for c in others) / 14)
    assert agg["mce_ci"] is None  # test_mce's interval is over all 15: not this value's
    line = C.FAMILY.summary_lines({"aggregates": {"corruption": {"models": {"m": agg}}}})[0]
    assert "different severities" not in line and "no mCE" not in line
    assert line.startswith(f"corruption, m: mCE {agg['mce']:.1f}") and f"{why}: gaussian_noise" in line


def test_no_corruption_whole_names_the_holes():
    entries = [{"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": "passed",
                "message": None, "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5}}
               for c, s in (("fog", 1), ("snow", 3))]
    agg = C.FAMILY.aggregate(entries)["models"]["m"]
    assert agg["error"] == ("no corruption was scored at every severity (snow: severity 1 deselected (its test was not "
                            "collected in this run); fog: severity 3 deselected (its test was not collected in this run))")


def test_severities_skipped_as_not_configured_are_no_hole():
    """Stop-33 review R4: a model configured for severities 1 to 3 has its severity 4 and 5 tests skipped (``not
    configured for``); those are no hole: every corruption is whole at 1 to 3 and the mCE is over all 15 (a hole in
    each would leave no summary). A severity whose test crashed among them still is one."""
    def condition(c, s, outcome="passed"):
        scored = outcome == "passed"
        return {"model": "m", "params": {"corruption": c, "severity": s}, "thresholds": {"alpha": 0.05}, "outcome": outcome,
                "message": None if scored else f"{c} at severity {s} is not configured for m ([audits.corruption])",
                "metrics": {"error": 0.5, "clean_error": 0.2, "p_value": 0.5} if scored else {}}
    entries = [condition(c, s, "passed" if s <= 3 else "skipped") for c in BENCHMARK for s in (1, 2, 3, 4, 5)]
    agg = C.FAMILY.aggregate([dict(e) for e in entries])["models"]["m"]
    assert "error" not in agg and not agg.get("missing"), agg
    assert agg["mce"] == pytest.approx(sum(150 / sum(ALEXNET_ERRORS[c][:3]) for c in BENCHMARK) / 15)  # by hand
    crashed = [{**e, "outcome": "crashed", "message": "worker gw1 died", "metrics": {}}
               if e["params"] == {"corruption": "fog", "severity": 2} else dict(e) for e in entries]
    assert C.FAMILY.aggregate(crashed)["models"]["m"]["missing"] == {"fog": "severity 2 not measured (its test ended crashed)"}


# -- the protocol's steps -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(shared_data):
    return labelled_images(shared_data / "imagenet-sample").stratified_subset(12, 0)


@pytest.mark.slow
def test_protocol_decodes_as_imagenet_c_was_made(sample):
    """Resize 256 (PIL bilinear) and centre crop 224, whatever the model's own preprocessing."""
    path = sample.paths[0]
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        w, h = rgb.size
        scale = 256 / min(w, h)
        resized = rgb.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
        left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
        ref = np.array(resized.crop((left, top, left + 224, top + 224)))
    ours = load_images(sample, C.PROTOCOL_GEOMETRY)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.slow
def test_a_224_model_is_fed_the_images_as_stored_and_another_by_its_own_rule(sample, tmp_path):
    as_stored = load_model("tests.tiny_models:tiny")
    assert C.feed_geometry(as_stored) is None and C.describe_feed(as_stored, True)["feed"] == "as stored (224)"
    big = load_model("tests.tiny_models:tiny?size=240&interpolation=bicubic")
    feed = C.feed_geometry(big)
    assert feed == Geometry(274, 240, "bicubic")  # 240 / 0.875, the model's own crop ratio
    assert C.describe_feed(big, False) == {"decode": {"size": 224, "interpolation": "bilinear", "crop": True, "resize": 256},
                                           "jpeg_round_trip": False, "jpeg_quality": None, "jpeg_codec": None,
                                           "feed": {"resize": 274, "size": 240, "interpolation": "bicubic"}}
    images = load_images(sample, C.PROTOCOL_GEOMETRY)[:3]
    out = C.to_model_input(images, feed)
    assert out.shape == (3, 3, 240, 240) and torch.equal(C.to_model_input(images, None), images)
    for k in range(3):  # reference: the 224 image saved losslessly and decoded by PIL at the model's geometry
        path = tmp_path / f"{k}.png"
        Image.fromarray(images[k].permute(1, 2, 0).numpy()).save(path)
        ref = decode_image(path, feed)
        diff = (out[k].int() - ref.int()).abs()
        assert diff.float().mean() < 1.0 and diff.max() <= 12, (k, diff.float().mean(), diff.max())


@pytest.mark.slow
def test_unavailable_corruption_is_reported_with_its_reason(monkeypatch, sample):
    def kernel_for(name):
        if name == "frost":
            raise C.Unavailable("the frost pictures are not installed")
        return lambda b, ids, seed, severity: 255 - b

    monkeypatch.setattr(C, "kernel_for", kernel_for)
    model = load_model("tests.tiny_models:tiny")
    images = load_images(sample, C.PROTOCOL_GEOMETRY)
    run = C.CorruptionRun(model, images, sample.label_tensor(), sample.sample_ids, 0, jpeg=False)
    with pytest.raises(C.Unavailable, match="frost pictures"):
        run.condition("frost", 1)
    inverted = run.condition("fog", 1)
    logits = model.module(model.preprocessing.normalize(255 - images))
    assert np.array_equal(inverted.correct, (logits.argmax(1) == sample.label_tensor()).numpy())


def test_config_keys_are_checked(tmp_path):
    base = (ROOT / "audit.toml").read_text()
    load_config(ROOT / "audit.toml").thresholds("corruption", "efficientnet_lite0")  # the shipped file is valid
    cases = [
        ("severities = [1, 6]", r"audits.corruption.severities = \[1, 6\] holds 6, out of range"),
        ('extras = ["frost"]', "unknown item 'frost'; allowed: speckle_noise, gaussian_blur, spatter, saturate"),
        ("max_error_by_corruption = { fogg = 0.9 }", "unknown key 'fogg'.*did you mean 'fog'"),
        ('jpeg_round_trip = "yes"', "jpeg_round_trip = 'yes' has the wrong type"),
        ("jpeg_on_device = 1", "jpeg_on_device = 1 has the wrong type"),
        ("images = -1", "audits.corruption.images = -1 is out of range"),
        ("batches_ahead = 9", r"audits.corruption.batches_ahead = 9 is out of range; it must be in \[0, 8\] or 'auto'"),
        ("batches_ahead = -1", r"audits.corruption.batches_ahead = -1 is out of range; it must be in \[0, 8\] or 'auto'"),
        ("batches_ahead = 2.5", r"batches_ahead = 2.5 has the wrong type; it must be int in \[0, 8\] \(or: auto\)"),
        ("batches_ahead = true", r"batches_ahead = True has the wrong type; it must be int in \[0, 8\] \(or: auto\)"),
        ('batches_ahead = "Auto"', r"batches_ahead = 'Auto' is neither a whole number in \[0, 8\] nor 'auto'; did you mean 'auto'\?"),
        ('batches_ahead = "many"', r"batches_ahead = 'many' is neither a whole number in \[0, 8\] nor 'auto'$"),
        ('batches_ahead = "2"', r"batches_ahead = '2' is neither a whole number"),
    ]
    for new, message in cases:
        path = tmp_path / "audit.toml"
        path.write_text(f"{base}\n[audits.corruption]\n{new}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    # the switch's accepted values, as the audits read them (the default: auto)
    assert load_config(ROOT / "audit.toml").thresholds("corruption", "efficientnet_lite0")["batches_ahead"] == "auto"
    for value, read in [('"auto"', "auto"), ("0", 0), ("1", 1), ("8", 8)]:
        path = tmp_path / "audit.toml"
        path.write_text(f"{base}\n[audits.corruption]\nbatches_ahead = {value}\n")
        assert load_config(path).thresholds("corruption", "efficientnet_lite0")["batches_ahead"] == read, value
    path.write_text(f'{base}\n[models."torchvision:resnet50".corruption]\nbatches_ahead = 4\n')  # one model's own
    assert [load_config(path).thresholds("corruption", m)["batches_ahead"] for m in ("torchvision:resnet50", "efficientnet_lite0")] == [4, "auto"]
    path.write_text(f'{base}\n[models."torchvision:resnet50".corruption]\nbatches_ahead = 9\n')
    with pytest.raises(ConfigError, match="batches_ahead = 9 is out of range"):
        load_config(path)
    with pytest.raises(ConfigError, match="whole numbers 1 to 5.*2.5"):
        C.check_severities([1, 2.5])


# -- a downloaded ImageNet-C folder, synthetic ----------------------------------------------------------

BRIGHT, DARK = (235, 30, 30), (25, 30, 30)  # red_threshold: class 1 (n01443537) when red is bright, else class 0
FILES = {"n01440764": ["a.JPEG", "b.JPEG", "c.JPEG"], "n01443537": ["d.JPEG", "e.JPEG"]}


def _write(root: Path, colours: dict[str, tuple[int, int, int]], size: int = 224) -> None:
    for wnid, names in FILES.items():
        (root / wnid).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.new("RGB", (size, size), colours[name]).save(root / wnid / name, quality=85)


def test_imagenet_c_folder_is_scored_as_it_is(tmp_path):
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}  # all right
    _write(tmp_path / "val", clean, size=300)
    # fog 1: c (class 0) bright -> wrong; e (class 1) dark -> wrong: 2 of 5, both right on clean
    _write(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})
    # fog 2: everything wrong
    _write(tmp_path / "c" / "fog" / "2", {"a.JPEG": BRIGHT, "b.JPEG": BRIGHT, "c.JPEG": BRIGHT, "d.JPEG": DARK, "e.JPEG": DARK})
    _write(tmp_path / "c" / "snow" / "1", clean)
    (tmp_path / "c" / "snow" / "1" / "n01443537" / "e.JPEG").unlink()  # a condition with other images
    model = load_model("tests.tiny_models:red_threshold")
    labelled = labelled_images(tmp_path / "val")
    run = FolderRun(model, tmp_path / "c", labelled, load_images(labelled, C.PROTOCOL_GEOMETRY))
    assert run.ids == ("n01440764/a.JPEG", "n01440764/b.JPEG", "n01440764/c.JPEG", "n01443537/d.JPEG", "n01443537/e.JPEG")
    one, two = run.condition("fog", 1), run.condition("fog", 2)
    assert one.error == pytest.approx(2 / 5) and one.clean_error == 0.0 and one.discordant == (2, 0)
    assert one.p_value == pytest.approx(0.5)  # two discordant pairs, both one way: 2 * (1/2)^2
    assert two.error == 1.0 and two.discordant == (5, 0) and two.p_value == pytest.approx(2 / 32)
    # the top-1 per image (red_threshold: class 1 when bright), which names what a later release lost
    assert one.predicted.tolist() == [0, 0, 1, 1, 0] and two.predicted.tolist() == [1, 1, 1, 0, 0]
    s = summarize({"fog": {1: one.error, 2: two.error}}, 0.0)
    assert s.ce["fog"] == pytest.approx(100 * 1.4 / (0.67474 + 0.7605))
    with pytest.raises(C.Unavailable, match="fog/3 is not in the ImageNet-C folder"):
        run.condition("fog", 3)
    with pytest.raises(DataError, match="holds other images than the other ImageNet-C conditions"):
        run.condition("snow", 1)
    # labelled images that are not ImageNet-C's originals: no clean reference, said so
    other = labelled_images(tmp_path / "c" / "fog" / "1")
    elsewhere = FolderRun(model, tmp_path / "c", other.select([0, 1]), load_images(other.select([0, 1]), C.PROTOCOL_GEOMETRY))
    assert "3 of the 5 ImageNet-C images have no original" in elsewhere.describe()["clean"]  # known before scoring
    r = elsewhere.condition("fog", 1)
    assert r.error == pytest.approx(2 / 5) and math.isnan(r.p_value) and math.isnan(r.clean_error)
    assert "3 of the 5 ImageNet-C images have no original" in elsewhere.describe()["clean"]


def test_an_imagenet_c_folder_in_shards_scores_each_shards_share_of_the_whole_choice(tmp_path):
    """Issue 26: the folder's images are named once (samples.imagenet-c); a shard scores its share of the images chosen
    from the whole folder, its sample set says where they sit, and its bits are the whole run's at those places."""
    from visionaudit.data.fingerprint import data_fingerprint
    from visionaudit.data.shards import Shard, shard_of

    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    _write(tmp_path / "val", clean, size=300)
    _write(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})  # c and e wrong
    model = load_model("tests.tiny_models:red_threshold")
    labelled = labelled_images(tmp_path / "val")
    images = load_images(labelled, C.PROTOCOL_GEOMETRY)
    whole = FolderRun(model, tmp_path / "c", labelled, images)
    named = whole.sample_set()
    assert named.role == "imagenet-c" and named.ids == whole.ids and named.shard is None
    assert named.fingerprint == data_fingerprint(labelled_images(tmp_path / "c" / "fog" / "1"))  # the files' bytes
    expected = {"n01440764/a.JPEG": True, "n01440764/b.JPEG": True, "n01440764/c.JPEG": False, "n01443537/d.JPEG": True,
                "n01443537/e.JPEG": False}
    assert dict(zip(whole.ids, whole.condition("fog", 1).correct.tolist())) == expected
    seen = []
    for k in (1, 2):
        part = FolderRun(model, tmp_path / "c", labelled, images, shard=Shard(k, 2))
        mine = [i for i in whole.ids if shard_of(i, 2) == k]
        assert part.ids == tuple(mine) and part.whole_ids == whole.ids
        section = part.sample_set().shard
        assert section["whole"] == {"n": 5, "fingerprint": named.fingerprint}
        assert [whole.ids[q] for q in section["positions"]] == mine
        r = part.condition("fog", 1)
        assert r.correct.tolist() == [expected[i] for i in mine] and r.n_images == len(mine)
        assert part.clean() is not None and part.clean().all()
        seen += mine
    assert sorted(seen) == sorted(whole.ids) and 0 < len(mine) < 5  # both shards hold images (ids fixed above)


def test_imagenet_c_root_is_checked(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        check_root(tmp_path / "nowhere")
    (tmp_path / "blur").mkdir()
    with pytest.raises(DataError, match="holds no ImageNet-C corruption folder.*it holds blur"):
        check_root(tmp_path)
    assert whole_image(224).crop is False  # the files are fed uncropped


# -- the audit, end to end ------------------------------------------------------------------------------

CONFIG = """
[audits.corruption]
max_mce = {max_mce}
max_error = 1.0
max_error_by_corruption = {{ contrast = 0.999 }}
corruptions = ["brightness", "contrast"]
extras = []
severities = [1, 5]
jpeg_round_trip = true
images = 40
alpha = 0.05
bootstrap_resamples = 200
min_images = 10
"""


def _audit(shared_data: Path, tmp_path: Path, max_mce: float, *extra: str, settings: str = "") -> tuple[subprocess.CompletedProcess, dict]:
    config = tmp_path / "audit.toml"
    config.write_text(CONFIG.format(max_mce=max_mce) + settings)
    report = tmp_path / "report.json"
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    cmd = [sys.executable, "-m", "pytest", "audits/test_corruption.py", "-p", "no:cacheprovider", "--model", "tests.tiny_models:tiny",
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
    assert contrast["outcomes"]["set"] == "corruption" and contrast["outcomes"]["n"] == 40 and data["samples"]["corruption"]["n"] == 40
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
               for a in data["audits"] if a["outcome"] != "deselected"), [a["metrics"].get("not_honoured") for a in data["audits"]]
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


FOLDER_CONFIG = CONFIG.replace('corruptions = ["brightness", "contrast"]', 'corruptions = ["fog", "snow"]').replace(
    "severities = [1, 5]", "severities = [1, 2]").replace("min_images = 10", "min_images = 5").replace(
    "max_error_by_corruption = { contrast = 0.999 }", "max_error_by_corruption = {}")


@pytest.mark.slow
def test_an_imagenet_c_folder_through_the_audit(tmp_path):
    """--audit-imagenet-c end to end: the files scored as they are, paired with their originals by sample id."""
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    _write(tmp_path / "val", clean, size=300)
    _write(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})  # 2 of 5 wrong
    _write(tmp_path / "c" / "fog" / "2", {**clean, "a.JPEG": BRIGHT})  # 1 of 5 wrong
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
        part = subprocess.run([*cmd[:-1], f"--audit-json={tmp_path / f'part{k}.json'}", "--audit-shard", f"{k}/2"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert (tmp_path / f"part{k}.json").exists(), part.stdout[-3000:] + part.stderr[-3000:]
        sizes = json.loads((tmp_path / f"part{k}.json").read_text())["samples"]["imagenet-c"]["n"]
        assert 0 < sizes < 5
    merged = merge_cli(str(tmp_path / "part2.json"), str(tmp_path / "part1.json"), "-o", str(tmp_path / "merged.json"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert differences(without_timings(data), without_timings(json.loads((tmp_path / "merged.json").read_text()))) == []


def test_a_bad_batches_ahead_stops_the_run_at_startup(tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text("[audits.corruption]\nbatches_ahead = 12\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "--collect-only", "-q", "-p", "no:cacheprovider",
                           f"--audit-config={config}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "audits.corruption.batches_ahead = 12 is out of range; it must be in [0, 8] or 'auto'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_batches_ahead_reach_the_run(tmp_path):
    """fixtures/corruption.py hands the model's ``batches_ahead`` to its run (the run cache key leaves it out: it moves
    no pixel), and ``jpeg_on_device`` on a CPU model is said on the run."""
    from types import SimpleNamespace

    from fixtures.corruption import corrupted_run
    from tests.image_folders import plain_images

    labelled = labelled_images(plain_images(tmp_path / "images", "n01440764_0.JPEG", "n01443537_1.JPEG"))
    settings = SimpleNamespace(shard=None, imagenet_c=None, samples=None, seed=0)
    for asked, ahead in [("auto", 1), (0, 0), (5, 5)]:
        thresholds = {"jpeg_round_trip": True, "images": 0, "jpeg_on_device": True, "batches_ahead": asked}
        run = corrupted_run(load_model("tests.tiny_models:tiny"), labelled, thresholds, 0, lambda role, subset: None, settings).run
        assert run.ahead == ahead and run.not_honoured == {
            "jpeg_on_device": "jpeg_on_device is set but the model runs on cpu: the round trip used libjpeg"}, asked


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


def test_a_wrong_imagenet_c_folder_stops_the_run_at_startup(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "--collect-only", "-q", "-p", "no:cacheprovider",
                           f"--audit-imagenet-c={tmp_path / 'nowhere'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4 and "ImageNet-C folder" in proc.stderr and "does not exist" in proc.stderr, proc.stderr[-2000:]


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
