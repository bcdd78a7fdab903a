"""slow(data=False) (tests/conftest.py): an integration run the quick loop leaves to the full run, which runs it as the
quick loop ran it: without the real data, on an empty user cache of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.mark.slow(data=False)
def test_a_slow_test_without_data_runs_as_a_quick_one():
    assert "VISIONAUDIT_DATA" not in os.environ  # set in the full run (CI), for the slow tests that read the data
    cache = Path(os.environ["VISIONAUDIT_CACHE"])
    assert cache.is_dir() and not any(cache.iterdir())

