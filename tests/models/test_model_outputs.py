"""What a team's classifier returns, and the state it is handed over in: what the load refuses, saying what is wrong and
the fix, because nothing measured of such a model would mean anything (visionaudit/models/probe.py), and what it
accepts (a model left in training mode is put in eval mode). ONNX graphs whose input the suite cannot feed are refused
at startup naming why."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision  # noqa: F401  (imported once, at module level: a second import registers its ops twice)

from tests.tiny_models import shipped_in_train_mode
from visionaudit.errors import ModelOutputError, SpecError
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model

IMAGES = torch.randint(0, 256, (4, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("given", [None, ["cat"], ["a", "b", "c"]])
def test_a_one_logit_model_without_two_class_names_is_refused(tmp_path, given):
    # Its top-1 was output 0 for every image: with a one-name class file every gate passed on nothing.
    spec = "tests.tiny_models:one_logit"
    if given is not None:
        (tmp_path / "classes.json").write_text(json.dumps(given))
        spec += f"?classes={tmp_path / 'classes.json'}"
    with pytest.raises(ModelOutputError, match=r"has one output .*audited as two classes, logits \[0, z\].*"
                                               r"class file of two names, the negative one first"):
        load_model(spec, "cpu")


def test_a_one_logit_model_is_audited_as_two_classes_its_sigmoid_the_second(tmp_path):
    (tmp_path / "classes.txt").write_text("no cat\ncat\n")
    model = load_model(f"tests.tiny_models:one_logit?classes={tmp_path / 'classes.txt'}", "cpu")
    assert model.num_classes == 2 and model.label_space.names == ("no cat", "cat")
    assert "audited as two classes, 'no cat' and 'cat', logits [0, z]" in model.notes[0]
    logits = predict_logits(model, IMAGES, batch_size=3)
    with torch.inference_mode():  # the module's own one logit, on the same preprocessed images
        z = model.module(model.preprocessing.normalize(IMAGES))
    assert z.shape == (4, 1) and torch.equal(logits[:, 0], torch.zeros(4))
    assert torch.allclose(logits.softmax(1)[:, 1:], torch.sigmoid(z), atol=1e-6)


@pytest.mark.parametrize("name", [pytest.param(d, marks=pytest.mark.slow(data=False)) if d != "torchscript" else d
                                  for d in ("torchscript", "torch_export", "onnxruntime")])
def test_a_one_logit_models_deployment_forms_give_its_two_class_logits(name):
    if name == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
    from tests.tiny_models import one_logit
    from visionaudit.families.deployment import convert

    module, x = one_logit().eval(), torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        z = module(x)
    got = convert(module, name, x[:2])(x)
    assert got.shape == (3, 2) and torch.allclose(got, torch.cat([torch.zeros_like(z), z], 1), atol=1e-5)


def test_a_plain_dicts_logits_are_read_as_an_hf_outputs():
    model = load_model("tests.tiny_models:dict_logits", "cpu")
    assert model.num_classes == 3
    with torch.inference_mode():  # the module's own "logits", on the same preprocessed images
        own = model.module(model.preprocessing.normalize(IMAGES))["logits"]
    assert torch.allclose(predict_logits(model, IMAGES, batch_size=4), own, atol=1e-6)


def test_a_dict_without_logits_is_refused_naming_its_keys_and_the_fix():
    # It was refused as "returned dict for one image", its keys and the key the suite reads unsaid.
    with pytest.raises(ModelOutputError, match=r"returned a dict with keys \['features', 'scores'\] and no 'logits': the "
                                               r"suite reads a dict's 'logits'.*wrap the model"):
        load_model("tests.tiny_models:dict_scores", "cpu")


def test_a_features_and_logits_tuple_is_refused_naming_it_not_read_as_its_first():
    # Its first element, the (1, 4) features, was read as logits: a model of 4 classes, its 3 unsaid.
    with pytest.raises(ModelOutputError, match=r"returned a tuple of 2 \(\(1, 4\), \(1, 3\)\), not one logits tensor.*"
                                               r"return the logits alone, or wrap the model"):
        load_model("tests.tiny_models:features_and_logits", "cpu")


def test_a_tuple_of_logits_then_what_is_not_logits_reads_its_first():
    # As HF's return_dict=False gives them: the logits, then a tuple of hidden states.
    from visionaudit.models.probe import as_logits

    logits = torch.randn(2, 5)
    assert as_logits((logits, (torch.randn(2, 8, 4, 4),))) is logits and as_logits([logits]) is logits


def test_a_model_returning_probabilities_is_read_as_their_logarithms_not_softmaxed_again():
    # Its probabilities were read as logits: softmax of values in [0, 1] is nearly flat, so a category of many classes
    # (dog, 109) outvoted its 0.98 on a brown bear under shape bias's aggregation = "sum".
    from visionaudit.data.imagenet16 import categories, category_probabilities, decide

    model = load_model("tests.tiny_models:probabilities", "cpu")
    assert model.to_dict()["outputs"] == "probabilities" and "returns probabilities" in model.notes[0]
    with torch.inference_mode():  # the module's own probabilities, on the same preprocessed images
        own = model.module(model.preprocessing.normalize(IMAGES)).double()
    logits = predict_logits(model, IMAGES, batch_size=4)
    assert torch.allclose(logits.double().softmax(1), own, atol=1e-6)
    by_hand = category_probabilities(own, "sum").argmax(1).tolist()  # its own probabilities, aggregated as they are
    assert by_hand == [categories().index("bear")] * 4 and decide(logits, "sum") == ["bear"] * 4
    assert load_model("tests.tiny_models:tiny", "cpu").to_dict()["outputs"] == "logits"  # logits are not taken for them


def test_a_model_shipped_in_train_mode_is_audited_in_eval_mode():
    model = load_model("tests.tiny_models:shipped_in_train_mode", "cpu")
    assert not model.module.training and not any(m.training for m in model.module.modules())
    first, again = predict_logits(model, IMAGES, batch_size=4), predict_logits(model, IMAGES[:1], batch_size=1)
    assert torch.equal(first, predict_logits(model, IMAGES, batch_size=4))
    assert torch.allclose(first[:1], again, atol=1e-6)


@pytest.mark.parametrize("what", ["dropout", "batch statistics"])
def test_a_torchscript_traced_in_train_mode_is_refused(tmp_path, what):
    # torch.jit.trace records dropout and BatchNorm's batch statistics as they ran: eval() on the archive changes
    # nothing, and its logits were a draw (dropout) or depended on the rest of the batch.
    net = shipped_in_train_mode()
    if what == "batch statistics":
        net.drop = torch.nn.Identity()
    x = torch.randn(2, 3, 224, 224)
    torch.jit.trace(net, x, check_trace=False).save(str(tmp_path / "model.pt"))
    with pytest.raises(ModelOutputError, match=r"returned other logits for the same image on a second pass.*"
                                               r"model.eval\(\) before torch.jit.trace"):
        load_model(str(tmp_path / "model.pt"), "cpu")
    torch.jit.trace(net.eval(), x).save(str(tmp_path / "eval.pt"))  # traced in eval mode: audited
    assert load_model(str(tmp_path / "eval.pt"), "cpu").num_classes == 3


def test_a_deterministic_model_computing_in_bfloat16_is_not_refused_for_its_rounding():
    # Its float32 logits carry bfloat16 rounding: one step at a logit of 8 is 4e-3 of it, over the float32 bound (1e-3)
    # the load held them to by their dtype; training mode moves logits by a tenth of their scale and more.
    model = load_model("tests.tiny_models:bfloat16_kernels", "cpu")
    assert model.num_classes == 3


@pytest.mark.parametrize("factory, dtype", [("half_weights", "float16"), ("double_weights", "float64")])
def test_weights_not_in_float32_are_named_not_the_input_size(factory, dtype):
    said = rf"failed on a \(1, 3, 224, 224\) input .*its weights are {dtype}, and the suite feeds it float32 images: give "
    with pytest.raises(ModelOutputError, match=said + r"the model in float32 \(model.float\(\)") as e:
        load_model(f"tests.tiny_models:{factory}", "cpu")
    assert "?size=" not in str(e.value)


def _graph(path, shape, outputs=3):
    """input (shape) -> [Transpose to NCHW when channels last] -> Conv -> GlobalAveragePool -> Flatten."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    channels_last = shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4)
    cin = shape[3] if channels_last else shape[1]
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(outputs, cin, 3, 3)).astype(np.float32), "W")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])] if channels_last else []
    nodes += [helper.make_node("Conv", ["t" if channels_last else "x", "W"], ["y"]),
              helper.make_node("GlobalAveragePool", ["y"], ["p"]), helper.make_node("Flatten", ["p"], ["logits"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return str(path)


@pytest.mark.parametrize("shape", [(1, 224, 224, 3), ("N", 224, 224, 3), ("N", "H", "W", 3)])
def test_a_channels_last_onnx_graph_is_refused_at_startup_naming_nhwc(tmp_path, shape):
    pytest.importorskip("onnxruntime")
    path = _graph(tmp_path / "nhwc.onnx", shape)
    with pytest.raises(SpecError, match=r"channels last \(NHWC\); the suite feeds \(N, C, H, W\) images.*"
                                        r"model\(x.permute\(0, 2, 3, 1\)\)"):
        load_model(path, "cpu")


def test_a_four_channel_onnx_graph_is_refused_without_asking_for_four_means(tmp_path):
    pytest.importorskip("onnxruntime")
    path = _graph(tmp_path / "rgba.onnx", ("N", 4, 224, 224))
    with pytest.raises(SpecError, match=r"takes 4 input channels \(its graph's input shape\): the suite feeds RGB images") as e:
        load_model(path, "cpu")
    assert "give 4" not in str(e.value)  # ?mean= takes 1 or 3 values: four are refused


def test_a_fixed_batch_of_one_onnx_graph_loads_and_predicts_every_image(tmp_path):
    pytest.importorskip("onnxruntime")
    model = load_model(_graph(tmp_path / "b1.onnx", (1, 3, 224, 224)), "cpu")
    assert model.to_dict()["dtype"] == "float32"  # its graph's input's: the suite sees no weights of it
    logits = predict_logits(model, IMAGES, batch_size=3)
    assert logits.shape == (4, 3) and torch.allclose(logits[1:2], predict_logits(model, IMAGES[1:2]), atol=1e-5)


def test_a_one_output_onnx_graph_is_audited_as_two_classes(tmp_path):
    # A team shipping an ONNX file cannot wrap its model: the [0, z] logits are the suite's, where outputs become logits.
    pytest.importorskip("onnxruntime")
    (tmp_path / "classes.json").write_text(json.dumps(["negative", "positive"]))
    path = _graph(tmp_path / "one.onnx", ("N", 3, 224, 224), outputs=1)
    model = load_model(f"{path}?classes={tmp_path / 'classes.json'}", "cpu")
    logits = predict_logits(model, IMAGES, batch_size=3)
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    z = session.run(None, {"x": model.preprocessing.normalize(IMAGES).numpy()})[0]  # the graph's own one output
    assert model.num_classes == 2 and z.shape == (4, 1) and torch.equal(logits[:, 0], torch.zeros(4))
    assert torch.allclose(logits[:, 1:], torch.from_numpy(z), atol=1e-5)


def test_an_hf_folder_saved_in_float16_is_audited_in_float32(tmp_path):
    # transformers 5 loads the dtype a folder was saved in: the model ran in float16, its functional channel shares
    # stopped on a dtype mismatch and the colour-space folds failed on float16 rounding.
    transformers = pytest.importorskip("transformers", reason="in the hf extra: pip install 'visionaudit[hf]'")
    from tests.hub_models import tiny_vit

    folder = tiny_vit(tmp_path / "vit")
    half = transformers.ViTForImageClassification.from_pretrained(str(folder), torch_dtype=torch.float32).half()
    half.save_pretrained(tmp_path / "vit16")
    (tmp_path / "vit16" / "preprocessor_config.json").write_bytes((folder / "preprocessor_config.json").read_bytes())
    model = load_model(f"hf:{tmp_path / 'vit16'}", "cpu")
    assert {p.dtype for p in model.module.parameters()} == {torch.float32}
    assert model.notes == (f"model {model.id}: its weights are saved in float16; audited in float32 (those weights "
                           "exactly, float32 arithmetic); the deployment audit checks its float16 and bfloat16 forms",)
    # The report's model entry says it too, not only run.notes (it had no dtype): what it ran in, and what it was saved in
    assert (model.to_dict()["dtype"], model.to_dict()["saved_dtype"]) == ("float32", "float16")
    as_saved = load_model(f"hf:{folder}", "cpu")
    assert as_saved.notes == () and as_saved.to_dict()["dtype"] == "float32" and "saved_dtype" not in as_saved.to_dict()
    reference = half.float().eval()  # the saved float16 weights, exactly, in float32
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(model.module(x).logits, reference(x).logits)
