"""lite0 exported to ONNX by the suite's own exporter and audited as the model (issue 25, item 3): the same per-image
outcomes as the torch model on the clean pass, the same shape bias and transform drops, and its ``?reference=``
comparison within the deployment bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
import torch

from tests.audit_runs import ROOT
from visionaudit.data import image_sets as datasets
from visionaudit.families.records import report_schema
from visionaudit.models.inference import clean_logits, predict_logits
from visionaudit.models.loading import load_model
from visionaudit.models.onnx_model import export_onnx

pytestmark = pytest.mark.slow  # real weights on the real data, and a run of the real audits

pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet_lite0", "cpu")


@pytest.fixture(scope="module")
def lite0_onnx(lite0, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "lite0.onnx"
    export_onnx(lite0.module, torch.zeros(2, 3, 224, 224), path, lite0.preprocessing, lite0.label_space.names)
    return path


def margin(logits: torch.Tensor, i: int, a: int, b: int) -> float:
    return float(logits[i, a] - logits[i, b])


def test_every_clean_outcome_is_the_torch_models(lite0, lite0_onnx, shared_data):
    onnx_model = load_model(str(lite0_onnx), "cpu")
    # what the file says of itself is what lite0 is: its preprocessing and its classes
    assert onnx_model.preprocessing.geometry == lite0.preprocessing.geometry
    assert (onnx_model.preprocessing.mean, onnx_model.preprocessing.std) == (lite0.preprocessing.mean, lite0.preprocessing.std)
    assert onnx_model.label_space.imagenet1k and onnx_model.label_space.names == lite0.label_space.names
    sample = datasets.labelled_images(shared_data / "imagenet-sample")
    images = datasets.load_images(sample, lite0.preprocessing.geometry)
    labels = sample.label_tensor()
    # lite0's clean pass through the session's logit cache: test_real_models' lite0 on the same images shares it
    expected, got = clean_logits(lite0, sample, images), predict_logits(onnx_model, images)
    largest = float((expected - got).abs().max())
    right_torch, right_onnx = expected.argmax(1) == labels, got.argmax(1) == labels
    differ = (expected.argmax(1) != got.argmax(1)).nonzero().flatten().tolist()
    print(f"\n{len(labels)} images; largest |logit difference| {largest:.3g}; top-1 differs on {len(differ)}")
    for i in differ:  # each with its margins: how close the two classes were in each model
        a, b = int(expected[i].argmax()), int(got[i].argmax())
        print(f"  {sample.sample_ids[i]}: torch top-1 {a} (margin over {b}: {margin(expected, i, a, b):.3g}), "
              f"ONNX top-1 {b} (margin over {a}: {margin(got, i, b, a):.3g}); right: torch {bool(right_torch[i])}, "
              f"ONNX {bool(right_onnx[i])}")
        # a flip is only possible where the two classes were within the logits' difference of each other
        assert margin(expected, i, a, b) <= 2 * largest
    assert largest < 1e-3
    changed = (right_torch != right_onnx).sum()
    assert changed == sum(1 for i in differ if right_torch[i] or right_onnx[i])
    assert changed == 0, f"{int(changed)} per-image outcomes differ (listed above)"


N_IMAGES = 50  # the labelled images (and cue-conflict stimuli) of the run that compares the two models' audits


def _by(report: dict, model: str, audit_name: str) -> list[dict]:
    return [a for a in report["audits"] if a["model"] == model and a["audit"] == audit_name]


def test_shape_bias_drops_and_reference_match_lite0(lite0_onnx, shared_data, tmp_path):
    onnx_spec = f"{lite0_onnx}?reference=efficientnet_lite0"
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
        env.pop(var, None)
    path = tmp_path / "both.json"
    # both models on the same 50 images (100 before stop 39: the two models' ten passes each were 2,000 forward passes),
    # still image by image: one image that flipped would move a drop by 0.02, ten times the bound below; the cue-conflict
    # stimuli (not the shape-only ones); the ONNX model's reference comparison (not lite0's own ONNX export)
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "--device", "cpu",
                           "--model", "efficientnet_lite0", "--model", onnx_spec, "--audit-samples", str(N_IMAGES),
                           f"--audit-json={path}",
                           "-k", "robustness or (shape_bias and not edges and not silhouettes) or (onnxruntime and reference)"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(path.read_text())
    jsonschema.validate(report, report_schema())
    lite0, onnx_id = "efficientnet_lite0", onnx_spec
    # shape bias on the cue-conflict stimuli: the same within 0.002
    [torch_bias], [onnx_bias] = ([a["metrics"]["shape_bias"] for a in _by(report, m,
                                                                          "shape_bias") if "shape_bias" in a["metrics"]]
                                 for m in (lite0, onnx_id))
    print(f"\nshape bias: lite0 {torch_bias:.4f}, ONNX {onnx_bias:.4f}")
    assert abs(torch_bias - onnx_bias) <= 0.002
    # every transform's drop on the same images: the same within 0.002
    drops = {m: {json.dumps(a["params"], sort_keys=True): a["metrics"]["drop"] for a in _by(report, m, "robustness")}
             for m in (lite0, onnx_id)}
    assert len(drops[lite0]) >= 9 and drops[lite0].keys() == drops[onnx_id].keys()
    for key, drop in drops[lite0].items():
        print(f"  {key}: drop lite0 {drop:.4f}, ONNX {drops[onnx_id][key]:.4f}")
        assert abs(drop - drops[onnx_id][key]) <= 0.002, key
    assert all(a["metrics"]["n_images"] == N_IMAGES for a in _by(report, onnx_id, "robustness") if "n_images" in a["metrics"])
    # ?reference=efficientnet_lite0: the file against the torch model it came from, within the onnxruntime bound
    [reference] = [a for a in _by(report, onnx_id, "deployment") if a["params"]["deployment"] == "onnxruntime"]
    assert reference["outcome"] == "passed", reference["message"]
    assert reference["metrics"]["max_abs_diff"] <= reference["thresholds"]["max_abs_diff"]
    assert reference["metrics"]["top1_agreement"] >= 0.99
    assert report["models"][onnx_id]["architecture"].startswith("onnx (ONNX Runtime")
