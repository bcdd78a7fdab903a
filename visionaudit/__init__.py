"""visionaudit: audits for image-classification models, usable from a notebook or through pytest.

>>> from visionaudit import load_model, labelled_images, load_images, predict_logits
>>> model = load_model("efficientnet_lite0")
"""

from typing import TYPE_CHECKING

from visionaudit.version import (
    __version__ as __version__,  # one home: visionaudit/version.py
)

# The public names, imported on first use (PEP 562): ``import visionaudit`` (every pytest run loads the plugins,
# which import it) must not import torch, torchvision and scipy before anything needs them; a run that collects
# nothing, a ``visionaudit report`` or an xdist controller's start-up would pay seconds for them.
_PUBLIC = {
    "visionaudit.config": ("AuditConfig", "Thresholds", "load_config"),
    "visionaudit.data.image_sets": ("ImageSet", "category_folders", "cue_conflict", "data_root", "imagenette",
                                    "labelled_images", "load_images"),
    "visionaudit.devices": ("resolve_device",),
    "visionaudit.errors": ("CheckpointError", "ConfigError", "DataError", "DeviceError", "ModelOutputError", "SpecError",
                           "VisionAuditError"),
    "visionaudit.families.assessment": ("Deferred",),
    "visionaudit.families.records": ("AuditRecord",),
    # ``visionaudit.families`` is the families' package (import its modules as visionaudit.families.NAME); the
    # registry's list is visionaudit.families.families().
    "visionaudit.families.registry": ("CountsLabelled", "Family", "get_family", "register_family"),
    "visionaudit.models.inference": ("clean_logits", "compare_logits", "predict_logits"),
    "visionaudit.models.loading": ("DEFAULT_MODEL", "LoadedModel", "ModelSpec", "canonical_spec", "load_model", "parse_spec"),
    "visionaudit.models.topk": ("top1_accuracy", "topk_accuracy"),
    "visionaudit.preprocessing": ("Geometry", "Preprocessing"),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
_MODULES = {"threshold_fields": "visionaudit.families.thresholds"}  # a module itself, under this name


def __getattr__(name: str):
    import importlib

    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    else:
        try:  # a submodule (visionaudit.families, .models, ...), as the eager imports used to make attributes of
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'visionaudit' has no attribute {name!r}") from None
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from visionaudit.config import AuditConfig, Thresholds, load_config
    from visionaudit.data.image_sets import (
        ImageSet,
        category_folders,
        cue_conflict,
        data_root,
        imagenette,
        labelled_images,
        load_images,
    )
    from visionaudit.devices import resolve_device
    from visionaudit.errors import (
        CheckpointError,
        ConfigError,
        DataError,
        DeviceError,
        ModelOutputError,
        SpecError,
        VisionAuditError,
    )
    from visionaudit.families import thresholds as threshold_fields
    from visionaudit.families.assessment import Deferred
    from visionaudit.families.records import AuditRecord
    from visionaudit.families.registry import (
        CountsLabelled,
        Family,
        get_family,
        register_family,
    )
    from visionaudit.models.inference import (
        clean_logits,
        compare_logits,
        predict_logits,
    )
    from visionaudit.models.loading import (
        DEFAULT_MODEL,
        LoadedModel,
        ModelSpec,
        canonical_spec,
        load_model,
        parse_spec,
    )
    from visionaudit.models.topk import top1_accuracy, topk_accuracy
    from visionaudit.preprocessing import Geometry, Preprocessing

__all__ = [
    "AuditConfig", "AuditRecord", "CheckpointError", "ConfigError", "CountsLabelled", "DataError", "Deferred", "DeviceError",
    "DEFAULT_MODEL",
    "Family", "Geometry", "ImageSet", "LoadedModel", "ModelOutputError", "ModelSpec", "Preprocessing", "SpecError",
    "Thresholds", "VisionAuditError", "canonical_spec", "category_folders", "clean_logits", "compare_logits",
    "cue_conflict", "data_root", "get_family", "imagenette", "labelled_images", "load_config",
    "load_images", "load_model", "parse_spec", "predict_logits", "register_family", "resolve_device",
    "threshold_fields", "top1_accuracy", "topk_accuracy",
]
