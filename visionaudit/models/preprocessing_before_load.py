"""A model's preprocessing where it is known before the model loads (from the spec, torchvision's weights' metadata,
timm's registry of pretrained configurations, an ``hf:`` model's image processor already on disk), and the startup
checks that use it: a torchvision model that is not an image classifier, a timm model whose configuration asks for an
input the suite does not make, and a spec's ``?resize=`` below the crop its model is fed, stop the run (exit 4) before
any model loads. Where the crop is known only as the model loads (an
``hf:`` repo's image processor not yet downloaded, a file ``?arch=`` that is not an architecture, a timm name timm
cannot resolve; an ONNX file's is read at parse time by onnx_model.check_onnx_spec) the load refuses it with the same
message (:meth:`visionaudit.preprocessing.Preprocessing.with_overrides`).

Nothing here builds a model; the loader (:mod:`visionaudit.models.loading`) takes the lite, torchvision and timm
preprocessing, and a state dict's architecture (:func:`architecture_of`), from here, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any, NamedTuple

from visionaudit.errors import SpecError, VisionAuditError
from visionaudit.models.specs import (
    LITE_SIZES,
    ModelSpec,
    parse_spec,
    torchvision_weights_enum,
)
from visionaudit.models.timm_configs import TIMM_MISSING, registered_cfg, unknown_name
from visionaudit.preprocessing import (
    Preprocessing,
    from_timm_config,
    from_torchvision_transforms,
)

LITE_MEAN, LITE_STD = (127.0 / 255.0,) * 3, (128.0 / 255.0,) * 3


def lite_preprocessing(name: str) -> Preprocessing:
    """EfficientNet-Lite's (its TF training): centre crop of its size from size + 32, bicubic, (x - 127) / 128."""
    size = LITE_SIZES[name]
    return Preprocessing(crop_size=size, resize_size=size + 32, interpolation="bicubic", mean=LITE_MEAN, std=LITE_STD,
                         source="EfficientNet-Lite (TF): (x - 127) / 128, centre crop size / (size + 32), bicubic")


class NotAnImageClassifier(SpecError):
    """A torchvision model whose weights' transforms have no crop (segmentation, detection, optical flow), or a video
    classifier's (its transforms crop, but it takes clips, not images)."""


def torchvision_preprocessing(weights: Any, name: str) -> Preprocessing:
    """A torchvision architecture's: its weights' transforms (the default weights' for random init); ImageNet's
    defaults for an architecture without weights. Weights whose transforms have no crop (``SemanticSegmentation``,
    ``ObjectDetection``, ``OpticalFlow``) are not an image classifier's, nor are a video classifier's
    (``VideoClassification``): :class:`NotAnImageClassifier`."""
    if weights is None:
        return Preprocessing(source="default ImageNet preprocessing (torchvision architecture without weights)")
    import torchvision

    transforms = weights.transforms()
    video = torchvision.models.list_models(module=torchvision.models.video)  # a crop, but it takes clips (N, C, T, H, W)
    if getattr(transforms, "crop_size", None) is None or name in video:
        what = "a video classifier: it takes clips, not images" if name in video else \
            f"its weights' transforms are {type(transforms).__name__}"
        raise NotAnImageClassifier(f"torchvision:{name} is not an image classifier ({what}): give an image "
                                   "classification model (torchvision.models.list_models(module=torchvision.models) "
                                   "lists them)")
    return from_torchvision_transforms(transforms, f"torchvision {name} weights {weights.name}")


def timm_preprocessing(name: str, model: Any = None) -> Preprocessing | None:
    """A timm model's: timm's data config (``resolve_data_config``) of the pretrained configuration timm registers for
    ``NAME[.TAG]``, at startup as the model loads, so that the two agree even where timm builds a model with another
    name's configuration (timm 1.0's ``vitamin_xlarge_336`` is built with ``vitamin_xlarge_256``'s, 256 for its 336).
    Where timm registers none (a deprecated alias): the built ``model``'s own; None at startup, the load's to say."""
    cfg = timm_pretrained_cfg_before_load(name)
    if cfg is None and model is None:
        return None
    from timm.data import resolve_data_config

    config = resolve_data_config({}, pretrained_cfg=cfg or {}, model=model)
    num_classes = cfg.get("num_classes") if cfg is not None else getattr(model, "num_classes", None)
    return from_timm_config(config, f"timm {name} data config", num_classes)


