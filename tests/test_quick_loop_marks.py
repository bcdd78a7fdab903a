"""slow(data=False) (tests/conftest.py): an integration run the quick loop leaves to the full run, which runs it as the
quick loop ran it: without the real data, on an empty user cache of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import with_real_data


@pytest.mark.slow(data=False)
def test_a_slow_test_without_data_runs_as_a_quick_one():
    assert "VISIONAUDIT_DATA" not in os.environ  # set in the full run (CI), for the slow tests that read the data
    cache = Path(os.environ["VISIONAUDIT_CACHE"])
    assert cache.is_dir() and not any(cache.iterdir())



def test_only_a_plain_slow_mark_may_read_the_real_data(pytester: pytest.Pytester):
    """What tests/conftest.py's two hooks decide by: the data, and the session's logit cache, for @pytest.mark.slow (on
    the test or its module) only; a quick test and a slow(data=False) one get neither (and fail asking for the data)."""
    pytester.makeini("[pytest]\nmarkers =\n    slow: the suite's mark\n")
    items = pytester.getitems("""
import pytest

def test_quick(): pass

@pytest.mark.slow
def test_slow(): pass

@pytest.mark.slow(data=False)
def test_slow_without_data(): pass

@pytest.mark.parametrize("x", [1, pytest.param(2, marks=pytest.mark.slow(data=False))])
def test_param(x): pass
""")
    assert {item.name: with_real_data(item) for item in items} == {
        "test_quick": False, "test_slow": True, "test_slow_without_data": False, "test_param[1]": False,
        "test_param[2]": False}
