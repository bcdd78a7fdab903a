"""Issue 24's Show: a real classifier that is not an ImageNet-1k model, on real images.

The 16-category classifier made from lite0 (tests/sixteen_classifier.py) on the imagenet-sample images of
those 16 categories, placed by the test in 16 class-name folders: its accuracy equals a computation that
does not go through the suite; robustness, corruption, deployment and conversion run and judge; the
baseline gate against its own report changes nothing and against a preprocessing change fails; its shape
bias equals lite0's exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.audit_runs import audit
from tests.once import audit_once, built_once
from tests.sixteen_classifier import LITE_MEAN, LITE_STD, lite0, published_mapping, spec

pytestmark = pytest.mark.slow  # a real model on the real data

N_IMAGES = 207  # imagenet-sample holds one image per ImageNet class: 207 classes make up the 16 categories
# Two corruptions at two severities on a 50-image subset (its min_images; the default subset is 100): the family
# runs and judges its mean error (no mCE) as with all 75 conditions on more images, and the baseline gate compares
# them; the 15 x 5 default made each of the three runs below several minutes longer (the gate recomputes every
# condition the baseline holds, whatever -k selects: Holm is over the whole set).
CORRUPTIONS = '[audits.corruption]\ncorruptions = ["gaussian_noise", "fog"]\nseverities = [1, 3]\nimages = 50\n'
# The functional channel shares (ablation, gradients) on 16 of the 207 images, not 250: recorded, not gated, and not
# what this module tests; on all 207 they were a fifth of the shared run.
# Deployment's forms on 16 images (their min_images; default 64) and conversion's folds on 16 real images (default 64)
# beside its 4 random ones: this module checks that those families run and judge a 16-class model, not their
# measures (tests/families test those). At 64 and 50, these passes were 38 + 9 of the run's 232 CPU-s; at 16, about a
# quarter of that (183 -> 50 s of a run's 869 on a loaded machine).
CONFIG = (CORRUPTIONS + "[audits.channel_bias]\nfunctional_images = 16\n[audits.deployment]\nimages = 16\n"
          "[audits.conversion]\nreal_images = 16\n")


@pytest.fixture(scope="session")
def team(shared_data, request) -> Path:
    """16 class-name folders of imagenet-sample images (links), and the classes file beside them; made once per
    session and shared by the xdist workers (tests/once.py): team_report's paths are these."""

    def build(root: Path) -> None:
        wnids = (shared_data / "imagenet_wnids.txt").read_text().split()
        images = root / "images"
        for category, indices in published_mapping().items():
            (images / category).mkdir(parents=True)
            for i in indices:
                for src in (shared_data / "imagenet-sample").glob(f"{wnids[i]}_*"):
                    (images / category / src.name).symlink_to(src)
        (root / "classes.txt").write_text("\n".join(published_mapping()) + "\n")
        (root / "audit.toml").write_text(CONFIG)

    root = built_once(request, "team16", build)
    assert sum(1 for _ in (root / "images").rglob("*.JPEG")) == N_IMAGES
    return root


def _entries(data: dict, audit_name: str) -> list[dict]:
    return [e for e in data["audits"] if e["audit"] == audit_name]


@pytest.fixture(scope="session")
def team_report(team, shared_data, request) -> dict:
    """The whole audit suite on the 16-category model, run once per session (tests/once.py): under xdist this
    module's tests are spread over the workers, and each used to make this 8-minute run for itself."""
    # 466 s in CI; on a loaded 2-core machine more than the 600 s tests.audit_runs allows by default
    proc, data, path = audit_once(request, shared_data, "team", "-n", "2", f"--audit-images={team / 'images'}",
                                  f"--audit-config={team / 'audit.toml'}", "-k", "not control and not test_zoo",
                                  model=spec(team / "classes.txt"), timeout=1500)
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    data["_path"] = str(path)
    return data


def _independent_top1(folder: Path) -> tuple[int, int]:
    """Top-1 hits of the 16-category model computed here: PIL resize (short side 256, bicubic), centre crop
    224, (x - 127) / 128, lite0 straight from its package, probabilities averaged per category."""
    model = lite0().eval()
    mapping = published_mapping()
    hits, batch, truth = 0, [], []
    for c, (category, indices) in enumerate(mapping.items()):
        for path in sorted((folder / category).iterdir()):
            with Image.open(path) as img:
                rgb = img.convert("RGB")
            w, h = rgb.size
            nw, nh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
            rgb = rgb.resize((nw, nh), Image.BICUBIC)
            left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
            rgb = rgb.crop((left, top, left + 224, top + 224))
            x = torch.from_numpy(np.asarray(rgb, dtype=np.float32)).permute(2, 0, 1) / 255.0
            batch.append((x - LITE_MEAN) / LITE_STD)
            truth.append(c)
    with torch.no_grad():
        p = torch.cat([model(torch.stack(batch[i:i + 32])).softmax(1) for i in range(0, len(batch), 32)])
    for row, c in zip(p, truth):
        scores = [float(row[idx].mean()) for idx in mapping.values()]
        hits += int(max(range(len(scores)), key=scores.__getitem__) == c)
    return hits, len(truth)


def test_its_label_space_is_recorded(team_report, team):
    entry = team_report["models"][0] if isinstance(team_report["models"], list) else next(iter(team_report["models"].values()))
    classes = entry["classes"]
    assert classes["names"] == list(published_mapping()) and classes["count"] == 16 and not classes["imagenet1k"]
    assert "classes.txt" in classes["source"]


