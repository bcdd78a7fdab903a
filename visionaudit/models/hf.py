"""Hugging Face ``transformers`` image classifiers (``hf:PATH``, ``hf:ORG/NAME[@REVISION]``; ``pip install '.[hf]'``).

The folder is what ``save_pretrained`` writes: ``config.json``, the weights (``model.safetensors`` or
``pytorch_model.bin``) and, beside them, the image processor's ``preprocessor_config.json``. A hub model's files
come from the local Hugging Face cache (:mod:`visionaudit.models.hub`: the download policy). The model loads
through ``AutoModelForImageClassification`` from local files only; its classes are ``config.id2label``
(:func:`visionaudit.models.classes.hf_classes`); its output's ``.logits`` are the logits
(:func:`visionaudit.models.probe.as_logits`).

The image processor's rule, in the suite's :class:`~visionaudit.preprocessing.Preprocessing`
(:func:`from_image_processor`):

- ``size={"height": H, "width": W}`` (ViT, DeiT, BEiT, Swin): the whole image to H x W, aspect not kept
  (``keep_aspect=False``), then ``crop_size`` centre-cropped when ``do_center_crop``; H must equal W;
- ``size={"shortest_edge": S}`` with ``crop_pct`` (ConvNeXt): below 384, the short side to ``int(S / crop_pct)`` and a
  centre crop of S; from 384 on, the whole image to S x S (as ``ConvNextImageProcessor.resize`` does);
- ``size={"shortest_edge": S}`` with ``do_center_crop`` (BiT, CLIP-style, ResNet): the short side to S, centre crop
  ``crop_size``;
- ``resample`` (PIL's numbers: 0 nearest, 2 bilinear, 3 bicubic; others are refused: the suite resizes with
  those three), ``rescale_factor`` (folded into mean and std: ``(x * r - m) / s = (x / 255 - m / 255r) / (s / 255r)``),
  ``image_mean``, ``image_std`` (0 and 1 when ``do_normalize`` is off);
- the centre crop's offset rounded down, as transformers' ``center_crop`` does (``floor_crop``);
- ``do_convert_rgb`` (CLIP, BiT, SigLIP): a transparent image composited onto white, as transformers'
  ``convert_to_rgb`` does (``alpha_on_white``), not its alpha dropped (torchvision's ImageFolder, kept for the rest).

The suite resizes with PIL, as transformers' PIL processors do (``backend="pil"``, the "slow" ones): their output is
matched exactly. The torchvision backend (the default in transformers 5) resizes tensors: within one level for
bilinear, up to about 11 levels at some pixels for bicubic (torchvision's tensor bicubic is not PIL's).

Only the processors of :data:`FOLLOWED` are read; LeViT's (the short side to ``int(256 / 224 * S)``, centre crop) and
PoolFormer's (the short side to ``int(S / crop_pct)``, centre crop) rules are their own ``resize``. Any other processor
(MobileViT's, say, which also flips RGB to BGR), ``do_flip_channel_order``, a ``longest_edge`` cap, non-square sizes
and processors with an offset are refused at startup (exit 4) naming ``?size=&resize=&interpolation=&mean=&std=``:
given all five, the spec's query is the preprocessing and the processor is not read; fewer override what it says.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

from visionaudit.errors import CheckpointError, SpecError
from visionaudit.models import hub
from visionaudit.models.classes import hf_classes
from visionaudit.models.specs import ModelSpec
from visionaudit.preprocessing import Preprocessing

_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL.Image.Resampling values
_RESAMPLE_NAMES = {1: "LANCZOS", 4: "BOX", 5: "HAMMING"}
_CONVNEXT_SQUASH_FROM = 384  # ConvNextImageProcessor: from this size on, the image is warped to it, not cropped
# The image processors whose rules the suite implements (checked against transformers' PIL processors). Others are
# refused at startup: their own resize or _preprocess may do what their keys do not say (MobileViT flips to BGR).
# Swin, ResNet and DINOv2 checkpoints ship ViT's, ConvNext's and BiT's processors.
FOLLOWED = frozenset({"ViTImageProcessor", "DeiTImageProcessor", "BeitImageProcessor", "BitImageProcessor",
                      "CLIPImageProcessor", "SiglipImageProcessor", "ConvNextImageProcessor", "LevitImageProcessor",
                      "PoolFormerImageProcessor"})


def _need_transformers(raw: str):
    try:
        import transformers
    except ImportError:
        raise SpecError(f"--model {raw}: Hugging Face models need transformers: pip install 'visionaudit[hf]'") from None
    return transformers


def model_files(spec: ModelSpec) -> list[Path]:
    """The files that make the model (configuration, weights, image processor's configuration), for its identity."""
    if spec.path is not None:
        folder = spec.path
        weights = next((folder / n for n in hub.HF_WEIGHTS if (folder / n).is_file()), None)
        if weights is None:
            raise CheckpointError(f"--model {spec.raw}: {folder} holds no {' or '.join(hub.HF_WEIGHTS)}; save the model "
                                  "with save_pretrained (sharded checkpoints are not read)")
        return [p for p in (folder / hub.HF_CONFIG, weights, folder / hub.HF_PROCESSOR) if p.is_file()]
    return list(hub.hf_repo_files(spec).files.values())


def _resample(value: Any) -> int:
    value = getattr(value, "value", value)  # PIL.Image.Resampling, or torchvision's InterpolationMode by name
    if isinstance(value, str):
        return {"nearest": 0, "bilinear": 2, "bicubic": 3}.get(value.lower(), -1)
    return int(value) if value is not None else 2


def processor_family(config: Mapping[str, Any]) -> str:
    """The processor's class without its backend suffix (``ViTImageProcessorPil`` -> ``ViTImageProcessor``; an old
    ``ViTFeatureExtractor`` reads as ``ViTImageProcessor``)."""
    kind = str(config.get("image_processor_type") or config.get("feature_extractor_type") or "")
    for suffix in ("Fast", "Pil"):
        kind = kind.removesuffix(suffix)
    return kind.replace("FeatureExtractor", "ImageProcessor")


SPEC_QUERY = "?size=N&resize=N&interpolation=bilinear|bicubic|nearest&mean=R,G,B&std=R,G,B"  # the whole preprocessing


def _refuse(source: str, why: str) -> SpecError:
    return SpecError(f"{source}: {why}; give the preprocessing in the spec instead: {SPEC_QUERY}")


def from_image_processor(config: Mapping[str, Any], source: str) -> Preprocessing:
    """The suite's preprocessing for an image processor's configuration (``preprocessor_config.json``'s keys, or a
    processor's ``to_dict()``); see the module docstring for the rules. Only the processors of :data:`FOLLOWED`
    are read (another class may resize, crop or reorder channels its own way, which its keys do not say)."""
    kind = processor_family(config)
    if kind not in FOLLOWED:
        raise _refuse(source, f"the image processor {kind or '(of no named type)'} is not one whose rules the suite "
                              f"follows ({', '.join(sorted(FOLLOWED))})")
    if config.get("do_flip_channel_order"):
        raise _refuse(source, "the image processor flips the channels (RGB to BGR: do_flip_channel_order), which the "
                              "suite does not do")
    size = config.get("size") or {"height": 224, "width": 224}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if size.get("longest_edge") is not None:
        raise _refuse(source, f"the image processor also caps the longest edge (size={dict(size)}), which the suite "
                              "does not follow")
    crop = config.get("crop_size") if config.get("do_center_crop") else None
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if crop is not None and crop.get("height") != crop.get("width"):
        raise SpecError(f"{source}: a {crop['height']} x {crop['width']} crop is not square; the suite feeds square "
                        "images: give ?size=N (and ?resize=N)")
    resample = _resample(config.get("resample", 2))
    if resample not in _RESAMPLE:
        raise SpecError(f"{source}: resample={_RESAMPLE_NAMES.get(resample, resample)} is not one the suite resizes "
                        "with; give ?interpolation=bilinear|bicubic|nearest")
    keep_aspect = True
    square = "height" in size and "width" in size
    if square and size["height"] != size["width"]:
        raise SpecError(f"{source}: resizing to {size['height']} x {size['width']} (not square); the suite feeds "
                        "square images: give ?size=N")
    if kind == "PoolFormerImageProcessor" and config.get("crop_pct") is not None:
        # PoolFormerImageProcessor.resize: the short side to int(S / crop_pct), S the shortest edge or the (square) size
        if not crop or not (square or "shortest_edge" in size):
            raise _refuse(source, f"PoolFormer's processor resizes the short side by crop_pct (size={dict(size)}) without "
                                  "a square crop, which the suite cannot follow")
        edge = int(size["height"] if square else size["shortest_edge"])
        resize, crop_size = int(edge / float(config["crop_pct"])), int(crop["height"])
        rule = f"short side to {resize} (crop_pct {config['crop_pct']}), centre crop {crop_size}"
    elif kind == "LevitImageProcessor" and "shortest_edge" in size and crop:
        # LevitImageProcessor.resize: the short side to int((256 / 224) * shortest_edge)
        resize, crop_size = int((256 / 224) * int(size["shortest_edge"])), int(crop["height"])
        rule = f"short side to {resize} (256/224 of {size['shortest_edge']}), centre crop {crop_size}"
    elif square:
        resize = int(size["height"])
        keep_aspect = False
        crop_size = int(crop["height"]) if crop else resize
        rule = f"whole image to {resize} x {resize}" + (f", centre crop {crop_size}" if crop else "")
    elif "shortest_edge" in size and config.get("crop_pct") is not None and kind == "ConvNextImageProcessor":
        edge = int(size["shortest_edge"])
        if edge < _CONVNEXT_SQUASH_FROM:
            resize, crop_size = int(edge / float(config["crop_pct"])), edge
            rule = f"short side to {resize} (crop_pct {config['crop_pct']}), centre crop {edge}"
        else:
            resize = crop_size = edge
            keep_aspect = False
            rule = f"whole image to {edge} x {edge}"
    elif "shortest_edge" in size and crop:
        resize, crop_size = int(size["shortest_edge"]), int(crop["height"])
        rule = f"short side to {resize}, centre crop {crop_size}"
    else:
        raise _refuse(source, f"the image processor resizes by {sorted(size)} without a square crop, which the suite "
                              "cannot follow")
    if not config.get("do_resize", True):
        raise SpecError(f"{source}: the image processor does not resize; give ?size=N&resize=N")
    if config.get("do_rescale", True):
        factor = float(config.get("rescale_factor", 1 / 255))
    else:
        factor = 1.0
    if config.get("rescale_offset"):
        raise SpecError(f"{source}: rescale_offset (values in [-1, 1] before normalizing) is not followed; give "
                        "?mean=M&std=S for the whole mapping from [0, 1]")
    if config.get("do_normalize", True):
        mean, std = (_per_channel(config.get(key, (0.5, 0.5, 0.5)), key, source) for key in ("image_mean", "image_std"))
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    scale = 255.0 * factor  # the suite normalizes x / 255: fold the processor's own factor into mean and std
    if not math.isclose(scale, 1.0, rel_tol=1e-9):
        mean, std = tuple(m / scale for m in mean), tuple(s / scale for s in std)
        rule += f", rescale {factor:g} (folded into mean and std)"
    on_white = bool(config.get("do_convert_rgb"))  # transformers' convert_to_rgb: transparency composited onto white
    rule += ", transparency onto white" if on_white else ""
    return Preprocessing(crop_size=crop_size, resize_size=resize, interpolation=_RESAMPLE[resample], mean=mean, std=std,
                         keep_aspect=keep_aspect, floor_crop=True, alpha_on_white=on_white,
                         source=f"{source}: {rule}, {_RESAMPLE[resample]}")


def _per_channel(value: Any, key: str, source: str) -> tuple[float, ...]:
    """``image_mean`` or ``image_std`` as one value per channel: a number is every channel's, as transformers broadcasts
    it over the image's (so a 1-channel model gets it too: :meth:`Preprocessing.as_gray`)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (float(value),) * 3
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise _refuse(source, f"its {key} {value!r} is not a number or a list of numbers") from None


def processor_config(folder: Path) -> dict[str, Any] | None:
    """The image processor's configuration as transformers completes it (its class defaults for keys the file leaves
    out); None when the folder has none. A file that is not a JSON object is a SpecError naming it and the fix."""
    path = folder / hub.HF_PROCESSOR
    if not path.is_file():
        return None
    try:
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(str(folder), local_files_only=True).to_dict()
    except Exception:  # noqa: BLE001  (a processor class this transformers lacks: the file's own keys)
        pass
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        config, why = None, f"cannot be read as JSON ({e})"
    else:
        why = f"holds a JSON {type(config).__name__}, not an object"
    if not isinstance(config, dict):
        raise SpecError(f"{path} {why}: save the image processor again (processor.save_pretrained(FOLDER)), or give the "
                        f"whole preprocessing in the spec, which then does not read it: {SPEC_QUERY}")
    return config


SPEC_PREPROCESSING = ("size", "resize", "interpolation", "mean", "std")  # all given: the processor is not read


def preprocessing(spec: ModelSpec, folder: Path, where: str) -> Preprocessing:
    """The model's preprocessing from the image processor in ``folder``; one the suite does not follow is refused,
    unless the spec's query gives the whole of it (``?size=&resize=&interpolation=&mean=&std=``)."""
    if all(k in spec.options for k in SPEC_PREPROCESSING):
        return Preprocessing(source=f"the spec's query (the image processor of {where} is not read)")
    try:
        config = processor_config(folder)
        if config is None:
            return assumed_preprocessing(folder / hub.HF_CONFIG,
                                         f"default ImageNet preprocessing (no {hub.HF_PROCESSOR} in {where})")
        return from_image_processor(config,
                                    f"image processor {config.get('image_processor_type', '')} of {where}".replace("  ", " "))
    except SpecError as e:
        raise SpecError(f"--model {spec.raw}: {e}") from None


