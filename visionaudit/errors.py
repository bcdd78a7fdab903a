"""Errors the suite raises on bad input.

Each message names the problem and the fix; callers show it as is, without a traceback.
"""


class VisionAuditError(Exception):
    """Base class: bad input that a user can fix."""


class SpecError(VisionAuditError):
    """A model spec that cannot be parsed or resolved."""


class CheckpointError(VisionAuditError):
    """A checkpoint that is missing, unsafe to load, corrupt or does not fit the architecture."""


class DataError(VisionAuditError):
    """A data directory or image that is missing, unreadable or empty."""


class ConfigError(VisionAuditError):
    """An audit.toml with unknown keys or wrong types."""


class DeviceError(VisionAuditError):
    """A device that was asked for and is not there."""


class ModelOutputError(VisionAuditError):
    """A model whose outputs cannot be audited (NaN, wrong shape, wrong class space)."""
