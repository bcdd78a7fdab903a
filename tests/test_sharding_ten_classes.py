"""A team's 10-class model (classes from a file) on its own class-name folders, in 2 shards merged by `visionaudit merge`
(issues 24 and 26): accuracy, robustness, the corruption family's mean error and the class names equal the unsharded
run's. One set of runs serves both tests (tests/once.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.audit_runs import ROOT
from tests.once import built_once, load_process, run_audit, save_process
from tests.sharded_runs import (
    differences,
    load_runs,
    merge_cli,
    shard_names,
    without_timings,
)

pytestmark = pytest.mark.slow  # runs of the real audits (the images are written here; the other sets are not read)

TEN = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# An untrained 10-class model gets few of the 69 images right, fewer than robustness's min_correct_images (20): let one
# do, so that the merge's re-judgement of the transforms is shown (the bound itself: test_clean_correct_bound.py).
# The corruption family on all 69 images (images = 0), each part too few to judge (min_images 40): the merge judges.
CONFIG = """
[audits.robustness]
min_correct_images = 1

[audits.corruption]
corruptions = ["gaussian_noise", "contrast"]
severities = [1, 3]
images = 0
bootstrap_resamples = 300
min_images = 40
"""
# Accuracy and robustness (issue 24) and the corruption family (issue 26) in the same runs: three runs, not six.
SELECTION = "test_clean_top1 or test_transform or test_corruption or test_mce"


@pytest.fixture(scope="session")
def ten_class_shards(shared_data, request):
    """The 10-class model on 69 images in 10 uneven class folders written here, run whole and in 2 shards merged:
    (its folder, model spec, the runs, the whole report, the merged report); made once per session and shared by the
    xdist workers (tests/once.py)."""
    names = shard_names(2)
    model = lambda folder: f"tests.tiny_models:ten_classes?classes={folder / 'classes.txt'}"  # noqa: E731

    def build(folder):
        import numpy as np
        from PIL import Image

        images = folder / "team"
        rng = np.random.default_rng(0)
        for c, name in enumerate(TEN):
            (images / name).mkdir(parents=True)
            for i in range(6 + c % 3):  # 6 to 8 images per class: uneven, so balanced accuracy is not top-1
                pixels = np.clip(rng.normal(25 * c, 60, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(images / name / f"{name}{i}.png")
        (folder / "classes.txt").write_text("\n".join(TEN) + "\n")
        (folder / "audit.toml").write_text(CONFIG)
        args = ("-k", SELECTION, f"--audit-config={folder / 'audit.toml'}", f"--audit-images={images}")
        for name, extra in names.values():
            save_process(folder / f"{name}.process.json",
                         run_audit(request, folder, shared_data, name, *args, *extra, model=model(folder)))
        save_process(folder / "merge.process.json", merge_cli(str(folder / "part2of2.json"), str(folder / "part1of2.json"),
                                                              "-o", str(folder / "merged.json")))

    folder = built_once(request, "ten-class-shards", build)
    runs = load_runs(folder, names)
    whole = runs["whole"][1]
    proc = load_process(folder / "merge.process.json")
    assert proc.returncode == whole["run"]["exit_status"], proc.stdout + proc.stderr
    return folder, model(folder), runs, whole, json.loads((folder / "merged.json").read_text())


def test_a_ten_class_model_sharded_and_merged_equals_its_unsharded_run(ten_class_shards):
    """Issue 24: accuracy (top-1, per class, balanced), robustness and the class names of the merged shards equal the
    unsharded run's; and the merged report serves as a baseline (`compare`), its per-image classes read back by name."""
    import numpy as np

    folder, model, runs, whole, merged = ten_class_shards
    assert differences(without_timings(whole), without_timings(merged)) == []

    # Not vacuous: the parts held fewer images each, the merge judged all 69 again, and the numbers are the images'.
    (accuracy,) = [e for e in merged["audits"] if e["audit"] == "accuracy"]
    assert accuracy["outcome"] in ("passed", "failed") and accuracy["metrics"]["n_images"] == 69
    assert all(e["audit"] != "accuracy" or e["outcome"] == "not_judged" for i in (1, 2) for e in runs[f"{i}/2"][1]["audits"])
    sizes = [len(runs[f"{i}/2"][1]["samples"]["labelled"]["ids"]) for i in (1, 2)]
    assert sum(sizes) == 69 and max(sizes) < 69, sizes
    transforms = [e for e in merged["audits"] if e["audit"] == "robustness"]
    assert len(transforms) == 9 and all(e["outcome"] in ("passed", "failed") for e in transforms), \
        [(e["nodeid"], e["outcome"], e["message"]) for e in transforms]
    from visionaudit.families.outcomes import decode, decode_labels

    ids = merged["samples"]["labelled"]["ids"]
    correct, labels = decode(accuracy["outcomes"]), decode_labels(accuracy["outcomes"]["labels"])
    assert [TEN[k] for k in labels] == [i.split("/")[0] for i in ids]  # each image's class, from its folder
    per_class = accuracy["tables"]["per_class"]
    assert list(per_class) == TEN  # by name, in output order
    for c, name in enumerate(TEN):
        mine = correct[labels == c]
        assert per_class[name] == {"index": c, "n_images": mine.size, "correct": int(mine.sum()), "accuracy": float(mine.mean())}
    assert accuracy["metrics"]["balanced_accuracy"] == pytest.approx(np.mean([correct[labels == c].mean() for c in range(10)]))
    assert accuracy["metrics"]["clean_top1"] == float(correct.mean())
    assert merged["models"][model]["classes"]["names"] == TEN

    # The merged report as a baseline for the unsharded one: the per-class comparisons read its classes by name.
    compared = subprocess.run([sys.executable, "-m", "visionaudit", "compare", str(folder / "merged.json"),
                               str(folder / "whole.json"), "--format", "json", "--accept-incomplete-baseline"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    results = json.loads(compared.stdout)["models"][model]["results"]
    assert results["balanced_accuracy"]["verdict"] == "unchanged" and results["balanced_accuracy"]["delta"] == 0.0
    assert results["per_class_accuracy"]["verdict"] == "not_compared"  # 6 to 8 images a class: fewer than 10, said
    assert "10 classes not compared" in results["per_class_accuracy"]["reason"]


def test_a_ten_class_models_corruption_mean_error_merged_equals_its_unsharded_run(ten_class_shards):
    """Issue 26: a model of its own label space (no mCE: the mean error and mean rise over its clean error) in 2
    shards merged equals its unsharded run, the corruption subset being all 69 images of its class folders."""
    _, _, runs, whole, merged = ten_class_shards
    assert differences(without_timings(whole), without_timings(merged)) == []
    entries = [e for e in merged["audits"] if e["audit"] == "corruption"]
    assert len(entries) == 5 and all(e["outcome"] in ("passed", "failed") for e in entries)
    (summary,) = [e["metrics"] for e in entries if e["params"] == {}]
    conditions = [e["metrics"]["error"] for e in entries if e["params"]]
    assert "mce" not in summary and summary["alexnet_normalized"] is False and summary["n_images"] == 69
    assert summary["mean_error"] == pytest.approx(sum(conditions) / 4)
    assert summary["mean_error_ci"][0] <= summary["mean_error"] <= summary["mean_error_ci"][1]
    sizes = [len(runs[f"{i}/2"][1]["samples"]["corruption"]["ids"]) for i in (1, 2)]
    assert sum(sizes) == 69 and max(sizes) < 40, sizes  # each part too few to judge (min_images 40): the merge judged


