"""``import visionaudit``: its public names and subpackages on first use, without importing torch up front."""

from __future__ import annotations

import subprocess
import sys

import pytest

import visionaudit


def test_every_public_name_and_subpackage_resolves():
    for name in visionaudit.__all__:
        assert getattr(visionaudit, name) is not None, name
    assert visionaudit.families.registry.families  # the subpackages, as attributes, as before the lazy imports
    assert visionaudit.models.loading.load_model is visionaudit.load_model
    assert visionaudit.data.image_sets.ImageSet is visionaudit.ImageSet
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        visionaudit.nonexistent  # noqa: B018


def test_importing_the_package_imports_no_torch():
    code = "import sys, visionaudit; print('torch' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
