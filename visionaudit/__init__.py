"""visionaudit: audits for image-classification models, usable from a notebook or through pytest.

>>> from visionaudit import load_model, labelled_images, load_images, predict_logits
>>> model = load_model("efficientnet_lite0")
"""

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

# ``visionaudit.families`` is the families' package (import its modules as visionaudit.families.NAME); the
# registry's list is visionaudit.families.families().
from visionaudit.families.registry import Family, get_family, register_family
from visionaudit.models.inference import clean_logits, compare_logits, predict_logits
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
from visionaudit.version import (
    __version__ as __version__,  # one home: visionaudit/version.py
)

__all__ = [
    "AuditConfig", "AuditRecord", "CheckpointError", "ConfigError", "DataError", "Deferred", "DeviceError", "DEFAULT_MODEL",
    "Family", "Geometry", "ImageSet", "LoadedModel", "ModelOutputError", "ModelSpec", "Preprocessing", "SpecError",
    "Thresholds", "VisionAuditError", "canonical_spec", "category_folders", "clean_logits", "compare_logits",
    "cue_conflict", "data_root", "get_family", "imagenette", "labelled_images", "load_config",
    "load_images", "load_model", "parse_spec", "predict_logits", "register_family", "resolve_device",
    "threshold_fields", "top1_accuracy", "topk_accuracy",
]
