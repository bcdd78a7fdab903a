"""ONNX files as the audited model (issue 25, item 3): fixed and dynamic batch dimensions, preprocessing and classes
from the file, its identity, and the refusals (specs, config, corrupt files, a run's exit 4). The families on a
graph (channel bias from its initializer, what skips, the reference comparison): test_onnx_families.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from visionaudit.config import load_config
from visionaudit.errors import CheckpointError, SpecError
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model
from visionaudit.models.onnx_model import read_graph
from visionaudit.models.specs import canonical_spec, parse_spec
from visionaudit.preprocessing import Preprocessing

onnx = pytest.importorskip("onnx", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
ort = pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tests.models.onnx_graphs import (  # noqa: E402
    IMAGES,
    ROOT,
    TINY,
    conv_graph,
    expected_identity,
    export_tiny,
    tiny_module,
    weights,
)

# -- running the graph -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 2, None], ids=["fixed-1", "fixed-2", "dynamic"])
def test_fixed_and_dynamic_batch_give_the_torch_models_logits(tmp_path, batch):
    path = export_tiny(tmp_path / "tiny.onnx", batch)
    model = load_model(str(path), "cpu")
    shape = read_graph(path).input_shape
    assert shape == (batch, 3, 32, 32)
    torch_model = load_model(f"{TINY}?size=32", "cpu")  # the graph fixes 32 px: the same crop and resize
    assert model.preprocessing.geometry == torch_model.preprocessing.geometry
    expected = predict_logits(torch_model, IMAGES)
    for batch_size in (1, 3, 5):  # split into the fixed batch, the last chunk padded; or one run
        got = predict_logits(model, IMAGES, batch_size=batch_size)
        assert got.shape == (5, 1000) and (got - expected).abs().max() < 1e-4
    assert model.architecture.startswith(f"onnx (ONNX Runtime {ort.__version__}, CPUExecutionProvider")
    # the torch model's parameters, not the exporter's integer constants (a reduction's axes) stored beside them
    stored = sum(numpy_helper.to_array(t).size for t in onnx.load(str(path)).graph.initializer)
    assert model.parameters == sum(p.numel() for p in tiny_module().parameters()) < stored


def test_preprocessing_and_classes_from_the_metadata_the_suite_writes(tmp_path):
    pre = Preprocessing(crop_size=32, resize_size=40, interpolation="bicubic", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    names = [f"class {i}" for i in range(1000)]
    path = export_tiny(tmp_path / "meta.onnx", None, preprocessing=pre, names=names)
    props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert props["visionaudit.preprocessing"] == {"size": 32, "resize": 40, "interpolation": "bicubic",
                                                  "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    model = load_model(str(path), "cpu")
    got = model.preprocessing
    assert (got.crop_size, got.resize_size, got.interpolation, got.mean, got.std) == (32, 40, "bicubic", pre.mean, pre.std)
    assert "visionaudit.preprocessing" in got.source
    assert list(model.label_space.names) == names and "visionaudit.classes" in model.label_space.source
    # the spec's query wins over the metadata, field by field; ?classes= over the file's names
    classes = tmp_path / "c.txt"
    classes.write_text("\n".join(f"other {i}" for i in range(1000)))
    model = load_model(f"{path}?mean=0.1,0.1,0.1&classes={classes}", "cpu")
    assert model.preprocessing.mean == (0.1, 0.1, 0.1) and model.preprocessing.std == pre.std
    assert model.label_space.names[0] == "other 0"


def test_without_metadata_size_from_the_graph_and_classes_from_the_run(tmp_path):
    path = conv_graph(tmp_path / "m.onnx", weights(), size=48)
    classes = tmp_path / "four.txt"
    classes.write_text("a\nb\nc\nd\n")
    model = load_model(str(path), "cpu", classes=str(classes))
    assert (model.input_size, model.preprocessing.resize_size) == (48, 54)  # 48 / 0.875
    assert model.preprocessing.mean == (0.485, 0.456, 0.406) and "input size 48 from the graph" in model.preprocessing.source
    assert list(model.label_space.names) == ["a", "b", "c", "d"]
    with pytest.raises(SpecError, match=r"takes 48x48 inputs \(its graph fixes them\) but its preprocessing crops 32.*\?size=48"):
        parse_spec(f"{path}?size=32")  # at startup


def test_a_metadata_value_that_is_refused_names_the_file_and_its_property(tmp_path):
    """Review 34b, finding 5: a 0-255 mean in the file's metadata was refused with the bare ``mean=... is refused``
    text, as if the user had written it in a spec; it now names the file and its visionaudit.preprocessing property."""
    path = conv_graph(tmp_path / "m.onnx", weights(),
                      props={"visionaudit.preprocessing": json.dumps({"mean": [123.675, 116.28, 103.53]})})
    with pytest.raises(SpecError) as e:
        load_model(str(path), "cpu")
    assert str(e.value).startswith(f"ONNX file {path}: its metadata property visionaudit.preprocessing holds a value that is "
                                   "refused: mean=123.675,116.28,103.53 is refused (a value outside 0 to 1; in 0-255 units? "
                                   "divide by 255 (123.675 -> 0.485))"), str(e.value)


def test_a_one_channel_graph_is_fed_grayscale(tmp_path):
    path = conv_graph(tmp_path / "gray.onnx", weights(cin=1), size=16)
    model = load_model(str(path), "cpu")
    assert model.preprocessing.gray and len(model.preprocessing.mean) == 1
    assert predict_logits(model, torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)).shape == (3, 4)


def test_identity_is_the_files_sha256_with_its_external_data(tmp_path):
    inline = conv_graph(tmp_path / "a.onnx", weights())
    model = load_model(str(inline), "cpu")
    assert (model.sha256, model.sha256_of) == (hashlib.sha256(inline.read_bytes()).hexdigest(), str(inline))
    folder = tmp_path / "ext"
    folder.mkdir()
    split = conv_graph(folder / "b.onnx", weights(), external=True)
    data = folder / "w.data"
    lines = "".join(f"{name}\t{hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n"
                    for name in sorted(["b.onnx", "w.data"]))
    model = load_model(str(split), "cpu")
    assert model.sha256 == hashlib.sha256(lines.encode()).hexdigest() == expected_identity(split)
    assert model.sha256_of == f"{split} + {data}"
    assert model.parameters == 4 * 3 * 3 * 3 + 4
    data.unlink()
    with pytest.raises(CheckpointError, match=r"keeps its weights in external data files, and .*w.data is not there"):
        parse_spec(str(split))


def _relocated(path: Path, location: str) -> Path:
    """``path``'s graph with its initializers' external data at ``location`` (the data file moved there)."""
    proto = onnx.load(str(path), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    target = Path(location) if Path(location).is_absolute() else path.parent / location
    target.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "w.data").rename(target)
    onnx.save_model(proto, str(path))
    return path


@pytest.mark.parametrize("where", ["absolute", "parent", "sub-then-up"])
def test_external_data_outside_the_onnx_files_folder_is_refused_at_startup(tmp_path, where):
    folder = tmp_path / "model"
    folder.mkdir()
    path = conv_graph(folder / "m.onnx", weights(), external=True)
    location = {"absolute": str(tmp_path / "elsewhere" / "w.data"), "parent": "../w.data",
                "sub-then-up": "sub/../../w.data"}[where]
    _relocated(path, location)
    what = "at the absolute location" if where == "absolute" else r"at '.*', outside the .onnx file's folder"
    with pytest.raises(CheckpointError, match=rf"its initializers name external data {what}.*keep its external data "
                                              r"files in the .onnx file's folder"):
        parse_spec(str(path))


def test_external_data_in_a_subfolder_is_read(tmp_path):
    path = _relocated(conv_graph(tmp_path / "m.onnx", weights(), external=True), "sub/w.data")
    assert read_graph(path).external_files == (tmp_path / "sub" / "w.data",)
    assert load_model(str(path), "cpu").parameters == 4 * 3 * 3 * 3 + 4


def test_parameters_count_the_floating_point_initializers_only(tmp_path):
    """A Reshape's int64 shape and a Slice's int64 bounds are constants, not weights: by hand, the conv's 4x3x3x3
    weight, its 4 biases and the 3 values of a float scale."""
    before = [("Reshape", [np.array([1, 3, 8, 8], dtype=np.int64)], {}),
              ("Mul", [np.full((1, 3, 1, 1), 0.5, dtype=np.float16).astype(np.float32)], {}),
              ("Slice", [np.array([0], dtype=np.int64), np.array([8], dtype=np.int64), np.array([3], dtype=np.int64)], {})]
    path = conv_graph(tmp_path / "m.onnx", weights(), before=before, batch=1)
    proto = onnx.load(str(path))
    kinds = sorted(TensorProto.DataType.Name(t.data_type) for t in proto.graph.initializer)
    assert kinds == ["FLOAT", "FLOAT", "FLOAT", "INT64", "INT64", "INT64", "INT64"]  # W, B, the scale; shape, 3 bounds
    from visionaudit.models.onnx_model import parameter_count

    assert parameter_count(read_graph(path)) == 4 * 3 * 3 * 3 + 4 + 3
    assert load_model(str(path), "cpu").parameters == 4 * 3 * 3 * 3 + 4 + 3


def test_an_onnx_runtime_load_error_gives_its_own_message(tmp_path):
    """A graph onnx reads but ONNX Runtime cannot load: its message, not a guessed cause."""
    path = tmp_path / "m.onnx"
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    with pytest.raises(CheckpointError) as raised:
        load_model(str(path), "cpu")
    message = str(raised.value)
    assert f"could not load {path}; it says: " in message and "No Op registered for NoSuchOp" in message, message
    assert "re-export it with an opset" not in message


# -- specs, config, refusals ------------------------------------------------------------------------


def test_canonical_form_and_config_tables(tmp_path):
    path = conv_graph(tmp_path / "m.onnx", weights())
    spelled = f"{tmp_path}/./m.onnx?size=8&reference=efficientnet-lite0"
    assert canonical_spec(spelled) == f"{path}?reference=efficientnet_lite0&size=8"
    assert canonical_spec(str(path), arch="torchvision:resnet18") == str(path)  # --arch is for state dicts
    assert parse_spec(spelled).kind == "onnx"
    nested = f"{path}?reference=efficientnet-lite0?std=0.5,0.5,0.5%26mean=0.5,0.5,0.5"  # its own query, & escaped
    canonical = canonical_spec(nested)
    assert canonical == f"{path}?reference=efficientnet_lite0?mean=0.5,0.5,0.5%26std=0.5,0.5,0.5"
    assert canonical_spec(canonical) == canonical and parse_spec(canonical).options["reference"] == (
        "efficientnet_lite0?mean=0.5,0.5,0.5&std=0.5,0.5,0.5")
    config = tmp_path / "audit.toml"
    config.write_text(f'[models."{spelled}".accuracy]\nmin_top1 = 0.25\n')
    assert load_config(config).thresholds("accuracy", canonical_spec(spelled))["min_top1"] == 0.25
    with pytest.raises(SpecError, match=r"an ONNX file carries its architecture; \?arch="):
        parse_spec(f"{path}?arch=torchvision:resnet18")
    with pytest.raises(SpecError,
                       match=r"\?reference= names the torch model an ONNX file \(.onnx\) was exported from; this model is not"):
        parse_spec("efficientnet_lite0?reference=torchvision:resnet18")
    with pytest.raises(SpecError, match=r"not another ONNX file"):
        parse_spec(f"{path}?reference={path}")


def test_corrupt_files_are_refused_naming_the_fix(tmp_path):
    empty_proto = tmp_path / "m.onnx"
    empty_proto.write_bytes(b"\x08\x07\x12\x04onnx")  # a valid ModelProto with no graph
    with pytest.raises(CheckpointError, match=r"holds no ONNX graph \(no nodes\); the file is corrupt or not an ONNX model"):
        parse_spec(str(empty_proto))
    truncated = tmp_path / "t.onnx"
    truncated.write_bytes(export_tiny(tmp_path / "whole.onnx", 1).read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"is not a readable ONNX model \(.*\); the file is corrupt or truncated"):
        parse_spec(str(truncated))
    bad_meta = conv_graph(tmp_path / "b.onnx", weights(), props={"visionaudit.preprocessing": '{"crop": 3}'})
    with pytest.raises(SpecError, match=r"visionaudit.preprocessing must be a JSON object with the keys size, resize"):
        parse_spec(str(bad_meta))
    two = tmp_path / "two.onnx"
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "g",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    onnx.save_model(helper.make_model(graph), str(two))
    with pytest.raises(SpecError, match=r"takes 2 inputs \(a, b\); the suite feeds an image classifier one input"):
        parse_spec(str(two))


@pytest.mark.parametrize("case", ["corrupt", "no-onnxruntime", "data-outside"])
@pytest.mark.slow(data=False)
def test_a_run_stops_at_startup_with_exit_4(tmp_path, case):
    path = tmp_path / "m.onnx"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if case == "corrupt":
        path.write_bytes(b"\xff\xfe not protobuf at all " * 10)
        expected = "is not a readable ONNX model"
    elif case == "data-outside":
        _relocated(conv_graph(path, weights(), external=True), "../w.data")
        expected = "outside the .onnx file's folder"
    else:
        conv_graph(path, weights())
        blocker = tmp_path / "blocked" / "onnxruntime"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError('onnxruntime is blocked in this test')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env["PYTHONPATH"]])
        expected = "run through ONNX Runtime, which is not installed: pip install 'visionaudit[deploy]'"
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "--model", str(path),
                           "--device", "cpu", "-k", "accuracy", f"--audit-json={tmp_path / 'r.json'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4 and expected in output, output[-3000:]
    assert "Traceback" not in output


def test_the_logit_cache_keys_an_onnx_model_by_its_file_and_runtime(tmp_path, monkeypatch):
    from PIL import Image

    from visionaudit.data import image_sets as datasets
    from visionaudit.models import inference, logit_cache

    for i in range(4):
        folder = tmp_path / "images" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    sample = datasets.labelled_images(tmp_path / "images")
    path = export_tiny(tmp_path / "tiny.onnx", None)
    previous = logit_cache.configure(tmp_path / "cache")
    try:
        first_model = load_model(str(path), "cpu")
        images = datasets.load_images(sample, first_model.preprocessing.geometry)
        first = inference.clean_logits(first_model, sample, images)
        entry = logit_cache.entry(tmp_path / "cache", first_model, sample, first_model.preprocessing.geometry, 8)
        assert entry.path.is_file() and entry.key["model"]["sha256"] == expected_identity(path)
        assert f"ONNX Runtime {ort.__version__}" in entry.key["model"]["architecture"]
        assert entry.key["model_code"]["module"] == "visionaudit.models.onnx_model"

        def no_forward(*args, **kwargs):
            raise AssertionError("the clean pass ran although the cache holds it")

        with monkeypatch.context() as patch:
            patch.setattr(inference, "predict_logits", no_forward)
            assert torch.equal(inference.clean_logits(load_model(str(path), "cpu"), sample, images), first)
        from tests.tiny_models import tiny_other

        torch.onnx.export(tiny_other().eval(), (torch.zeros(2, 3, 32, 32),), str(path), dynamo=True, verbose=False)
        other = load_model(str(path), "cpu")  # the same path, other weights: another entry
        assert logit_cache.entry(tmp_path / "cache", other, sample, other.preprocessing.geometry, 8).path != entry.path
        assert not torch.equal(inference.clean_logits(other, sample, images), first)
    finally:
        logit_cache.configure(previous)


@pytest.mark.parametrize("pre, what", [
    (Preprocessing(crop_size=32, resize_size=36, keep_aspect=False, source="a warp"), "warps the whole image"),
    (Preprocessing(crop_size=32, resize_size=27, crop_pct=1.15, source="padded"), "resizes to 27, below its crop 32"),
])
def test_export_refuses_a_preprocessing_its_metadata_cannot_record(tmp_path, pre, what):
    """Review 39 R3/R4: the metadata has no key for a warp (its reader feeds a centre crop) nor for a resize below the
    crop (its reader refuses the file it wrote). Refused before anything is written, saying what and why."""
    path = tmp_path / "m.onnx"
    with pytest.raises(SpecError) as refused:
        export_tiny(path, None, preprocessing=pre)
    assert f"export_onnx: this preprocessing ({pre.source}) {what}" in str(refused.value), str(refused.value)
    assert "cannot record it" in str(refused.value) and not path.exists()
