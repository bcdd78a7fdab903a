"""Settings: command line over audit.toml's [run] over built-in defaults; validated once at configure."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from visionaudit.config import CONFIG_FILE, AuditConfig, load_config
from visionaudit.errors import VisionAuditError
from visionaudit.models import DEFAULT_MODEL, parse_spec

SETTINGS_KEY = pytest.StashKey["Settings"]()


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]
    arch: str | None
    device: str
    data: str | None
    images: str
    samples: int | None
    seed: int
    batch_size: int | None
    config: AuditConfig


def worker_index() -> int | None:
    """This process's pytest-xdist worker number (gw3 -> 3), or None outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def worker_count() -> int:
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)


def get_settings(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS_KEY]


def _resolve(config: pytest.Config) -> Settings:
    path = config.getoption("audit_config")
    if path is None and (config.rootpath / CONFIG_FILE).is_file():
        path = config.rootpath / CONFIG_FILE
    audit_config = load_config(path)
    run = audit_config.run
    models = tuple(config.getoption("model") or run.get("models") or (DEFAULT_MODEL,))
    arch = config.getoption("arch")
    for spec in models:
        parse_spec(spec, arch)  # a typo fails the run at once, not per test
    samples = config.getoption("audit_samples", None)
    samples = samples if samples is not None else run.get("samples")
    if samples is not None and samples <= 0:
        raise pytest.UsageError(f"--audit-samples must be a positive number of images, got {samples}")
    return Settings(
        models=models,
        arch=arch,
        device=config.getoption("audit_device") or run.get("device") or "auto",
        data=config.getoption("audit_data") or run.get("data"),
        images=config.getoption("audit_images") or run.get("images") or "imagenet-sample",
        samples=samples,
        seed=config.getoption("audit_seed") if config.getoption("audit_seed") is not None else run.get("seed", 0),
        batch_size=config.getoption("audit_batch_size") or run.get("batch_size"),
        config=audit_config,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[SETTINGS_KEY] = _resolve(config)
    except VisionAuditError as e:
        raise pytest.UsageError(str(e)) from None
    config.addinivalue_line("markers", "audit(name): the audit family a test belongs to")
