"""What a model expects of its input: geometry (resize, crop, interpolation) and normalization."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

from visionaudit.errors import SpecError

if TYPE_CHECKING:  # imported where tensors are made: the xdist controller reads geometries without torch
    import torch

# A 1-channel model is fed the luminance of each RGB image, with ITU-R BT.601's weights (as PIL's "L" mode,
# OpenCV's RGB2GRAY and, to three digits, torchvision's rgb_to_grayscale, and the corruption kernels' gray conversion).
# The suite's one set of luma weights: the conversion audit and gray_to_rgb's default use them too (:func:`luminance`).
LUMA_BT601 = (0.299, 0.587, 0.114)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True)
class Geometry:
    """How an image file becomes a square uint8 tensor.

    ``crop=True`` (natural images): resize the short side to ``resize_size``, then centre-crop
    ``crop_size``. ``crop=False`` (stimuli, and models whose processor warps, as ViT's, or timm's ``squash``): the
    whole image to ``resize_size`` x ``resize_size``, its aspect not kept, then centre-cropped to ``crop_size`` when
    that is smaller (for stimuli the two are equal: nothing cut away); an image already that size is taken unchanged.
    A resize below the crop (timm's crop_pct above 1) is padded with black to it, as torchvision's centre crop pads.
    ``alpha_on_white``: a transparent image is composited onto white (a Hugging Face processor's ``do_convert_rgb``),
    not its alpha dropped (torchvision's ImageFolder, PIL's ``convert("RGB")``).
    """

    resize_size: int
    crop_size: int
    interpolation: str = "bilinear"
    crop: bool = True
    floor_crop: bool = False  # the centre crop's offset rounded down (Hugging Face's), not to the nearest (torchvision's)
    alpha_on_white: bool = False  # transparency composited onto white (Hugging Face), not dropped (torchvision)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.crop_size, "interpolation": self.interpolation, "crop": self.crop}
        if self.crop or self.resize_size != self.crop_size:
            out["resize"] = self.resize_size
        if self.floor_crop:
            out["crop_offset"] = "floor"
        if self.alpha_on_white:
            out["alpha"] = "onto white"
        return out


def whole_image(size: int, interpolation: str = "bilinear") -> Geometry:
    """The uncropped geometry: every image becomes ``size`` x ``size`` as a whole."""
    return Geometry(size, size, interpolation, crop=False)


@dataclass(frozen=True)
class Preprocessing:
    """Geometry plus per-channel normalization ``(x / 255 - mean) / std``.

    ``keep_aspect`` (the usual rule): the short side is resized to ``resize_size``, then the centre ``crop_size``
    is cut; False (a Hugging Face processor's ``size={"height": H, "width": W}``): the whole image is resized to
    ``resize_size`` x ``resize_size``, then centre-cropped to ``crop_size`` (nothing when they are equal). Said in
    the report only when False. ``floor_crop``: the centre crop starts at ``(side - crop) // 2`` (Hugging Face
    image processors' ``center_crop``) instead of torchvision's ``round((side - crop) / 2)``, one pixel apart when
    the difference is odd; said in the report only when True. ``alpha_on_white``: transparent images composited onto
    white, as a Hugging Face processor's ``do_convert_rgb`` does (:class:`Geometry`); said only when True.
    ``crop_pct``: timm's, where its configuration gives the model's preprocessing (None once a spec sets the size or
    resize). Above 1 (timm's VOLO at 448) the resize is
    below the crop and the image is padded with black to it, as timm's centre crop does; nowhere else is a resize
    below the crop accepted. Not in the report: ``resize_size`` and ``crop_size`` say it.
    """

    crop_size: int = 224
    resize_size: int = 256
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    source: str = "default ImageNet preprocessing"
    keep_aspect: bool = True
    floor_crop: bool = False
    crop_pct: float | None = None
    alpha_on_white: bool = False

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise SpecError(f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}")
        if len(self.mean) != len(self.std):
            raise SpecError(f"mean has {len(self.mean)} values but std has {len(self.std)}; give one per input channel")
        if any(s <= 0 for s in self.std):
            raise SpecError(f"std must be positive, got {self.std}")
        padded = self.crop_pct is not None and self.crop_pct > 1  # timm's: a resize below the crop, padded to it
        if self.crop_size <= 0 or self.resize_size <= 0 or (self.resize_size < self.crop_size and not padded):
            raise SpecError(f"resize size {self.resize_size} must be at least the crop size {self.crop_size} (> 0)")

    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.resize_size, self.crop_size, self.interpolation, crop=self.keep_aspect, floor_crop=self.floor_crop,
                        alpha_on_white=self.alpha_on_white)

    @property
    def gray(self) -> bool:
        """A 1-channel model: RGB images reach it as their luminance (:data:`LUMA_BT601`)."""
        return self.channels == 1

    def normalize(self, images: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` in [0, 255] to the model's normalized float input (``dtype``, float32 by default), on
        the images' device; RGB images become their (unrounded) luminance for a 1-channel model."""
        import torch

        dtype = dtype or torch.float32
        x = images.to(dtype)
        if self.gray and x.shape[1] == 3:
            x = luminance(x)
        mean = torch.tensor(self.mean, dtype=dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=dtype, device=images.device).view(1, -1, 1, 1)
        return (x / 255.0 - mean) / std

    def as_gray(self) -> "Preprocessing":
        """This preprocessing for a model that takes one channel: one mean and one std, the luminance of the RGB ones
        (exact for the mean; the same weighting for the std)."""
        if self.gray:
            return self
        mean, std = (sum(w * v for w, v in zip(LUMA_BT601, values)) for values in (self.mean, self.std))
        return replace(self, mean=(mean,), std=(std,),
                       source=f"{self.source}; one input channel: the luminance (ITU-R BT.601) of its RGB mean and std")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        del d["crop_pct"]  # resize_size and crop_size say what is fed; reports read as before
        for key, usual in (("keep_aspect", True), ("floor_crop", False), ("alpha_on_white", False)):
            if d[key] == usual:  # the usual rule goes unsaid: reports of such models read as before
                del d[key]
        if self.gray:  # said in the report: what the model was fed, and how it was made
            d["input"], d["luminance_weights"] = "gray", list(LUMA_BT601)
        return d

    def with_overrides(self, options: Mapping[str, str], in_spec: bool = True) -> "Preprocessing":
        """Apply ``size``, ``resize``, ``interpolation``, ``mean``, ``std`` given in a model spec (``in_spec`` False:
        elsewhere, an ONNX file's metadata)."""
        given = override_values(options)
        changes: dict[str, Any] = {}
        if "size" in given:
            changes["crop_size"] = given["size"]
            if "resize" not in given:
                # Keep the usual 0.875 crop ratio when only the input size is given (a warped image with no crop: none).
                warp_only = not self.keep_aspect and self.resize_size == self.crop_size
                changes["resize_size"] = given["size"] if warp_only else math.floor(given["size"] / 0.875)
        if "resize" in given:
            if "size" not in given and given["resize"] < self.crop_size:  # with ?size=, override_values compared them
                raise SpecError(resize_below_crop(given["resize"], self, in_spec))
            changes["resize_size"] = given["resize"]
        if "size" in given or "resize" in given:
            changes["crop_pct"] = None  # the configuration's ratio no longer says what is fed; no padding either
        for key in ("interpolation", "mean", "std"):
            if key in given:
                changes[key] = given[key]
        if not changes:
            return self
        return replace(self, **changes, source=f"{self.source}, overridden by the spec")


def resize_below_crop(resize: int, own: Preprocessing, in_spec: bool = True) -> str:
    """A spec's ``?resize=`` below the crop its model is fed (``own``: the model's preprocessing without it, whose
    source says where that crop comes from, and whose size and resize the fix names), and the fix; said at startup
    where the crop is known then (visionaudit/models/preprocessing_before_load.py), else as the model loads.
    ``in_spec`` False: the resize was given elsewhere (an ONNX file's metadata), so the fix names no ``?resize=``."""
    crop = own.crop_size
    key, given, crop_with_it = (("?resize=", f"?resize={resize}", "?size=N&resize=M, M at least N") if in_spec
                                else ("resize", f"resize {resize}", "resize at least size"))
    without = f"without it this model is fed size={crop}, resize={own.resize_size}"
    if own.resize_size < crop:  # timm's crop_pct above 1: its own configuration pads, a resize given is not padded
        return (f"{given} is below the crop size {crop} this model is fed ({own.source}): the suite pads an image "
                f"resized below the crop only where the model's own configuration asks it (timm's crop_pct "
                f"{own.crop_pct:g}), not for a {key} given. Give {key} at least {crop}, leave {key} out ({without}, "
                f"padded with black to {crop}), or give the crop with it: {crop_with_it}")
    return (f"{given} is below the crop size {crop} this model is fed ({own.source}): the image is resized to "
            f"{resize} pixels, then its centre {crop} x {crop} cut, which does not fit. Give {key} at least {crop} "
            f"({without}), leave {key} out, or give the crop with it: {crop_with_it}")


# What each preprocessing key of a spec's query accepts: said when a value is refused.
OVERRIDE_VALUES = {
    "size": "a whole number of pixels above 0, as in size=224",
    "resize": "a whole number of pixels above 0, at least size, as in resize=256",
    "interpolation": "one of " + ", ".join(INTERPOLATIONS),
    "mean": "1 or 3 comma-separated numbers from 0 to 1 (one per input channel, in [0, 1] units), as in mean=0.485,0.456,0.406",
    "std": "1 or 3 comma-separated numbers above 0 (one per input channel, in [0, 1] units), as in std=0.229,0.224,0.225",
}


def override_values(options: Mapping[str, str]) -> dict[str, Any]:
    """The preprocessing keys of ``options`` (a spec's query, an ONNX file's metadata), parsed and checked from the
    text alone: a bad value is a :class:`SpecError` naming the key, the value and what is accepted. The model spec
    parser runs this at startup, so a typo stops the run before any model loads; whether the count of mean/std values
    fits the model's first convolution is known only once it loads."""
    out: dict[str, Any] = {}
    for key in ("size", "resize"):
        if key in options:
            out[key] = _int(options[key], key)
    if "size" in out and "resize" in out and out["resize"] < out["size"]:
        raise SpecError(f"resize={out['resize']} is below size={out['size']}: the short side is resized, then the centre "
                        f"size x size cut from it; resize is {OVERRIDE_VALUES['resize']}")
    if "interpolation" in options:
        value = options["interpolation"].strip().lower()
        if value not in INTERPOLATIONS:
            raise SpecError(f"interpolation={options['interpolation']} is refused: interpolation is "
                            f"{OVERRIDE_VALUES['interpolation']}")
        out["interpolation"] = value
    for key in ("mean", "std"):
        if key in options:
            out[key] = _floats(options[key], key)
    if "mean" in out and "std" in out and len(out["mean"]) != len(out["std"]):
        raise SpecError(f"mean={options['mean']} has {len(out['mean'])} value(s) but std={options['std']} has "
                        f"{len(out['std'])}: give one of each per input channel (3 for RGB, 1 for a model fed grayscale)")
    return out


def _refused(key: str, text: str, why: str) -> SpecError:
    return SpecError(f"{key}={text} is refused ({why}): {key} is {OVERRIDE_VALUES[key]}")


def _int(text: str, key: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _refused(key, text, "not a whole number") from None
    if value <= 0:
        raise _refused(key, text, "not above 0")
    return value


def _floats(text: str, key: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise _refused(key, text, "not comma-separated numbers") from None
    if len(values) not in (1, 3):
        raise _refused(key, text, f"{len(values)} values")
    if not all(math.isfinite(v) for v in values):
        raise _refused(key, text, "not finite")
    if key == "std" and any(v <= 0 for v in values):
        raise _refused(key, text, "a value not above 0")
    if key == "mean" and any(not 0 <= v <= 1 for v in values):
        hint = "; in 0-255 units? divide by 255 (123.675 -> 0.485)" if any(v > 1 for v in values) else ""
        raise _refused(key, text, "a value outside 0 to 1" + hint)
    return values


def from_torchvision_transforms(transforms: Any, source: str) -> Preprocessing:
    """From a torchvision weights' ``transforms()`` (``ImageClassification``)."""
    crop = transforms.crop_size[0] if isinstance(transforms.crop_size, (list, tuple)) else transforms.crop_size
    resize = transforms.resize_size[0] if isinstance(transforms.resize_size, (list, tuple)) else transforms.resize_size
    interpolation = getattr(transforms.interpolation, "value", str(transforms.interpolation))
    return Preprocessing(
        crop_size=int(crop),
        resize_size=int(resize),
        interpolation=str(interpolation),
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        source=source,
    )


# timm's eval transform (timm.data.transforms_factory.transforms_imagenet_eval) by the configuration's crop_mode.
TIMM_CROP_MODES = {
    "center": "the short side to floor(size / crop_pct), centre crop",
    "squash": "the whole image to floor(size / crop_pct) square, its aspect not kept, centre crop",
}


def from_timm_config(config: Mapping[str, Any], source: str, num_classes: int | None = None) -> Preprocessing:
    """From timm's ``resolve_data_config`` dict (input_size, crop_pct, crop_mode, interpolation, mean, std): the
    pixels timm's own eval transform makes. ``crop_mode`` ``center`` (the default) keeps the aspect, ``squash``
    warps the whole image (``keep_aspect=False``); crop_pct above 1 pads the resized image with black to the crop,
    as timm's centre crop does. What the suite does not make is a SpecError saying what the model expects:
    ``border`` (the longest side scaled, padded with the mean colour) and a non-square input; ``num_classes`` (the
    configuration's) 0 adds that the weights are a feature encoder's (timm 1.0's such tags all are)."""
    height, width = (int(v) for v in config["input_size"][-2:])
    crop_pct = float(config.get("crop_pct") or 0.875)
    mode = config.get("crop_mode") or "center"
    encoder = ("; its pretrained weights are a feature encoder's (num_classes 0 in its configuration), with no "
               "classifier head to audit" if num_classes == 0 else "")
    if height != width:
        raise SpecError(f"{source} asks for a {height} x {width} input (height x width, not square), and the suite feeds "
                        f"square images only{encoder}: audit another model")
    if mode not in TIMM_CROP_MODES:
        what = ("the longest side scaled to floor(size / crop_pct), then padded with its mean colour to size x size"
                if mode == "border" else "a geometry the suite does not know")
        raise SpecError(f"{source} asks for crop_mode {mode!r} ({what}), an input the suite does not make "
                        f"(it makes crop_mode {' and '.join(map(repr, TIMM_CROP_MODES))}){encoder}: audit another model")
    return Preprocessing(
        crop_size=height,
        resize_size=math.floor(height / crop_pct),
        interpolation=str(config.get("interpolation", "bicubic")),
        mean=tuple(float(v) for v in config["mean"]),
        std=tuple(float(v) for v in config["std"]),
        source=f"{source}, crop_mode {mode} and crop_pct {crop_pct:g}: {TIMM_CROP_MODES[mode]}"
               + (", padded with black where the image is smaller" if crop_pct > 1 else ""),
        keep_aspect=mode == "center",
        crop_pct=crop_pct,
    )


def luminance(images: torch.Tensor, weights: tuple[float, float, float] = LUMA_BT601) -> torch.Tensor:
    """RGB ``(N, 3, H, W)`` to float luminance ``(N, 1, H, W)`` on the same scale (``sum_i weights_i * rgb_i``; by
    default ITU-R BT.601's, what a 1-channel model is fed). The suite's one luminance: the conversion audit's gray
    images and :func:`visionaudit.families.conversion.gray_to_rgb`'s default weights are these too."""
    import torch

    lam = torch.tensor(weights, dtype=images.dtype if images.is_floating_point() else torch.float32,
                       device=images.device).view(1, 3, 1, 1)
    return (images * lam).sum(dim=1, keepdim=True)
