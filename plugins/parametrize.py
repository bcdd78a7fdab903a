"""Every test that asks for ``model`` runs once per configured model spec."""

from __future__ import annotations

import pytest

from .settings import get_settings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model" in metafunc.fixturenames:
        models = get_settings(metafunc.config).models
        # Session scope: pytest groups a model's tests together and loads it once per process.
        metafunc.parametrize("model", models, indirect=True, scope="session", ids=list(models))
