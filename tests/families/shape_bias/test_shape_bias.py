"""Shape bias: the 16-class decision, the exclusion rule, the CSV path and the CLI, on hand-made cases."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from visionaudit.cli import main as cli_main
from visionaudit.data import imagenet16
from visionaudit.errors import DataError
from visionaudit.families.shape_bias import shape_bias
from visionaudit.families.shape_bias.decisions_csv import shape_bias_from_csv

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


@pytest.mark.slow
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
    assert r.per_category["cat"] == {"shape_hits": 1, "texture_hits": 2, "n_conflict": 3, "shape_bias": pytest.approx(1 / 3)}
    assert r.per_category["dog"] == {"shape_hits": 1, "texture_hits": 2, "n_conflict": 4, "shape_bias": pytest.approx(1 / 3)}
    assert r.per_category["car"]["shape_bias"] == 1.0 and r.per_category["knife"]["shape_bias"] == 0.0
    # Wilson's interval, against scipy's own implementation.
    from scipy.stats import binomtest

    ci = binomtest(3, 9).proportion_ci(0.95, method="wilson")
    assert r.shape_bias_ci == pytest.approx((ci.low, ci.high))


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
    assert {c: v["shape_bias"] for c, v in out["per_category"].items()} == {"airplane": pytest.approx(1 / 3), "bear": 0.0}


def test_csv_errors(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("subj,response\n1,cat\n")
    assert cli_main(["shape-bias", "--decisions", str(bad)]) == 4
    assert "missing column(s) object_response, imagename" in capsys.readouterr().err
    odd = tmp_path / "odd.csv"
    odd.write_text("object_response,imagename\ncat,0001_picture.jpg\n")
    with pytest.raises(DataError, match="odd.csv:2: image name '0001_picture.jpg'"):
        shape_bias_from_csv(odd)
    with pytest.raises(DataError, match="does not exist"):
        shape_bias_from_csv(tmp_path / "none.csv")


def test_no_responses_count_as_neither_and_unknown_labels_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, [("airplane", "airplane1-bicycle2.png"), ("na", "airplane2-bicycle1.png"), ("NaN", "bear1-clock2.png"),
                     ("clock", "bear3-clock1.png")])
    r = shape_bias_from_csv(path)
    assert (r.shape_hits, r.texture_hits, r.n_conflict, r.n_no_response) == (1, 1, 4, 2)
    assert r.neither_fraction == 0.5
    write_csv(path, [("airplane", "airplane1-bicycle2.png"), ("aeroplane", "airplane2-bicycle1.png")])
    with pytest.raises(DataError,
                       match=r"d.csv:3: unknown response 'aeroplane'; allowed: airplane, bear, .*or na / NaN for no response"):
        shape_bias_from_csv(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"subj,session,trial,rt,object_response,category,condition,imagename\ns,1,1,NaN,cat\n",
         r"x.csv:2: the row has 5 fields where the header has 8"),
        (b"object_response,imagename\n\xff\xfecat,cat1-dog2.png\n", r"x.csv is not UTF-8 text"),
        (b"object_response,category,imagename\ncat,dog,cat1-dog2.png\n", r"x.csv:2: category 'dog' is not the shape cue 'cat'"),
    ],
)
def test_bad_decision_files_name_file_and_line(tmp_path, content, message):
    (tmp_path / "x.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        shape_bias_from_csv(tmp_path / "x.csv")


def test_a_directory_is_not_a_decisions_file(tmp_path, capsys):
    assert cli_main(["shape-bias", "--decisions", str(tmp_path)]) == 4
    assert "is a directory; give a decisions CSV file" in capsys.readouterr().err


def _independent_count(path):
    """Shape bias of a raw-data file counted with the csv module alone (none of the suite's code)."""
    import csv

    shape = texture = 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            cue_file = row["imagename"].split("_")[-1]  # ..._clock4-chair1.png
            s, t = (part.rstrip("0123456789") for part in cue_file[:-4].split("-"))
            if s == t:
                continue
            shape += row["object_response"] == s
            texture += row["object_response"] == t
    return shape / (shape + texture)


@pytest.mark.slow
def test_nine_observers_through_the_cli(shared_data, capsys):
    files = sorted(str(p) for p in (shared_data / "texture-vs-shape-raw").glob("*.csv"))
    assert len(files) == 9
    assert cli_main(["shape-bias", "--decisions", *files]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = {f: _independent_count(f) for f in files}
    assert {f: r["shape_bias"] for f, r in out["files"].items()} == pytest.approx(expected)
    assert out["mean_shape_bias"] == pytest.approx(sum(expected.values()) / 9)
    assert out["mean_shape_bias"] == pytest.approx(0.957, abs=0.005)  # Geirhos et al. 2019: humans about 0.96
    assert sum(r["n_no_response"] for r in out["files"].values()) > 0  # "na" rows exist and count as neither
    assert out["pooled"]["n_conflict"] == 9 * 1200


@pytest.mark.slow
def test_export_is_model_vs_human_raw_data_and_reads_back_the_same(shared_data, tmp_path):
    import csv

    from visionaudit.data.image_sets import cue_conflict
    from visionaudit.families.shape_bias.decisions_csv import (
        COLUMNS,
        read_decisions,
        subject_name,
        write_decisions,
    )

    stimuli = cue_conflict(shared_data / "cue-conflict")
    cats = imagenet16.categories()
    decisions = [cats[(i * 7) % 16] for i in range(len(stimuli))]  # any decisions will do for a round trip
    path = write_decisions(tmp_path, subject_name("efficientnet_lite0?size=240"), stimuli, decisions)
    assert path.name == "cue-conflict_efficientnet-lite0-size-240_session-1.csv"  # model-vs-human: "_" becomes "-"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 1281
    # ImageFolder order, as model-vs-human's loader: folders sorted, then file names sorted as strings.
    root = shared_data / "cue-conflict"
    expected = [name for folder in sorted(p.name for p in root.iterdir() if p.is_dir())
                for name in sorted(os.listdir(root / folder))]
    # model-vs-human's own cue-conflict_resnet50_session-1.csv has trial 5 = airplane10-airplane1.png
    assert [r[7] for r in rows[1:]] == expected and expected[4] == "airplane10-airplane1.png"
    assert rows[1][:4] == ["efficientnet_lite0-size-240", "1", "1",
                           "NaN"] and [r[2] for r in rows[1:]] == [str(i) for i in range(1, 1281)]
    assert all(r[6] == "NaN" and r[5] == r[7].split("-")[0].rstrip("0123456789") for r in rows[1:])
    assert read_decisions(path).shape_bias() == shape_bias(decisions, stimuli.categories, stimuli.textures)


# A model that looks at the image but means nothing: its logits are a hash of the pixels. (A random-init network does
# not do: SqueezeNet 1.1's decisions followed the texture cue in some draws of its weights, p < 0.01, and passed the
# guard; a random-init MobileNetV3-Small's outputs vary by 1e-10 over images, a second constant model.)
RANDOM_NETWORK = "tests.tiny_models:image_hash"


@pytest.mark.slow
def test_the_random_network_decides_by_the_image(shared_data):
    """The premise of the guards' test below: the hash model's logits vary with the image, so its decisions are not
    a constant model's."""
    from visionaudit.data.image_sets import cue_conflict, load_images
    from visionaudit.families.shape_bias import stimulus_geometry
    from visionaudit.models.inference import predict_logits
    from visionaudit.models.loading import load_model

    model = load_model(RANDOM_NETWORK, "cpu")
    stimuli = cue_conflict(shared_data / "cue-conflict")
    stimuli = stimuli.select(list(range(0, len(stimuli), 80)))
    logits = predict_logits(model, load_images(stimuli, stimulus_geometry(model)))
    assert float(logits.std(dim=0).max()) > 0.01


@pytest.mark.slow
def test_guards_fail_meaningless_models_and_pass_lite0(shared_data, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    report = tmp_path / "report.json"
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "pytest", "audits/test_shape_bias.py", "-p", "no:cacheprovider", "--audit-samples", "320",
           "--model", "efficientnet_lite0", "--model", RANDOM_NETWORK, "--model", "tests.tiny_models:constant",
           f"--audit-json={report}"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    entries = {a["nodeid"].split("::")[1]: a for a in json.loads(report.read_text())["audits"]}
    assert {k for k, a in entries.items() if a["outcome"] == "passed"} == {
        "test_shape_bias[efficientnet_lite0]", "test_shape_only_accuracy[efficientnet_lite0-edges]",
        "test_shape_only_accuracy[efficientnet_lite0-silhouettes]"}
    for model in (RANDOM_NETWORK, "tests.tiny_models:constant"):
        sb = entries[f"test_shape_bias[{model}]"]
        assert sb["outcome"] == "failed" and "its decisions carry no cue information" in sb["message"]
        assert "uniform random decisions hit 0.125" in sb["message"] and sb["metrics"]["cue_information_p"] >= 0.01
        for stimuli in ("edges", "silhouettes"):
            only = entries[f"test_shape_only_accuracy[{model}-{stimuli}]"]
            assert only["outcome"] == "failed" and "where chance gives 0.0625" in only["message"], only["message"]
    # Every image decided "airplane" (a tie goes to the first category): exactly the hits chance predicts.
    constant = entries["test_shape_bias[tests.tiny_models:constant]"]["metrics"]
    assert constant["shape_hits"] + constant["texture_hits"] == pytest.approx(constant["n_conflict"] * 2 / 16, abs=10)


def test_stimulus_geometry_native_by_default_and_model_input_for_models_that_need_it():
    from visionaudit.errors import ModelOutputError
    from visionaudit.families.shape_bias import stimulus_geometry
    from visionaudit.models.loading import load_model

    convnet = load_model("tests.tiny_models:tiny?size=32", "cpu")  # global pooling: takes 224 as well
    native = stimulus_geometry(convnet)
    assert (native.crop_size, native.crop) == (224, False)
    assert (stimulus_geometry(convnet, "model_input").crop_size,
            stimulus_geometry(convnet, "model_input").interpolation) == (32, "bilinear")
    fixed = load_model("tests.tiny_models:fixed_size?size=32", "cpu")
    with pytest.raises(ModelOutputError, match=r"cannot take the 224x224 stimuli unchanged, as the published protocol feeds them "
                                               r"\(RuntimeError: .*\); .*set stimulus_geometry = \"model_input\" under "
                                               r"\[models.\"tests.tiny_models:fixed_size\?size=32\".shape_bias\]"):
        stimulus_geometry(fixed)
    assert stimulus_geometry(fixed, "model_input").crop_size == 32


@pytest.mark.slow
def test_uncropped_geometry_keeps_the_whole_stimulus(shared_data):
    from visionaudit.data.decoding import decode_image
    from visionaudit.preprocessing import Geometry, whole_image

    path = next((shared_data / "cue-conflict" / "airplane").iterdir())
    import numpy as np
    from PIL import Image

    pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(decode_image(path, whole_image(224, "bicubic")), pixels)  # unchanged: not resampled
    assert decode_image(path, whole_image(260, "bicubic")).shape == (3, 260, 260)
    cropped = decode_image(path, Geometry(256, 224, "bicubic"))  # the natural-image geometry cuts the border away
    assert not torch.equal(cropped, pixels)


def test_errors_name_the_file_line_with_blank_lines_counted(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("object_response,imagename\ncat,cat1-dog2.png\n\n\ncow,cat1-dog3.png\n")
    with pytest.raises(DataError, match=r"d.csv:5: unknown response 'cow'"):
        shape_bias_from_csv(path)


def test_a_journal_not_named_as_one_needs_an_output_path(tmp_path, capsys):
    odd = tmp_path / "journal.txt"
    odd.write_text("{}\n")
    assert cli_main(["report", "--from-journal", str(odd)]) == 4
    assert "say where the report goes with -o PATH" in capsys.readouterr().err and odd.read_text() == "{}\n"


@pytest.mark.slow
def test_a_category_map_through_the_audit_gives_the_imagenet_shape_bias(suite, shared_data, monkeypatch):
    """The same tiny weights twice: as an ImageNet-1k model, and as a 1,000-output model of its own classes (output
    indices) whose ``category_map`` reproduces Geirhos et al.'s mapping. Same decisions, same numbers (issue 24)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from visionaudit.data.imagenet16 import mapping

    root = Path(__file__).resolve().parents[3]
    suite.makepyfile(test_shape_bias=(root / "audits" / "test_shape_bias.py").read_text())
    lines = ["[audits.shape_bias]", "min_images = 1", "", "[audits.shape_bias.category_map]"]
    lines += [f'"{i}" = "{category}"' for category, idx in mapping().items() for i in idx]
    suite.makefile(".toml", audit="\n".join(lines) + "\n")
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
        env.pop(var, None)
    mine = "tests.tiny_models:tiny?imagenet=false"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--model", "tests.tiny_models:tiny",
                           "--model", mine, "--device", "cpu", "--audit-samples", "160", "--audit-json=r.json", "-k",
                           "test_shape_bias", "-rs"], cwd=suite.path, env=env, capture_output=True, text=True, timeout=600)
    data = json.loads((suite.path / "r.json").read_text())
    entries = {e["model"]: e for e in data["audits"] if e["nodeid"].split("::")[-1].startswith("test_shape_bias[")}
    assert set(entries) == {"tests.tiny_models:tiny", mine}, proc.stdout[-3000:]
    imagenet, mapped = entries["tests.tiny_models:tiny"], entries[mine]
    assert mapped["metrics"].pop("category_mapping") == {
        "source": "category_map", "classes_per_category": {c: len(i) for c, i in mapping().items()}}
    assert mapped["outcomes"] == imagenet["outcomes"]  # the 16-way decision of every stimulus
    assert mapped["metrics"] == imagenet["metrics"] and mapped["outcome"] == imagenet["outcome"]
    assert data["models"][mine]["classes"]["imagenet1k"] is False
