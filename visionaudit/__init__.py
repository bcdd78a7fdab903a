"""visionaudit: audits for image-classification models, usable from a notebook or through pytest.

>>> from visionaudit import load_model, labelled_images, load_images, predict_logits
>>> model = load_model("efficientnet_lite0")
"""

from .config import AuditConfig, Thresholds, load_config
from .datasets import ImageSet, category_folders, cue_conflict, data_root, imagenette, labelled_images, load_images
from .devices import resolve_device
from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DeviceError,
    ModelOutputError,
    SpecError,
    VisionAuditError,
)
from .inference import clean_logits, predict_logits, top1_accuracy
from .models import DEFAULT_MODEL, LoadedModel, ModelSpec, load_model, parse_spec
from .preprocessing import Geometry, Preprocessing
from .recording import AuditRecord

__version__ = "0.1.0"

__all__ = [
    "AuditConfig", "AuditRecord", "CheckpointError", "ConfigError", "DataError", "DeviceError", "DEFAULT_MODEL",
    "Geometry", "ImageSet", "LoadedModel", "ModelOutputError", "ModelSpec", "Preprocessing", "SpecError",
    "Thresholds", "VisionAuditError", "category_folders", "clean_logits", "cue_conflict", "data_root", "imagenette",
    "labelled_images", "load_config", "load_images", "load_model", "parse_spec", "predict_logits",
    "resolve_device", "top1_accuracy",
]
