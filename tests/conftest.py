"""Fixtures for the suite's own tests."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from tests import warm_runs
from tests.audit_runs import (
    SUITE_INI,
    suite_conftest,
    with_unused_plugins_off,
)
from tests.once import (
    audit_once,
    built_once,
    load_process,
    logit_cache_dir,
    run_audit,
    save_process,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


# The quick loop (pytest tests -m "not slow") runs on a fresh clone without ../shared/data: a test that
# reads the data or starts the real audits is marked slow, and the two hooks below keep that true. An integration run
# of a few seconds (a test project's pytest runs, an export) that needs no data is marked slow(data=False): the full
# run keeps it and runs it as the quick loop did, without the data (with_real_data).
DATA_ENV = "VISIONAUDIT_DATA"
CACHE_ENV = "VISIONAUDIT_CACHE"
LOGIT_CACHE_ENV = "VISIONAUDIT_LOGIT_CACHE"  # visionaudit.models.logit_cache.CACHE_ENV; also tests/once.py
PYCACHE_ENV = "PYTHONPYCACHEPREFIX"


def pytest_configure(config: pytest.Config) -> None:
    """The runs the tests start (several hundred Python processes) cache their bytecode for the session, outside the
    checkout: where PYTHONDONTWRITEBYTECODE is set (as on this project's machines) each of them compiled the suite and
    redid pytest's assertion rewriting, about half a CPU-second per process. Elsewhere the checkout's and the venv's
    own bytecode serve (a new prefix would recompile torch once per session). The xdist workers, started after this,
    inherit it; the controller removes the folder at the end. A cached module counts as current by its source's size
    and whole-second mtime: a test that rewrites a module in place must change its size or wait a second."""
    config.addinivalue_line("markers", f"{warm_runs.MARKER}: the pytest runs this test starts are new processes, not "
                            "children of the fork server (tests/warm_runs.py)")
    if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get(PYCACHE_ENV) or not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    folder = tempfile.mkdtemp(prefix="visionaudit-tests-pycache-")
    before = {name: os.environ.get(name) for name in (PYCACHE_ENV, "PYTHONDONTWRITEBYTECODE")}

    def restore() -> None:
        for name, value in before.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        shutil.rmtree(folder, ignore_errors=True)

    config.add_cleanup(restore)
    os.environ[PYCACHE_ENV] = folder
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# The longest tests, and the tests of the session runs their modules build once, go out first: xdist's load scheduling
# hands tests out in collection order, and these modules sort after the folders, so a five-minute test (the main job)
# started near the end and left the other worker idle for minutes. Measured with the tests' CI durations, the simulated
# schedule ends within a few seconds of the ideal (half the total) this way, 6 % later without it.
FIRST = ("tests/test_main_job.py", "tests/test_any_classifier.py", "tests/test_sharding_corruption.py",
         "tests/test_sharding.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """FIRST's tests first, in FIRST's order; the rest in collection order (a stable sort)."""
    rank = {path: i for i, path in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(FIRST)))


def with_real_data(node: pytest.Item) -> bool:
    """Marked slow, and not slow(data=False): the test may read the real data, and its runs share the logit cache."""
    mark = node.get_closest_marker("slow")
    return mark is not None and mark.kwargs.get("data", True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that asks for the real data (the shared_data fixture, directly or through another fixture)
    without the slow mark (or with slow(data=False)) fails before it reads anything."""
    if "shared_data" in getattr(item, "fixturenames", ()) and not with_real_data(item):
        pytest.fail(f"{item.nodeid} reads the real data (shared_data) but is not marked slow (or is slow(data=False)): "
                    "add @pytest.mark.slow (or pytestmark = pytest.mark.slow) so that pytest -m 'not slow' runs without the data",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _no_data_outside_slow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """Outside slow tests (and in slow(data=False) ones) $VISIONAUDIT_DATA is unset and the user cache is an empty
    folder of the test's own (subprocesses included), so that a quick test cannot read the real data, nor a developer's filled
    cache, by accident, and runs as it would on a fresh clone."""
    if not with_real_data(request.node):
        monkeypatch.delenv(DATA_ENV, raising=False)
        monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("user-cache")))
    elif getattr(request.module, "SHARE_LOGIT_CACHE", True) and not os.environ.get(LOGIT_CACHE_ENV):
        # The slow tests' real-model runs repeat the same clean passes (lite0 on the cue-conflict stimuli, on
        # imagenet-sample): one logit cache for the session computes each once. Its key covers the weights, the
        # images and the preprocessing, so a reused entry is the same logits (tests/models/test_logit_cache.py).
        # One for the whole session, shared by the xdist workers (tests/once.py).
        monkeypatch.setenv(LOGIT_CACHE_ENV, str(logit_cache_dir(request)))


