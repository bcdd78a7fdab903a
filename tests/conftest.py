"""Fixtures for the suite's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.once import audit_once, logit_cache_dir

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


# The quick loop (pytest tests -m "not slow") runs on a fresh clone without ../shared/data: a test that
# reads the data or starts the real audits is marked slow, and the two hooks below keep that true.
DATA_ENV = "VISIONAUDIT_DATA"
CACHE_ENV = "VISIONAUDIT_CACHE"
LOGIT_CACHE_ENV = "VISIONAUDIT_LOGIT_CACHE"  # visionaudit.models.logit_cache.CACHE_ENV; also tests/once.py


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that asks for the real data (the shared_data fixture, directly or through another fixture)
    without the slow mark fails before it reads anything."""
    if "shared_data" in getattr(item, "fixturenames", ()) and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} reads the real data (shared_data) but is not marked slow: add @pytest.mark.slow "
                    "(or pytestmark = pytest.mark.slow) so that pytest -m 'not slow' runs without the data", pytrace=False)


@pytest.fixture(autouse=True)
def _no_data_outside_slow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """Outside slow tests $VISIONAUDIT_DATA is unset and the user cache is an empty folder of the test's own
    (subprocesses included), so that a quick test cannot read the real data, nor a developer's filled
    cache, by accident, and runs as it would on a fresh clone."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.delenv(DATA_ENV, raising=False)
        monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("user-cache")))
    elif getattr(request.module, "SHARE_LOGIT_CACHE", True) and not os.environ.get(LOGIT_CACHE_ENV):
        # The slow tests' real-model runs repeat the same clean passes (lite0 on the cue-conflict stimuli, on
        # imagenet-sample): one logit cache for the session computes each once. Its key covers the weights, the
        # images and the preprocessing, so a reused entry is the same logits (tests/models/test_logit_cache.py).
        # One for the whole session, shared by the xdist workers (tests/once.py).
        monkeypatch.setenv(LOGIT_CACHE_ENV, str(logit_cache_dir(tmp_path_factory)))


@pytest.fixture(autouse=True)
def _no_hypothesis_plugin_in_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit runs the tests start (pytester and subprocess, controller and xdist workers) use no hypothesis,
    whose pytest plugin costs every such process about a second of imports (more on a loaded machine)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", (os.environ.get("PYTEST_ADDOPTS", "") + " -p no:hypothesispytest").strip())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (CI sets VISIONAUDIT_DATA to ../shared/data); slow tests only."""
    path = Path(os.environ.get(DATA_ENV) or ROOT.parent / "shared" / "data")
    if not (path / "imagenet-sample").is_dir():
        pytest.fail(f"the real data is not at {path}: set VISIONAUDIT_DATA to ../shared/data", pytrace=False)
    return path


@pytest.fixture(scope="session")
def lite0_shape_bias_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """lite0's shape-bias audit on all the cue-conflict stimuli (not the shape-only ones), run once per session and
    shared by the xdist workers (tests/once.py): several slow tests compare against it. Returns (process, report,
    report path)."""
    return audit_once(tmp_path_factory, shared_data, "lite0-shape-bias", "-k", "test_shape_bias and not shape_only",
                      model="efficientnet_lite0")


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


@pytest.fixture
def browser() -> None:
    """Skips without a browser, except in CI (.ci/run sets VISIONAUDIT_REQUIRE_BROWSER), where that fails."""
    from tests.browser import chromedriver

    if chromedriver() is None:
        message = "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver (.ci/run does)"
        if os.environ.get("VISIONAUDIT_REQUIRE_BROWSER"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