def assumed_preprocessing(config: Path | None, source: str) -> Preprocessing:
    """ImageNet's defaults, in place of a missing image processor: for a model whose ``config.json`` says its pixel values
    have one channel (``num_channels``), one mean and one std (:meth:`Preprocessing.as_gray`), as the suite feeds any
    1-channel model. Decided here: the loader's probe of the first convolution feeds 3 channels, which an hf: model's
    embeddings refuse before any convolution runs."""
    pre = Preprocessing(source=source)
    try:
        channels = json.loads(config.read_text()).get("num_channels", 3) if config is not None else 3
    except (OSError, ValueError, AttributeError):  # unreadable: the load says why
        channels = 3
    return pre.as_gray() if channels == 1 else pre


def assumed_preprocessing_note(spec: ModelSpec) -> str | None:
    """For an ``hf:`` model with no image processor on disk (and not the whole preprocessing in its spec): the note that
    says so, with the preprocessing assumed in its place (ImageNet's defaults, the spec's overrides applied, as
    :func:`preprocessing` and the loader make it) and the fix. A model trained with another size, mean or std would be
    fed other pixels than it was trained on: wrong numbers, without this note. None for any other model."""
    if spec.kind != "hf" or all(k in spec.options for k in SPEC_PREPROCESSING):
        return None
    if hub.hf_config_file(spec, hub.HF_PROCESSOR) is not None:
        return None
    pre = assumed_preprocessing(hub.hf_config_file(spec), "").with_overrides(spec.options)  # as preprocessing() and the loader
    assumed = (f"short side to {pre.resize_size}, centre crop {pre.crop_size}, {pre.interpolation}, mean "
               f"({', '.join(f'{v:g}' for v in pre.mean)}), std ({', '.join(f'{v:g}' for v in pre.std)})")
    given = [k for k in SPEC_PREPROCESSING if k in spec.options]
    defaults = "ImageNet's defaults" + (", as one channel: the luminance of their RGB mean and std, the model taking 1 input "
                                        "channel" if pre.gray else "")
    values = "mean=M&std=S" if pre.gray else "mean=R,G,B&std=R,G,B"
    if spec.path is not None:
        where, save = f"in {spec.path}", f"processor.save_pretrained({str(spec.path)!r})"
    else:
        where = f"for {spec.name} in the Hugging Face cache {hub.hub_cache()}"
        save = (f"{hub.download_command(spec.name, spec.weights)} if the repo has one, else "
                "processor.save_pretrained(FOLDER) and hf:FOLDER")
    return (f"{spec.id}: no {hub.HF_PROCESSOR} was found {where}, so its images are preprocessed as assumed, not as its "
            f"image processor says: {assumed} ({defaults}{', the spec giving ' + ', '.join(given) if given else ''}). "
            "If the model was trained with another size, mean or std, its numbers are wrong. Fix: save the image processor "
            f"with the model ({save}), or give the preprocessing in the spec: "
            f"{spec.canonical.split('?')[0]}?size=N&resize=N&interpolation=bilinear|bicubic|nearest&{values}")


