"""Shape bias: the 16-class decision, the exclusion rule, the CSV path and the CLI, on hand-made cases."""

from __future__ import annotations

import json
import math

import pytest
import torch

from visionaudit import imagenet16
from visionaudit.cli import main as cli_main
from visionaudit.errors import DataError
from visionaudit.shape_bias import shape_bias, shape_bias_from_csv

M = imagenet16.mapping()


def probs_with(**mass: float) -> torch.Tensor:
    """A (1, 1000) probability vector spreading each given mass evenly over a category's classes."""
    p = torch.zeros(1, 1000, dtype=torch.float64)
    for cat, total in mass.items():
        idx = list(M[cat])
        p[0, idx] = total / len(idx)
    rest = 1.0 - float(p.sum())
    free = [i for i in range(1000) if p[0, i] == 0]
    p[0, free] = rest / len(free)
    return p


def test_mapping_is_the_published_one(shared_data):
    shared = json.loads((shared_data / "imagenet16_indices.json").read_text())["categories"]
    assert {k: list(v) for k, v in M.items()} == shared
    assert len(M) == 16 and imagenet16.categories()[0] == "airplane"
    assert len(M["dog"]) == 109 and M["airplane"] == (404,)


def test_mean_sum_and_max_aggregation_differ_as_they_should():
    # 0.30 spread over 109 dog classes vs 0.05 on the one airplane class.
    p = probs_with(dog=0.30, airplane=0.05)
    mean = imagenet16.category_probabilities(p, "mean")
    names = imagenet16.categories()
    assert names[int(mean.argmax())] == "airplane"  # 0.05 > 0.30 / 109
    assert mean[0, names.index("dog")].item() == pytest.approx(0.30 / 109)
    assert names[int(imagenet16.category_probabilities(p, "sum").argmax())] == "dog"
    assert names[int(imagenet16.category_probabilities(p, "max").argmax())] == "airplane"


def test_decide_takes_softmax_of_logits_and_breaks_ties_alphabetically():
    logits = torch.full((2, 1000), -10.0)
    logits[0, M["knife"][0]] = 5.0
    logits[1, M["oven"][0]] = 3.0
    logits[1, M["knife"][0]] = 3.0  # knife and oven tie: knife comes first
    assert imagenet16.decide(logits) == ["knife", "knife"]
    with pytest.raises(ValueError, match=r"expected \(N, 1000\)"):
        imagenet16.decide(torch.zeros(1, 10))
    with pytest.raises(ValueError, match="aggregation must be one of"):
        imagenet16.category_probabilities(torch.zeros(1, 1000), "median")


def test_shape_bias_counts_and_exclusion():
    shapes = ["cat", "cat", "cat", "dog", "dog", "dog", "dog", "car", "car", "car", "knife", "knife"]
    textures = ["dog", "dog", "car", "cat", "cat", "car", "boat", "car", "car", "bear", "oven", "oven"]
    decisions = ["cat", "dog", "car", "dog", "cat", "bird", "boat", "car", "car", "car", "oven", "oven"]
    r = shape_bias(decisions, shapes, textures)
    # car/car twice is excluded; 10 conflict images: shape hits cat, dog, car(bear) = 3;
    # texture hits dog, car, cat, boat, oven, oven = 6; neither: bird = 1.
    assert (r.n_conflict, r.n_excluded, r.shape_hits, r.texture_hits) == (10, 2, 3, 6)
    assert r.shape_bias == pytest.approx(3 / 9)
    assert (r.shape_fraction, r.texture_fraction, r.neither_fraction) == pytest.approx((0.3, 0.6, 0.1))
    assert r.per_category["cat"] == pytest.approx(1 / 3) and r.per_category["dog"] == pytest.approx(1 / 3)
    assert r.per_category["car"] == 1.0 and r.per_category["knife"] == 0.0


def test_shape_bias_without_hits_is_nan_and_empty_is_an_error():
    assert math.isnan(shape_bias(["bird"], ["cat"], ["dog"]).shape_bias)
    with pytest.raises(DataError, match="no cue-conflict images left"):
        shape_bias(["cat"], ["cat"], ["cat"])


def write_csv(path, rows):
    lines = ["subj,session,trial,rt,object_response,category,condition,imagename"]
    for i, (response, image) in enumerate(rows, 1):
        shape = image.split("-")[0].rstrip("0123456789")
        lines.append(f"resnet50,1,{i},NaN,{response},{shape},0,{i:04d}_s5n_dnn_0_{shape}_00_{image}")
    path.write_text("\n".join(lines) + "\n")


def test_csv_and_cli(tmp_path, capsys):
    path = tmp_path / "decisions.csv"
    write_csv(path, [
        ("airplane", "airplane1-bicycle2.png"),  # shape
        ("bicycle", "airplane2-bicycle1.png"),   # texture
        ("bicycle", "airplane3-bicycle3.png"),   # texture
        ("clock", "bear1-clock2.png"),           # texture
        ("bear", "bear2-bear1.png"),             # excluded
        ("dog", "bear3-cat1.png"),               # neither
    ])
    r = shape_bias_from_csv(path)
    assert (r.shape_hits, r.texture_hits, r.n_conflict, r.n_excluded) == (1, 3, 5, 1)
    assert cli_main(["shape-bias", "--decisions", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape_bias"] == pytest.approx(0.25)
    assert (out["shape_hits"], out["texture_hits"], out["n_conflict"]) == (1, 3, 5)
    assert out["per_category"] == {"airplane": pytest.approx(1 / 3), "bear": 0.0}


def test_csv_errors(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("subj,response\n1,cat\n")
    assert cli_main(["shape-bias", "--decisions", str(bad)]) == 2
    assert "missing column(s) object_response, imagename" in capsys.readouterr().err
    odd = tmp_path / "odd.csv"
    odd.write_text("object_response,imagename\ncat,0001_picture.jpg\n")
    with pytest.raises(DataError, match="odd.csv:2: image name '0001_picture.jpg'"):
        shape_bias_from_csv(odd)
    with pytest.raises(DataError, match="does not exist"):
        shape_bias_from_csv(tmp_path / "none.csv")
