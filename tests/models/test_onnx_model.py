"""ONNX files as the audited model (issue 25, item 3): fixed and dynamic batch dimensions, preprocessing and classes
from the file, its identity, channel bias from the graph's initializer, what skips, and the refusals."""

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
from visionaudit.errors import CheckpointError, ModelOutputError, SpecError
from visionaudit.families.assessment import NotApplicable
from visionaudit.families.channel_bias import (
    ChannelBias,
    FirstConvUnread,
    assess_weight_shares,
    contribution_shares,
    weight_bias,
)
from visionaudit.families.conversion import check_equivalence
from visionaudit.families.deployment import Unsupported, check_form
from visionaudit.families.records import AuditRecord
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model
from visionaudit.models.onnx_conv import graph_first_conv
from visionaudit.models.onnx_model import export_onnx, read_graph
from visionaudit.models.specs import canonical_spec, parse_spec
from visionaudit.preprocessing import Preprocessing

onnx = pytest.importorskip("onnx", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
ort = pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = "tests.tiny_models:tiny"
GEN = torch.Generator().manual_seed(3)
IMAGES = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=GEN)


def tiny_module() -> torch.nn.Module:
    from tests.tiny_models import tiny

    return tiny().eval()


def export_tiny(path: Path, batch: int | None, **metadata) -> Path:
    """tests.tiny_models:tiny exported by torch's own exporter: its batch fixed at ``batch``, or dynamic."""
    example = torch.zeros(batch or 2, 3, 32, 32)
    if batch is None:
        export_onnx(tiny_module(), example, path, **metadata)
    else:
        torch.onnx.export(tiny_module(), (example,), str(path), dynamo=True, verbose=False)
    return path


def conv_graph(path: Path, weight: np.ndarray, before: list = (), conv_attrs: dict | None = None, batch="N", size=8,
               head: bool = True, props: dict | None = None, external: bool = False) -> Path:
    """input -> ``before`` nodes -> Conv(weight, bias) -> [GlobalAveragePool -> Flatten]: a hand-made classifier."""
    inits = [numpy_helper.from_array(weight.astype(np.float32), "W"),
             numpy_helper.from_array(np.linspace(-1, 1, weight.shape[0]).astype(np.float32), "B")]
    nodes, current = [], "x"
    for i, (op, consts, attrs) in enumerate(before):
        names = []
        for j, c in enumerate(consts):
            if c is None:
                names.append("")
                continue
            names.append(f"c{i}_{j}")
            inits.append(numpy_helper.from_array(np.asarray(c), f"c{i}_{j}"))
        nodes.append(helper.make_node(op, [current, *names], [f"t{i}"], name=f"{op.lower()}{i}", **attrs))
        current = f"t{i}"
    nodes.append(helper.make_node("Conv", [current, "W", "B"], ["y"], name="stem", **(conv_attrs or {})))
    out = "y"
    if head:
        nodes += [helper.make_node("GlobalAveragePool", ["y"], ["p"]), helper.make_node("Flatten", ["p"], ["logits"])]
        out = "logits"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, weight.shape[1] * (conv_attrs or {}).get("group", 1), size, size])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if props:
        helper.set_model_props(model, props)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def expected_identity(path: Path) -> str:
    """The documented identity, computed here: the file's sha256, or over ``NAME<tab>SHA256`` lines of it and the
    external data files its initializers name."""
    proto = onnx.load(str(path), load_external_data=False)
    names = {e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"}
    if not names:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    lines = "".join(f"{n}\t{hashlib.sha256((path.parent / n).read_bytes()).hexdigest()}\n" for n in sorted({path.name, *names}))
    return hashlib.sha256(lines.encode()).hexdigest()


def weights(out=4, cin=3, k=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(out, cin, k, k)).astype(np.float32)


def hand_shares(w: np.ndarray) -> list[float]:
    per = np.abs(w.astype(np.float64)).sum(axis=(0, 2, 3))
    return list(per / per.sum())


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
    path = conv_graph(tmp_path / "m.onnx", weights(), props={"visionaudit.preprocessing": json.dumps({"mean": [123.675, 116.28, 103.53]})})
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
    lines = "".join(f"{name}\t{hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n" for name in sorted(["b.onnx", "w.data"]))
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


# -- channel bias from the graph --------------------------------------------------------------------


def test_channel_bias_reads_the_first_conv_initializer(tmp_path):
    w = weights(out=6, seed=1) * np.array([1.0, 2.0, 0.5], dtype=np.float32).reshape(1, 3, 1, 1)
    model = load_model(str(conv_graph(tmp_path / "m.onnx", w)), "cpu")
    result = weight_bias(model)
    assert isinstance(result, ChannelBias) and result.first.input_is_model_input
    assert result.shares == pytest.approx(hand_shares(w), abs=1e-12)
    std = np.array(model.preprocessing.std)
    per = np.abs(w.astype(np.float64)).sum(axis=(0, 2, 3)) / std
    assert result.normalized_shares == pytest.approx(list(per / per.sum()), abs=1e-12)
    assert "stem" in result.first_conv and "weight W" in result.first_conv


def test_elementwise_preprocessing_in_the_graph_is_passed_over(tmp_path):
    """Sub and Div by constants before the Conv: its weights are still read, but its input is not the model's, so
    contribution shares are refused as for a torch model."""
    w = weights(seed=2)
    mean, std = np.full((1, 3, 1, 1), 0.5, np.float32), np.full((1, 3, 1, 1), 0.25, np.float32)
    path = conv_graph(tmp_path / "m.onnx", w, before=[("Sub", [mean], {}), ("Div", [std], {})])
    model = load_model(str(path), "cpu")
    result = weight_bias(model)
    assert result.shares == pytest.approx(hand_shares(w), abs=1e-12) and not result.first.input_is_model_input
    with pytest.raises(ModelOutputError, match="does not receive the model input unchanged"):
        contribution_shares(model, result.first, IMAGES[:, :, :8, :8])


@pytest.mark.parametrize("attrs, pad", [
    ({"pads": [1, 0, 2, 1], "strides": [2, 2]}, None),
    ({"pads": [0, 0, 0, 0]}, [0, 0, 1, 2, 0, 0, 3, 0]),  # a zero Pad node before the Conv, folded in
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, None),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, None),
    ({"pads": [2, 1, 0, 2], "dilations": [2, 2]}, None),
    ({"group": 3, "pads": [1, 1, 1, 1]}, None),
])
def test_the_graph_conv_is_onnx_runtimes_conv(tmp_path, attrs, pad):
    """The Conv2d made from the graph gives ONNX Runtime's output of the same nodes (what contribution shares use)."""
    cin = 1 if attrs.get("group") else 3
    w = weights(out=6, cin=cin, seed=4)
    before = [("Pad", [np.array(pad, dtype=np.int64)], {"mode": "constant"})] if pad else []
    path = conv_graph(tmp_path / "c.onnx", w, before=before, conv_attrs=attrs, size=9, head=False)
    x = torch.randn(2, 3, 9, 9, generator=GEN)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    first = graph_first_conv(read_graph(path))
    with torch.no_grad():
        got = first.module(x)
    assert first.input_is_model_input and tuple(got.shape) == expected.shape
    assert np.abs(got.numpy() - expected).max() < 1e-5