def check_preprocessing(spec: ModelSpec) -> None:
    """At startup (after :func:`hub.check_available`): an ``hf:`` model's image processor is one the suite follows,
    or the spec gives its preprocessing; else a SpecError (exit 4) naming the query that does. Other specs: nothing."""
    if spec.kind != "hf":
        return
    path = hub.hf_config_file(spec, hub.HF_PROCESSOR)
    if path is not None:
        _need_transformers(spec.raw)
        preprocessing(spec, path.parent, str(spec.path) if spec.path is not None else spec.name)


def saved_dtype(files) -> str | None:
    """The dtype a folder's config.json says its weights are saved in, when not float32 (they are audited in float32,
    :func:`build`); None when float32, "auto", unset or unreadable."""
    try:
        config = json.loads((files[0].parent / "config.json").read_text())
    except (OSError, ValueError):
        return None
    saved = config.get("dtype") or config.get("torch_dtype")  # transformers 5's name, then 4's
    return None if not isinstance(saved, str) or saved in ("float32", "auto") else saved


def saved_dtype_note(spec: ModelSpec, files) -> str | None:
    """What the run says of a folder saved in another dtype than float32: it is audited in float32 (:func:`build`)."""
    saved = saved_dtype(files)
    if saved is None:
        return None
    return (f"model {spec.id}: its weights are saved in {saved}; audited in float32 (those weights exactly, float32 "
            "arithmetic); the deployment audit checks its float16 and bfloat16 forms")