def timm_pretrained_cfg_before_load(name: str) -> dict[str, Any] | None:
    """The pretrained configuration timm registers for ``NAME.TAG`` (the default tag's for ``NAME``), read without
    building the model: the one ``timm.create_model(name)`` looks up, whether the weights are timm's, a checkpoint's
    or random (a replaced classifier head leaves the input as it is). None where that is not known now: timm not
    installed, a name or tag it has not, a name it registers no configuration for (a deprecated alias)."""
    try:
        cfg = registered_cfg(name)
    except ImportError:  # the timm extra is not installed: the startup check and the load name the fix
        return None
    return None if cfg is None else cfg.to_dict()  # an unknown name or tag: check_timm_input names it


def _torchvision_weights(name: str, weights: str | None) -> Any:
    """The weights ``weights`` names (DEFAULT's for None, DEFAULT or none: random init is fed DEFAULT's
    preprocessing), or None where there are none of that name; the load refuses what is unknown."""
    enum = torchvision_weights_enum(name)
    if enum is None:
        return None
    if weights in (None, "DEFAULT", "none"):
        return getattr(enum, "DEFAULT", None)
    return enum.__members__.get(weights)


class Architecture(NamedTuple):
    """What a state dict's ``?arch=`` (``--arch``) builds, read as the load builds it: a kind and a name, with random
    weights whatever weights part the spec names (the file holds the weights); so a torchvision one is fed its
    DEFAULT weights' preprocessing. No canonical spec: none names an architecture without its weights."""

    kind: str
    name: str


def architecture_of(arch: str) -> Architecture:
    """``arch`` (a spec) as an :class:`Architecture`; a SpecError where it is no spec."""
    spec = parse_spec(arch)
    return Architecture(spec.kind, spec.name)


def architecture_preprocessing(arch: Architecture) -> Preprocessing | None:
    """What ``arch`` is fed, where that is known before it is built (a timm name's where timm registers its
    configuration: :func:`timm_preprocessing`)."""
    if arch.kind == "lite":
        return lite_preprocessing(arch.name)
    if arch.kind == "timm":
        return timm_preprocessing(arch.name)
    if arch.kind == "torchvision":
        return _known_torchvision(arch.name, None)
    if arch.kind == "factory":  # the suite's default: a factory does not tell its preprocessing
        return Preprocessing(source=f"default ImageNet preprocessing ({arch.name})")
    return None


def _known_torchvision(name: str, weights: str | None) -> Preprocessing | None:
    try:
        return torchvision_preprocessing(_torchvision_weights(name, weights), name)
    except NotAnImageClassifier:  # no crop to check against: check_image_classifier refuses the model, saying so
        return None


def known_preprocessing(spec: ModelSpec) -> Preprocessing | None:
    """What ``spec``'s model is fed before its spec's options apply, where that is known without loading it; None
    where only the load knows (an ONNX file, a file ``?arch=`` that is not an architecture, a timm model whose
    configuration is not known now: :func:`timm_pretrained_cfg_before_load`)."""
    if spec.kind in ("lite", "factory", "timm"):
        return architecture_preprocessing(Architecture(spec.kind, spec.name))
    if spec.kind == "torchvision":
        return _known_torchvision(spec.name, spec.weights)
    if spec.kind == "torchscript":  # the suite's default: it does not tell its preprocessing
        return Preprocessing(source="default ImageNet preprocessing (TorchScript file)")
    if spec.kind == "state_dict":
        try:
            arch = architecture_of(spec.options["arch"])
        except VisionAuditError:
            return None  # the load names the architecture's problem
        return architecture_preprocessing(arch)
    if spec.kind == "hf":
        from visionaudit.models import hf, hub

        processor = hub.hf_config_file(spec, hub.HF_PROCESSOR)
        where = str(spec.path) if spec.path is not None else spec.name
        if processor is not None:
            return hf.preprocessing(spec, processor.parent, where)
        return hf.assumed_preprocessing(hub.hf_config_file(spec), f"default ImageNet preprocessing (no {hub.HF_PROCESSOR} "
                                                                  f"in {where})")
    return None