@pytest.fixture(autouse=True)
def _a_core_share_for_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit runs the tests start use this process's share of the cores (one each of two xdist workers, set by
    plugins/distribution.py), not all of them: a run of two torch threads beside the other worker's test measured
    2.1x slower per image than one of one thread (lite0 on this 2-core machine), its threads waiting on each other
    for a core. An audit run's own xdist workers take their share of it (visionaudit.devices.cpu_thread_share)."""
    if not os.environ.get("OMP_NUM_THREADS"):
        monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _no_unused_plugins_in_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit runs the tests start (pytester and subprocess, controller and xdist workers) load none of the
    installed pytest plugins that no audit uses (tests.audit_runs.UNUSED_PLUGINS). pytester unsets PYTEST_ADDOPTS as
    it starts (after the autouse fixtures): it is set up first here, so that its runs get the variable too."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
    monkeypatch.setenv("PYTEST_ADDOPTS", with_unused_plugins_off(os.environ.get("PYTEST_ADDOPTS", "")))


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_setup")
def pytest_runtest_setup_warm_runs(item: pytest.Item) -> None:
    """The runs of a test marked real_process are new processes (tests/warm_runs.py): decided before any of its
    fixtures is set up, so that the runs its module- or session-scoped fixtures start are new processes too."""
    warm_runs.routing = item.get_closest_marker(warm_runs.MARKER) is None


@pytest.hookimpl(trylast=True, specname="pytest_runtest_teardown")
def pytest_runtest_teardown_warm_runs(item: pytest.Item) -> None:
    """After the test's fixtures were torn down (a scoped fixture's teardown may run its own runs)."""
    warm_runs.routing = True


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (CI sets VISIONAUDIT_DATA to ../shared/data); slow tests only."""
    path = Path(os.environ.get(DATA_ENV) or ROOT.parent / "shared" / "data")
    if not (path / "imagenet-sample").is_dir():
        pytest.fail(f"the real data is not at {path}: set VISIONAUDIT_DATA to ../shared/data", pytrace=False)
    return path


@pytest.fixture(scope="session")
def lite0_shape_bias_run(shared_data: Path, request: pytest.FixtureRequest):
    """lite0's shape-bias audit on all the cue-conflict stimuli (not the shape-only ones), run once per session and
    shared by the xdist workers (tests/once.py): several slow tests compare against it. Returns (process, report,
    report path)."""
    return audit_once(request, shared_data, "lite0-shape-bias", "-k", "test_shape_bias and not shape_only",
                      model="efficientnet_lite0")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory wired to the suite's plugins and fixtures, as the root conftest wires them."""
    pytester.makeconftest(suite_conftest())
    pytester.makeini(SUITE_INI)
    warm_runs.route_pytester(pytester)
    return pytester


@pytest.fixture
def browser() -> None:
    """Skips without a browser, except in CI (.ci/run sets VISIONAUDIT_REQUIRE_BROWSER), where that fails."""
    from tests.browser import chromedriver

    if chromedriver() is None:
        message = "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver (.ci/run does)"
        if os.environ.get("VISIONAUDIT_REQUIRE_BROWSER"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


LITE0_GATE_CONFIG = """
[audits.corruption]
corruptions = ["gaussian_noise", "fog"]
severities = [1, 3]
min_images = 10

[audits.robustness]
min_images = 10

[audits.accuracy]
min_images = 10
"""
LITE0_GATE_TESTS = "test_clean_top1 or (test_transform and rotation) or test_corruption or test_mce or baseline"
LITE0_IMAGENET_NORM = "efficientnet_lite0?mean=0.485,0.456,0.406&std=0.229,0.224,0.225"  # lite0 expects 0.498/0.502


@pytest.fixture(scope="session")
def lite0_gate_runs(shared_data: Path, request: pytest.FixtureRequest):
    """lite0's report on 100 images (clean top-1, rotation, gaussian noise and fog at severities 1 and 3, the mCE),
    then lite0 fed ImageNet's mean/std instead of its own 127/128, measured AND gated against it in one run: issue
    26's Show, read by the corruption gate's tests and the real page's, made once per session (tests/once.py).
    Returns (folder, baseline report, candidate report, candidate's stdout); the reports are lite0.json and
    imagenet-norm.json in the folder."""
    def build(folder: Path) -> None:
        (folder / "audit.toml").write_text(LITE0_GATE_CONFIG)
        args = ("-k", LITE0_GATE_TESTS, "--audit-samples", "100", f"--audit-config={folder / 'audit.toml'}")
        base = run_audit(request, folder, shared_data, "lite0", *args, model="efficientnet_lite0")
        assert base.returncode == 0 and (folder / "lite0.json").exists(), base.stdout[-3000:] + base.stderr[-3000:]
        save_process(folder / "imagenet-norm.process.json",
                     run_audit(request, folder, shared_data, "imagenet-norm", *args,
                               f"--audit-baseline={folder / 'lite0.json'}", "--audit-baseline-as", "efficientnet_lite0",
                               model=LITE0_IMAGENET_NORM))

    folder = built_once(request, "lite0-gate", build)
    proc = load_process(folder / "imagenet-norm.process.json")
    cand = folder / "imagenet-norm.json"
    assert cand.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder, json.loads((folder / "lite0.json").read_text()), json.loads(cand.read_text()), proc.stdout