def build(spec: ModelSpec):
    """The module, its preprocessing and classes, and the files that make it (``loading._Built`` is made from these)."""
    _need_transformers(spec.raw)
    import torch
    from transformers import AutoModelForImageClassification

    files = model_files(spec)
    folder = files[0].parent  # all in one folder (hub.resolve_files: one snapshot)
    where = str(spec.path) if spec.path is not None else f"{spec.name}{'@' + spec.weights if spec.weights else ''} ({folder})"
    try:
        # float32 whatever dtype the folder's weights are saved in (transformers 5 loads that dtype, "auto"): the model
        # the suite audits is float32, as a state dict loaded into its architecture is; the deployment audit checks its
        # float16 and bfloat16 forms. (`dtype` from transformers 4.56, which warns of the older `torch_dtype`.)
        module = AutoModelForImageClassification.from_pretrained(str(folder), local_files_only=True,
                                                                 **{_dtype_keyword(): torch.float32})
    except Exception as e:
        raise CheckpointError(f"--model {spec.raw}: transformers could not load an image classifier from {where} "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return module, preprocessing(spec, folder, where), f"hf:{type(module).__name__}", files, hf_classes(module)


def _dtype_keyword() -> str:
    """``from_pretrained``'s name for the weights' dtype in the installed transformers: ``dtype`` from 4.56, else
    ``torch_dtype`` (which 4.56 and later read with a deprecation warning)."""
    import transformers

    major, minor = (int(part) for part in re.findall(r"\d+", transformers.__version__)[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