def check_image_classifier(spec: ModelSpec, who: str | None = None) -> None:
    """At startup: a torchvision model (or a state dict's torchvision ``?arch=``) whose weights' transforms have no crop
    (segmentation, detection, optical flow) is :class:`NotAnImageClassifier` (exit 4), with the load's words, whatever
    weights the spec names: the weights' metadata says so before anything is built or downloaded. The message starts
    with ``who`` (``--model SPEC`` by default; "" for a spec the caller names itself), and for a state dict names
    ``?arch=`` as what to change."""
    if spec.kind == "torchvision":
        name, weights = spec.name, spec.weights
    elif spec.kind == "state_dict" and "arch" in spec.options:
        try:
            arch = architecture_of(spec.options["arch"])
        except VisionAuditError:
            return  # the load names the architecture's problem
        if arch.kind != "torchvision":
            return
        name, weights = arch.name, None
    else:
        return
    try:
        torchvision_preprocessing(_torchvision_weights(name, weights), name)
    except NotAnImageClassifier as e:
        text = str(e) if spec.kind == "torchvision" else \
            f"its architecture (?arch= or --arch) {e}".replace(": give an image classification model", ": give an image "
                                                                 "classification architecture")
        raise NotAnImageClassifier(_with_who(text, spec, who)) from None


def _with_who(text: str, spec: ModelSpec, who: str | None) -> str:
    who = f"--model {spec.raw}" if who is None else who
    return f"{who}: {text}" if who else text


def check_timm_input(spec: ModelSpec, who: str | None = None) -> None:
    """At startup: a timm model (or a state dict's timm ``?arch=``) whose architecture or tag timm has not (a typo:
    the closest name it has is suggested), where timm is not installed, or whose registered configuration asks for an
    input the suite does not make (crop_mode ``border``, a non-square input:
    :func:`visionaudit.preprocessing.from_timm_config`) is a SpecError (exit 4) naming the spec (``who``, as for
    :func:`check_image_classifier`), with the load's words."""
    if spec.kind == "state_dict" and "arch" in spec.options:
        try:
            arch = architecture_of(spec.options["arch"])
        except VisionAuditError:
            return  # the load names the architecture's problem
        timm_arch, name, written = arch.kind == "timm", arch.name, spec.options["arch"]
    else:
        timm_arch, name, written = spec.kind == "timm", spec.name, spec.raw
    if timm_arch:
        try:
            unknown = unknown_name(name, written)
        except ImportError:  # the load's words
            unknown = TIMM_MISSING
        if unknown:
            raise SpecError(_with_who(unknown, spec, who))
        try:
            known_preprocessing(spec)
        except SpecError as e:
            raise SpecError(_with_who(str(e), spec, who)) from None


def check_resize(spec: ModelSpec, who: str | None = None) -> None:
    """At startup: a ``?resize=`` (without ``?size=``, which the spec parser compares it with) below the crop the model
    is fed, where that crop is known now, is a SpecError (exit 4) naming the spec (``who``, as for
    :func:`check_image_classifier`), both numbers and the fix."""
    if "resize" not in spec.options or "size" in spec.options:
        return
    pre = known_preprocessing(spec)
    if pre is None:
        return
    try:
        pre.with_overrides(spec.options)
    except SpecError as e:
        raise SpecError(_with_who(str(e), spec, who)) from None