def test_no_readable_first_conv_skips_with_the_reason(tmp_path):
    resize = ("Resize", [None, np.array([1, 1, 2, 2], np.float32)], {})
    model = load_model(str(conv_graph(tmp_path / "r.onnx", weights(), before=[resize], size=4)), "cpu")
    result = weight_bias(model)
    assert isinstance(result, FirstConvUnread) and "its input reaches Resize (resize0) before any convolution" in result.reason
    with pytest.raises(NotApplicable, match="reaches Resize"):
        assess_weight_shares(AuditRecord("channel_bias", model.id), result, {}, {"model": model.id})


# -- what does not apply to a graph, and the reference comparison -----------------------------------


def test_conversion_folds_and_torch_forms_skip_and_the_reference_is_compared(tmp_path):
    path = export_tiny(tmp_path / "tiny.onnx", None, preprocessing=Preprocessing(crop_size=32, resize_size=36))
    reference = f"{TINY}?size=32"  # the torch model as the file was exported: 32 px (its own query inside the spec's)
    model = load_model(f"{path}?reference={reference}", "cpu")
    assert model.id == f"{os.path.normpath(path)}?reference={reference}"
    with pytest.raises(NotApplicable, match="is an ONNX graph"):
        check_equivalence(model, IMAGES, "rgb_to_gray")
    logits = predict_logits(model, IMAGES)
    for form in ("torchscript", "bf16_cpu", "channels_last"):
        with pytest.raises(Unsupported, match=f"the model is an ONNX graph run by ONNX Runtime; {form} is a form of a torch model"):
            check_form(model, IMAGES, logits, form)
    same = check_form(model, IMAGES, logits, "onnxruntime")
    assert same.max_abs_diff < 1e-4 and same.top1_agreement == 1.0
    other = load_model(f"{path}?reference=tests.tiny_models:tiny_other?size=32", "cpu")  # another model: its logits differ
    assert check_form(other, IMAGES, logits, "onnxruntime").max_abs_diff > 1e-2
    plain = load_model(str(path), "cpu")
    with pytest.raises(Unsupported, match=r"no \?reference=SPEC names the torch model"):
        check_form(plain, IMAGES, logits, "onnxruntime")
    wrong = load_model(f"{path}?reference={reference}&mean=0.5,0.5,0.5", "cpu")
    with pytest.raises(AssertionError, match="is fed other input than its reference") as refused:
        check_form(wrong, IMAGES, predict_logits(wrong, IMAGES), "onnxruntime")
    # hunt 35, F1: options after a reference go to the file; the message names the other reading and its %26
    assert "Its spec gives the ONNX file mean: if they were meant for the reference, write %26" in str(refused.value)
    plain_reference = load_model(f"{path}?reference={TINY}&mean=0.5,0.5,0.5", "cpu")  # nothing split off: no %26 advice
    with pytest.raises(AssertionError, match="is fed other input than its reference") as refused:
        check_form(plain_reference, IMAGES, predict_logits(plain_reference, IMAGES), "onnxruntime")
    assert "%26" not in str(refused.value)


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
    with pytest.raises(SpecError, match=r"\?reference= names the torch model an ONNX file \(.onnx\) was exported from; this model is not"):
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
