"""Fixtures of the hub-model tests (tests/models/test_hub_*.py): a tiny ViT saved as a Hugging Face folder, and an
empty Hugging Face cache of the test's own with downloads off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub_models import tiny_vit


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> Path:
    return tiny_vit(tmp_path_factory.mktemp("hf") / "tiny-vit")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache of the test's own, and downloads off (huggingface_hub's own switch)."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home / "hub"
