"""ONNX files as the audited model: ``--model model.onnx`` runs through ONNX Runtime (the ``deploy`` extra).

The graph runs inside :class:`OnnxModule`, an ``nn.Module`` whose forward hands the normalized batch to an ONNX
Runtime session (numpy in and out, split into the graph's batch size when its batch dimension is fixed), so
inference and every family that needs only logits run on it unchanged. What needs torch internals does not:
channel bias reads the first convolution's weight initializer from the graph (:mod:`visionaudit.models.onnx_conv`);
the conversion folds and the torch deployment forms skip, saying the model is an ONNX graph.

Execution provider: ``CUDAExecutionProvider`` first when the run's device is a GPU and this ONNX Runtime has it,
else ``CPUExecutionProvider`` (the model's ``architecture`` says which ran, and which ONNX Runtime).

Preprocessing, first found wins per field: the spec's query (``?size=``, ``?resize=``, ``?interpolation=``,
``?mean=``, ``?std=``); the file's metadata property ``visionaudit.preprocessing``, a JSON object with those keys
(``{"size": 224, "resize": 256, "interpolation": "bicubic", "mean": [0.485, 0.456, 0.406], "std": [...]}``);
the input size the graph fixes (resize at the usual 0.875 crop ratio); ImageNet's defaults. A graph whose input
takes one channel is fed grayscale. Classes: ``?classes=``, else the metadata property ``visionaudit.classes``
(a JSON list of names in output order), else ``--audit-classes``, as for any model
(:mod:`visionaudit.models.classes`). :func:`export_onnx` writes both properties.

Identity: the sha256 of the .onnx file; with external data files, the sha256 of the lines
``NAME <tab> SHA256`` of the .onnx file and each data file (names relative to the .onnx file's folder, sorted).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path, PureWindowsPath
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from visionaudit.errors import CheckpointError, ModelOutputError, SpecError
from visionaudit.files import sha256_file
from visionaudit.preprocessing import Preprocessing

METADATA_PREPROCESSING = "visionaudit.preprocessing"
METADATA_CLASSES = "visionaudit.classes"
INSTALL = "pip install 'visionaudit[deploy]'"
PREPROCESSING_KEYS = ("size", "resize", "interpolation", "mean", "std")
_DTYPES = {1: np.float32, 10: np.float16, 11: np.float64}  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE


def _runtime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise SpecError(f"ONNX models (.onnx) run through ONNX Runtime, which is not installed: {INSTALL}") from None
    return onnxruntime


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise SpecError(f"ONNX models (.onnx) are read with the onnx package, which is not installed: {INSTALL}") from None
    return onnx


@dataclass(frozen=True)
class OnnxGraph:
    """What reading an ONNX file (without its external data) says of it."""

    path: Path
    proto: Any  # onnx.ModelProto, initializers stored outside it left unread
    input_name: str
    input_shape: tuple[int | None, ...]  # None where the dimension is symbolic (dynamic)
    input_dtype: Any
    output_name: str
    metadata: Mapping[str, str]
    external_files: tuple[Path, ...]

    @property
    def batch(self) -> int | None:
        return self.input_shape[0]


def read_graph(path: str | Path) -> OnnxGraph:
    """``path`` read and checked as an image classifier's graph: one float (N, C, H, W) input, square when fixed,
    its external data files present, its metadata properties well formed. Read once per file version."""
    path = Path(path)
    st = path.stat()
    graph = _read_graph(str(path.resolve()), st.st_size, st.st_mtime_ns)
    missing = [str(f) for f in graph.external_files if not f.is_file()]
    if missing:  # looked for at every read: the cache keys on the .onnx file alone
        raise CheckpointError(f"{path} keeps its weights in external data files, and {', '.join(missing)} is not there; "
                              "copy them beside the .onnx file")
    return graph


@lru_cache(maxsize=8)
def _read_graph(path_text: str, size: int, mtime_ns: int) -> OnnxGraph:
    onnx = _onnx()
    path = Path(path_text)
    try:
        proto = onnx.load(path_text, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: the bytes are not a model
        raise CheckpointError(f"{path} is not a readable ONNX model ({type(e).__name__}: {str(e)[:200]}); the file is "
                              "corrupt or truncated, or not ONNX: copy it again or re-export it (torch.onnx.export)") from None
    graph = proto.graph
    if not graph.node:
        raise CheckpointError(f"{path} holds no ONNX graph (no nodes); the file is corrupt or not an ONNX model: copy it "
                              "again or re-export it (torch.onnx.export)")
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise SpecError(f"{path} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); the suite feeds an image "
                        "classifier one input, the image batch (N, C, H, W)")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type not in _DTYPES:
        raise SpecError(f"{path}: its input {inputs[0].name} is of ONNX element type {tensor.elem_type}; the suite feeds "
                        "float32 (or float16, float64) images")
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    if len(shape) != 4:
        raise SpecError(f"{path}: its input {inputs[0].name} has {len(shape)} dimensions; an image classifier takes "
                        "(batch, channels, height, width)")
    if shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4):  # (N, H, W, C): a TensorFlow-style channels-last graph
        shown = tuple(d if d is not None else "?" for d in shape)
        raise SpecError(f"{path}: its input {inputs[0].name} is {shown}, channels last (NHWC); the suite feeds (N, C, H, W) "
                        "images, channels first: export the model to take them (wrap it as model(x.permute(0, 2, 3, 1)) "
                        "before exporting, or convert the graph's input to NCHW)")
    if shape[2] is not None and shape[3] is not None and shape[2] != shape[3]:
        raise SpecError(f"{path}: its input is {shape[2]}x{shape[3]} pixels; the suite feeds square crops (export the "
                        "model for a square input)")
    if not graph.output:
        raise CheckpointError(f"{path}: its graph has no output; re-export it")
    return OnnxGraph(path, proto, inputs[0].name, shape, _DTYPES[tensor.elem_type], graph.output[0].name,
                     _metadata(proto, path), _external_files(proto, path))


def _metadata(proto: Any, path: Path) -> dict[str, str]:
    props = {p.key: p.value for p in proto.metadata_props}
    for key in (METADATA_PREPROCESSING, METADATA_CLASSES):
        if key in props:
            _parse_property(props, key, path)  # checked now: a malformed property stops the run at startup
    return props


def _parse_property(props: Mapping[str, str], key: str, path: Path) -> Any:
    try:
        value = json.loads(props[key])
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: its metadata property {key} is not JSON ({e}); see docs/models.md") from None
    if key == METADATA_CLASSES and not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise SpecError(f"{path}: its metadata property {key} must be a JSON list of class names in output order")
    if key == METADATA_PREPROCESSING:
        if not isinstance(value, dict) or set(value) - set(PREPROCESSING_KEYS):
            raise SpecError(f"{path}: its metadata property {key} must be a JSON object with the keys "
                            f"{', '.join(PREPROCESSING_KEYS)} (any of them), e.g. "
                            '{"size": 224, "resize": 256, "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5], "std": '
                            '[0.5, 0.5, 0.5]}')
    return value


def _external_files(proto: Any, path: Path) -> tuple[Path, ...]:
    """The external data files the initializers name, each inside the .onnx file's folder: an absolute location,
    or one that leads out of the folder (``../``), is refused (the ONNX format's rule; a graph that reads files
    elsewhere on the machine is not what was shipped beside it, and its identity could not name them)."""
    names = set()
    for t in proto.graph.initializer:
        if t.data_location == 1:  # onnx.TensorProto.EXTERNAL
            names.update(e.value for e in t.external_data if e.key == "location")
    fix = ("keep its external data files in the .onnx file's folder, named relative to it (onnx.save_model(..., "
           "save_as_external_data=True, location='NAME.data'))")
    for name in sorted(names):
        if Path(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
            raise CheckpointError(f"{path}: its initializers name external data at the absolute location {name!r}; {fix}")
        inside = os.path.normpath(path.parent / name)
        if not Path(inside).is_relative_to(path.parent):
            raise CheckpointError(f"{path}: its initializers name external data at {name!r}, outside the .onnx file's folder "
                                  f"{path.parent}; {fix}")
    return tuple(sorted(path.parent / n for n in names))


def model_identity(graph: OnnxGraph) -> tuple[str, str]:
    """``(sha256, what was hashed)``: the file's own sha256, or over it and its external data (module docstring)."""
    if not graph.external_files:
        return sha256_file(graph.path), str(graph.path)
    files = (graph.path, *graph.external_files)
    lines = "".join(f"{f.relative_to(graph.path.parent).as_posix()}\t{sha256_file(f)}\n" for f in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest(), " + ".join(str(f) for f in files)


def own_preprocessing(graph: OnnxGraph) -> Preprocessing:
    """What the file says of its input, before the spec's options: its metadata, else the input size its graph fixes,
    else ImageNet's defaults; grayscale when its input takes one channel."""
    pre, said = Preprocessing(), []
    if graph.input_shape[2] is not None:
        pre = pre.with_overrides({"size": str(graph.input_shape[2])})
        said.append(f"input size {graph.input_shape[2]} from the graph's input shape")
    if graph.input_shape[1] == 1:
        pre = pre.as_gray()
    if METADATA_PREPROCESSING in graph.metadata:
        meta = _parse_property(graph.metadata, METADATA_PREPROCESSING, graph.path)
        options = {k: ",".join(str(x) for x in v) if isinstance(v, list) else str(v) for k, v in meta.items()}
        try:
            pre = pre.with_overrides(options, in_spec=False)
        except SpecError as e:  # said of the file, not of a spec the user wrote
            raise SpecError(f"ONNX file {graph.path}: its metadata property {METADATA_PREPROCESSING} holds a value that is "
                            f"refused: {e}; correct the property (or re-export the file)") from None
        said.append(f"the file's metadata ({METADATA_PREPROCESSING}: {', '.join(sorted(meta))})")
    else:
        said.insert(0, "default ImageNet normalization")
    return replace(pre, source=f"ONNX file {graph.path.name}: " + "; ".join(said))


def check_input(graph: OnnxGraph, pre: Preprocessing, who: str) -> None:
    """The preprocessing's input (channels, size) against what the graph fixes: a mismatch is a spec error now."""
    channels, size = graph.input_shape[1], graph.input_shape[2]
    if channels is not None and channels not in (1, 3):
        raise SpecError(f"model {who} takes {channels} input channels (its graph's input shape): the suite feeds RGB images "
                        "(3 channels), or their luminance to a 1-channel model")
    if channels is not None and channels != pre.channels:
        raise SpecError(f"model {who} takes {channels} input channel(s) (its graph's input shape) but its preprocessing "
                        f"gives {pre.channels} mean/std value(s) ({pre.source}): give {channels}, e.g. ?mean=...&std=...")
    if size is not None and size != pre.crop_size:
        raise SpecError(f"model {who} takes {size}x{size} inputs (its graph fixes them) but its preprocessing crops "
                        f"{pre.crop_size} ({pre.source}): leave ?size= out or write ?size={size}")


def class_names(graph: OnnxGraph) -> list[str] | None:
    """The metadata property ``visionaudit.classes``, None when the file names no classes."""
    if METADATA_CLASSES not in graph.metadata:
        return None
    return _parse_property(graph.metadata, METADATA_CLASSES, graph.path)


def check_onnx_spec(spec: Any) -> None:
    """At startup (:func:`visionaudit.models.specs.parse_spec`): ONNX Runtime installed, the file a readable image
    classifier's graph, its preprocessing fitting its input, no ``?arch=`` (the graph is the architecture)."""
    _runtime()
    if "arch" in spec.options:
        raise SpecError(f"--model {spec.raw}: an ONNX file carries its architecture; ?arch= (or --arch) is for state dicts")
    graph = read_graph(spec.path)
    own = own_preprocessing(graph)
    try:
        pre = own.with_overrides(spec.options)
    except SpecError as e:  # a ?resize= below the crop the file fixes or says
        raise SpecError(f"--model {spec.raw}: {e}") from None
    check_input(graph, pre, spec.raw)


# onnx.TensorProto's floating-point element types: FLOAT, FLOAT16, DOUBLE, BFLOAT16, the FLOAT8 kinds, FLOAT4E2M1
_FLOAT_TYPES = frozenset({1, 10, 11, 16, 17, 18, 19, 20, 23})


def parameter_count(graph: OnnxGraph) -> int:
    """The weights: elements of the floating-point initializers (integer ones are shapes, axes, indices)."""
    return sum(math.prod(t.dims) for t in graph.proto.graph.initializer if t.data_type in _FLOAT_TYPES)


def session(graph: OnnxGraph, device: torch.device) -> tuple[Any, str]:
    """An ONNX Runtime session for ``graph`` on ``device`` (CUDA's provider first on a GPU when there), and the
    provider it runs on. Its threads are the process's torch threads (xdist workers share the CPU)."""
    ort = _runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are not the user's
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    try:
        sess = ort.InferenceSession(str(graph.path), sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001  (ONNX Runtime raises its own types for invalid or unsupported graphs)
        # ONNX Runtime's own words: the cause (an operator or opset it lacks, a bad attribute, ...) is in them
        said = " ".join(str(e).split())[:1000] or "no message"
        raise CheckpointError(f"ONNX Runtime {ort.__version__} could not load {graph.path}; it says: "
                              f"{type(e).__name__}: {said}") from None
    return sess, sess.get_providers()[0]


class OnnxModule(nn.Module):
    """An ONNX Runtime session as a module: normalized batch in, logits out, on the input's device."""

    def __init__(self, graph: OnnxGraph, sess: Any) -> None:
        super().__init__()
        self.graph, self.session = graph, sess

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fixed = self.graph.input_shape
        if any(f is not None and f != d for f, d in zip(fixed[1:], x.shape[1:])):
            shown = tuple(f if f is not None else "N" for f in fixed)
            raise ModelOutputError(f"{self.graph.path.name} takes inputs {shown} (its graph fixes them), not {tuple(x.shape)}")
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy(), dtype=self.graph.input_dtype)
        step = self.graph.batch or max(1, arr.shape[0])
        outs = []
        for start in range(0, arr.shape[0], step):
            chunk = arr[start : start + step]
            n = chunk.shape[0]
            if n < step and self.graph.batch is not None:  # a fixed batch: pad the last chunk, keep its own rows
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), dtype=chunk.dtype)])
            outs.append(np.asarray(self.session.run([self.graph.output_name], {self.graph.input_name: chunk})[0])[:n])
        out = np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)
        return torch.from_numpy(out.astype(np.float32, copy=False)).to(x.device)

    def __deepcopy__(self, memo: Any) -> "OnnxModule":  # a session cannot be copied; the graph it runs is read-only
        return self


