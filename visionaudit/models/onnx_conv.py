"""The first convolution of an ONNX graph, read from the graph (an ONNX Runtime session has no modules to hook): the
Conv node the graph input reaches directly, after a zero Pad (folded into the convolution), or after elementwise steps
with constants only; its weight and bias from the graph's initializers, as a ``Conv2d`` (:class:`GraphConv`) that
channel bias measures as it measures a torch model's (:mod:`visionaudit.models.first_conv`).

Exporters fold BatchNorm into the convolution before it (torch's dynamo exporter does): the weights read here are
the deployed ones, whose per-channel shares can differ from the torch model's unfolded convolution.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visionaudit.errors import ModelOutputError
from visionaudit.models.first_conv import FirstConv
from visionaudit.models.onnx_model import OnnxGraph

# Steps between the graph input and its first Conv that leave each channel an affine map of itself: the weight
# shares are still read, but the Conv does not receive the input unchanged (as for a torch model).
_ELEMENTWISE = {"Sub", "Div", "Mul", "Add", "Cast", "Identity"}
_SHAPE_ONLY = {"Shape", "Size"}  # consumers of the input that read its shape only


class GraphConv(nn.Conv2d):
    """An ONNX Conv node as a torch convolution: its weight, bias, strides, dilations, groups and pads (explicit,
    asymmetric, or ``auto_pad`` SAME_UPPER/SAME_LOWER), with a zero Pad node before it folded in."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, attrs: Mapping[str, Any], extra_pads: list[int]) -> None:
        groups = int(attrs.get("group", 1))
        super().__init__(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]),
                         stride=tuple(attrs.get("strides", (1, 1))),
                         dilation=tuple(attrs.get("dilations", (1, 1))), groups=groups, bias=bias is not None)
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
            if bias is not None:
                self.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
        auto = attrs.get("auto_pad", b"NOTSET")
        self.auto_pad = auto.decode() if isinstance(auto, bytes) else str(auto)
        pads = list(attrs.get("pads", (0, 0, 0, 0)))  # ONNX: top, left, bottom, right
        self.pads = [p + e for p, e in zip(pads, extra_pads)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, left, bottom, right = self.pads
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            extra = []
            for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
                total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
                small, large = total // 2, total - total // 2
                extra.append((small, large) if self.auto_pad == "SAME_UPPER" else (large, small))
            top, bottom, left, right = top + extra[0][0], bottom + extra[0][1], left + extra[1][0], right + extra[1][1]
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _constant(graph: OnnxGraph, name: str) -> np.ndarray | None:
    """The value of tensor ``name`` when the graph stores it (an initializer, a Constant node, or either through
    Identity), else None."""
    from onnx import numpy_helper

    for t in graph.proto.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t, base_dir=str(graph.path.parent))
    for node in graph.proto.graph.node:
        if name in node.output:
            if node.op_type == "Constant":
                attrs = _attrs(node)
                if "value" in attrs:
                    return numpy_helper.to_array(attrs["value"])
                found = [v for k, v in attrs.items() if k in ("value_float", "value_floats", "value_int", "value_ints")]
                return np.asarray(found[0]) if found else None
            if node.op_type == "Identity":
                return _constant(graph, node.input[0])
    return None


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _zero_pad(graph: OnnxGraph, node: Any) -> list[int] | None:
    """A Pad node's spatial pads (top, left, bottom, right) when it pads H and W with zeros only, else None."""
    attrs = _attrs(node)
    mode = attrs.get("mode", b"constant")
    pads = _constant(graph, node.input[1]) if len(node.input) > 1 and node.input[1] else attrs.get("pads")
    value = _constant(graph, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if mode not in (b"constant", "constant") or pads is None or len(node.input) > 3 and node.input[3]:
        return None
    pads = [int(p) for p in np.asarray(pads).ravel()]
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0 or (value is not None and np.any(value)):
        return None
    return [pads[2], pads[3], pads[6], pads[7]]


def graph_first_conv(graph: OnnxGraph) -> FirstConv:
    """The Conv node that the graph input reaches, directly, after a zero Pad, or after elementwise steps with
    constants only (``Sub``, ``Div``, ``Mul``, ``Add``, ``Cast``, ``Identity``); its weight must be stored in the graph.
    :class:`ModelOutputError` says why when there is none such."""
    nodes = graph.proto.graph.node
    current, steps, pads = graph.input_name, [], [0, 0, 0, 0]
    while True:
        users = [n for n in nodes if current in n.input and n.op_type not in _SHAPE_ONLY]
        if len(users) != 1:
            raise ModelOutputError(f"{graph.path.name}: its input feeds {len(users)} nodes before any convolution; channel bias "
                                   "reads the first Conv that the input alone reaches")
        node = users[0]
        others = [i for i in node.input if i and i != current]
        if node.op_type == "Conv" and node.input[0] == current:
            break
        if node.op_type == "Pad" and node.input[0] == current and (found := _zero_pad(graph, node)) is not None:
            pads = [p + q for p, q in zip(pads, found)]
        elif node.op_type in _ELEMENTWISE and all(_constant(graph, i) is not None for i in others):
            steps.append(node.op_type)
        else:
            raise ModelOutputError(f"{graph.path.name}: its input reaches {node.op_type} ({node.name or 'unnamed'}) before any "
                                   "convolution; channel bias reads a Conv that the input reaches directly or after "
                                   "elementwise preprocessing only")
        current = node.output[0]
    weight = _constant(graph, node.input[1])
    if weight is None or weight.ndim != 4:
        raise ModelOutputError(f"{graph.path.name}: the weight of its first Conv ({node.name or node.input[1]}) is computed in "
                               "the graph (quantized or reshaped), not stored as an initializer; channel bias "
                               "reads stored weights")
    bias = _constant(graph, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    conv = GraphConv(weight, bias, _attrs(node), pads).eval()
    return FirstConv(f"Conv {node.name or 'unnamed'} (weight {node.input[1]})", conv, input_is_model_input=not steps)
