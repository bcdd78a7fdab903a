"""ONNX graphs for the tests of ONNX files as the audited model: tests.tiny_models:tiny exported by torch, a hand-made
one-conv classifier, the documented file identity computed independently, and hand-computed weight shares.
Imported after ``pytest.importorskip("onnx")`` (the deploy extra)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from visionaudit.models.onnx_model import export_onnx

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
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [batch, weight.shape[1] * (conv_attrs or {}).get("group", 1), size,
                                                              size])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if props:
        helper.set_model_props(model, props)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.data",
                        size_threshold=0)
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