def test_accuracy_equals_an_independent_computation(team_report, team):
    (acc,) = [e for e in _entries(team_report,
                                  "accuracy") if "::test_clean_top1" in e["nodeid"]] or _entries(team_report, "accuracy")[:1]
    hits, total = _independent_top1(team / "images")
    assert total == N_IMAGES and acc["metrics"]["n_images"] == N_IMAGES
    assert round(acc["metrics"]["clean_top1"] * N_IMAGES) == hits, (acc["metrics"]["clean_top1"], hits)
    assert acc["outcome"] in ("passed", "failed")  # judged


@pytest.mark.parametrize("family", ["robustness", "corruption", "deployment", "conversion"])
def test_the_families_run_and_judge(team_report, family):
    entries = _entries(team_report, family)
    assert entries, f"no {family} entries"
    judged = [e for e in entries if e["outcome"] in ("passed", "failed")]
    assert judged, [(e["nodeid"], e["outcome"], e.get("message")) for e in entries]
    if family == "robustness":  # all nine transforms
        assert len({e["params"]["transform"] for e in entries}) == 9, [e["params"] for e in entries]
    if family == "corruption":
        names = {k for e in entries for k in e["metrics"]}
        assert "mCE" not in names and "mce" not in names  # never called mCE for a label space that is not ImageNet-1k


def test_shape_bias_equals_lite0s_exactly(team_report, lite0_shape_bias_run):
    (mine,) = [e for e in _entries(team_report, "shape_bias") if "::test_shape_bias[" in e["nodeid"]]
    proc, data, _ = lite0_shape_bias_run  # lite0's own run on the cue-conflict stimuli (tests/conftest.py)
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    (theirs,) = [e for e in _entries(data, "shape_bias") if "::test_shape_bias[" in e["nodeid"]]
    assert mine["outcome"] in ("passed", "failed") and mine["metrics"]["shape_bias"] == theirs["metrics"]["shape_bias"]
    assert mine["outcomes"] == theirs["outcomes"]  # the same decision on every stimulus


# The gate against its own report and against a preprocessing change: two tests (two independent runs of several
# minutes each), so that xdist's workers make them at the same time.
def test_baseline_gate_against_itself(team_report, team, shared_data, tmp_path):
    base = team_report["_path"]
    proc, data = audit(tmp_path, shared_data, "self", "-n", "2", "-m", "baseline", f"--audit-images={team / 'images'}",
                       f"--audit-config={team / 'audit.toml'}",
                       f"--audit-baseline={base}", model=spec(team / "classes.txt"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    entries = _entries(data, "baseline")
    assert entries
    for e in entries:
        assert e["outcome"] == "passed" and e["metrics"]["verdict"] == "unchanged", (e["params"], e["metrics"])


@pytest.fixture(scope="session")
def team_accuracy_report(team, shared_data, request) -> Path:
    """The 16-category model's clean top-1 alone, run once per session (its clean pass shared with team_report's run
    through the session's logit cache, whichever makes it first): the preprocessing-change gate's baseline. A gate
    recomputes every condition its baseline holds (Holm runs over the whole set): against team_report that was the
    1,280 stimuli and the nine transforms again at the wrong size, two thirds of the gate's time, for comparisons this
    test does not read."""
    proc, data, path = audit_once(request, shared_data, "team-accuracy", "-k", "test_clean_top1",
                                  f"--audit-images={team / 'images'}", f"--audit-config={team / 'audit.toml'}",
                                  model=spec(team / "classes.txt"))
    assert data is not None and [e["audit"] for e in data["audits"]] == ["accuracy"], proc.stdout[-3000:] + proc.stderr[-3000:]
    return path


def test_baseline_gate_against_a_preprocessing_change(team_accuracy_report, team, shared_data, tmp_path):
    base = team_accuracy_report
    # A wrong input size (96 instead of 224): clean top-1 drops and the gate fails, as lite0's does. (ImageNet's
    # mean/std, lite0's failing change, loses only 5 of these 207 images at the 16 categories' level and wins none:
    # exact McNemar p = 0.0625, beyond the tolerance but not significant, a warning; 96 px loses 15.)
    wrong = spec(team / "classes.txt", size=96, resize=110)
    proc, data = audit(tmp_path, shared_data, "wrong", "-m", "baseline", "-k", "clean_top1 or balanced_accuracy or per_class",
                       f"--audit-images={team / 'images'}", f"--audit-config={team / 'audit.toml'}", f"--audit-baseline={base}",
                       "--audit-baseline-as", spec(team / "classes.txt"),
                       model=wrong)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    by_name = {e["params"]["comparison"]: e for e in _entries(data, "baseline")}
    clean = by_name["clean_top1"]
    assert clean["outcome"] == "failed" and clean["metrics"]["verdict"] == "regression" and clean["metrics"]["delta"] < 0
    # Balanced accuracy falls further (its small categories lose more: 0.990 -> 0.880 measured); per class, only bird
    # (49 images) and dog (109) have the 10 paired images a class's own test needs: dog loses 5, Holm p 0.125.
    balanced = by_name["balanced_accuracy"]["metrics"]
    assert by_name["balanced_accuracy"]["outcome"] == "failed" and balanced["delta"] < clean["metrics"]["delta"] < 0
    per_class = by_name["per_class_accuracy"]["metrics"]
    assert per_class["verdict"] == "unchanged" and per_class["per_class"]["compared"] == 2
    assert per_class["per_class"]["not_compared"]["count"] == 14
