"""The suite's version: one home, importable without the package's other modules (logit-cache keys, reports)."""

__version__ = "0.1.0"