@dataclass
class OnnxModel:
    """An ONNX file opened to audit (what :mod:`visionaudit.models.loading` makes a ``LoadedModel`` of)."""

    module: OnnxModule
    preprocessing: Preprocessing
    architecture: str
    class_names: list[str] | None
    classes_source: str
    sha256: str
    sha256_of: str
    parameters: int


def open_model(path: Path, device: torch.device) -> OnnxModel:
    graph = read_graph(path)
    sess, provider = session(graph, device)
    sha, sha_of = model_identity(graph)
    ort = _runtime()
    return OnnxModel(OnnxModule(graph, sess), own_preprocessing(graph), f"onnx (ONNX Runtime {ort.__version__}, {provider})",
                     class_names(graph), f"the ONNX file's metadata ({METADATA_CLASSES})", sha, sha_of, parameter_count(graph))


def check_recordable(pre: Preprocessing) -> None:
    """A preprocessing the metadata's keys (:data:`PREPROCESSING_KEYS`) cannot record is a SpecError saying what and
    why: its reader (:func:`own_preprocessing`) would feed the file a centre crop of a resize at least the crop."""
    if not pre.keep_aspect:
        what = "warps the whole image, its aspect not kept (keep_aspect false), which the file would be fed centre-cropped"
    elif pre.resize_size < pre.crop_size:
        what = (f"resizes to {pre.resize_size}, below its crop {pre.crop_size}, and pads to it, which the file's reader "
                "refuses (a resize below the size)")
    else:
        return
    raise SpecError(f"export_onnx: this preprocessing ({pre.source}) {what}; the ONNX file's metadata "
                    f"({METADATA_PREPROCESSING}: {', '.join(PREPROCESSING_KEYS)}) cannot record it. Export without "
                    "preprocessing= and audit the model itself (its spec), not the file, where these pixels matter")


def export_onnx(module: nn.Module, example: torch.Tensor, path: str | Path, preprocessing: Preprocessing | None = None,
                names: list[str] | tuple[str, ...] | None = None) -> Path:
    """``module`` (eval) exported to ``path`` by torch's dynamo exporter, its batch dimension dynamic, its weights in
    the file (external data only past protobuf's 2 GB); with ``preprocessing`` and ``names`` the metadata properties
    this module reads back (module docstring)."""
    path = Path(path)
    if preprocessing is not None:
        check_recordable(preprocessing)  # before the export's minutes, not after
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
    if preprocessing is not None:
        program.model.metadata_props[METADATA_PREPROCESSING] = json.dumps(
            {"size": preprocessing.crop_size, "resize": preprocessing.resize_size, "interpolation": preprocessing.interpolation,
             "mean": list(preprocessing.mean), "std": list(preprocessing.std)})
    if names is not None:
        program.model.metadata_props[METADATA_CLASSES] = json.dumps(list(names))
    program.save(str(path))
    return path
