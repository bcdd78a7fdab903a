"""Fixtures for the suite's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (CI sets VISIONAUDIT_DATA to ../shared/data)."""
    path = Path(os.environ.get("VISIONAUDIT_DATA") or ROOT.parent / "shared" / "data")
    if not (path / "imagenet-sample").is_dir():
        pytest.fail(f"the real data is not at {path}: set VISIONAUDIT_DATA to ../shared/data", pytrace=False)
    return path


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory wired to the suite's plugins and fixtures, as the root conftest wires them."""
    pytester.makeconftest(
        f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
pytest_plugins = {_root_plugins()!r}
"""
    )
    pytester.makeini("[pytest]\nmarkers =\n    audit(name): audit family\n")
    return pytester


def _root_plugins() -> list[str]:
    namespace: dict = {}
    exec((ROOT / "conftest.py").read_text(), namespace)
    return list(namespace["pytest_plugins"])
