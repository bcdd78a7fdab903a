"""A run that needs data it does not hold: fetched into the cache on first use (from a loopback mirror), or one clear
error naming the fixes when it cannot be (offline, unreachable); a dry run fetches nothing; a data root the user named
is never written to."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.data.loopback_mirror import (
    OBSERVERS_FOLDER,
    UPSTREAM,
    RangeHandler,
    closed_port,
    serving,
    two_of_everything,
)
from tests.terminal_text import said_once
from visionaudit.data.fetch import (
    BASE_URL_ENV,
    IMAGENET_SAMPLE,
    LICENCE,
    LOCK_FILE,
    MANIFEST_ENV,
    OBSERVERS,
    STIMULI,
)


def test_a_run_that_cannot_reach_the_server_names_both_fixes_once(tmp_path, monkeypatch):
    from visionaudit.data.provision import provide

    cache = tmp_path / "cache"
    monkeypatch.delenv("VISIONAUDIT_DATA", raising=False)
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{closed_port()}")
    problems = provide(None, "imagenet-sample", {"cue-conflict", "edges", "labelled"}, offline=False)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith("cannot reach the download server 127.0.0.1:")
    assert "cue-conflict, edges, imagenet-sample could not be fetched (nothing else was tried)" in problem
    assert "Run on a machine with network access" in problem and "point --audit-data" in problem
    assert "could not be fetched into" not in problem and "of 1000" not in problem


def test_a_dry_run_looks_for_the_data_and_fetches_nothing(tmp_path, monkeypatch):
    """hunt34 (--collect-only): ``provide(fetch=False)`` names what a run would stop on, by existence alone; what the
    run would fetch into the user cache is no problem yet, and nothing is downloaded (the server is unreachable: a
    download would have been a problem)."""
    from visionaudit.data.provision import provide

    cache = tmp_path / "cache"
    monkeypatch.delenv("VISIONAUDIT_DATA", raising=False)
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{closed_port()}")
    needs = {"cue-conflict", "labelled"}
    assert provide(None, "imagenet-sample", needs, offline=False, fetch=False) == []
    assert not any(cache.rglob("*.png"))
    offline = provide(None, "imagenet-sample", needs, offline=True, fetch=False)
    assert len(offline) == 2 and all("downloads are off" in p for p in offline), offline
    root = tmp_path / "root"
    assert provide(str(root), "imagenet-sample", needs, offline=False, fetch=False) == [
        f"data directory {root} does not exist. Point --audit-data (--data for python -m visionaudit commands) / "
        "VISIONAUDIT_DATA at it, or fetch the data into it: "
        f"python -m visionaudit fetch --all --dest {root}"]
    (root / "cue-conflict").mkdir(parents=True)
    problems = provide(str(root), str(tmp_path / "mine"), needs, offline=False, fetch=False)
    assert len(problems) == 1 and problems[0].startswith(f"labelled images not found at {tmp_path / 'mine'}: "
                                                         "point --audit-images")


RUN_FILE = """
import os
from pathlib import Path

import pytest

def test_conflict(cue_conflict_images):
    assert len(cue_conflict_images) == 2
    assert cue_conflict_images.root == Path(os.environ["VISIONAUDIT_CACHE"]) / "cue-conflict"

def test_labelled(labelled_images):
    assert labelled_images.labels == (0, 1)  # tench, goldfish

@pytest.mark.parametrize("stimuli", ["edges", "filled-silhouettes"])
def test_shape_only(shape_only_images, stimuli):
    assert len(shape_only_images(stimuli)) == 2
"""


@pytest.fixture
def first_use(suite, tmp_path, shared_data, monkeypatch):
    """A pytest run with no data root: an empty VISIONAUDIT_CACHE, a mirror named by the environment."""
    root, manifest = two_of_everything(tmp_path, shared_data)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("VISIONAUDIT_DATA", raising=False)
    monkeypatch.delenv("VISIONAUDIT_OFFLINE", raising=False)
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(MANIFEST_ENV, str(manifest))
    suite.makepyfile(test_run=RUN_FILE)
    with serving(root) as url:
        monkeypatch.setenv(BASE_URL_ENV, url)
        yield suite, cache, url


@pytest.mark.slow
def test_a_run_without_a_data_root_fetches_into_the_cache_once_then_runs(first_use):
    suite, cache, _ = first_use
    result = suite.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=4)
    # Once, by the controller: each of the 8 files asked for once although two workers collected.
    assert len(RangeHandler.requests) == 8 and len(set(RangeHandler.requests)) == 8, RangeHandler.requests
    assert said_once(output, LICENCE) and said_once(output, "ImageNet terms of access apply"), output
    assert f"fetching cue-conflict, edges, filled-silhouettes, imagenet-sample into the data cache {cache}" in output
    assert "imagenet-sample: [########################] 2/2 files" in output
    # no .partial left (the lock file that lets two runners share a cache stays)
    assert sorted(p.name for p in cache.iterdir() if p.name != LOCK_FILE) == [*STIMULI, IMAGENET_SAMPLE]

    again = suite.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    again.assert_outcomes(passed=4)
    assert len(RangeHandler.requests) == 8 and "fetching" not in again.stdout.str()  # there now: nothing asked for


@pytest.mark.slow
@pytest.mark.parametrize("how, workers", [("option", []), ("variable", ["-n", "2"])])
def test_offline_without_the_data_is_one_clear_error(first_use, monkeypatch, how, workers):
    suite, cache, url = first_use
    if how == "variable":
        monkeypatch.setenv("VISIONAUDIT_OFFLINE", "1")
    result = suite.runpytest_subprocess(*workers, "-p", "no:cacheprovider", *(["--audit-offline"] if how == "option" else []))
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR and RangeHandler.requests == [] and not cache.exists()
    for name, folder in (("cue-conflict", f"/{UPSTREAM}"), ("imagenet-sample", "")):
        message = (f"{name} is not in the data cache {cache} and downloads are off (--audit-offline / VISIONAUDIT_OFFLINE=1). "
                   f"On a machine with internet run: python -m visionaudit fetch {name} --dest {cache}; or download "
                   f"{url}{folder}/<file> for each file listed in visionaudit/resources/")
        assert said_once(output, message), output
    assert "Traceback" not in output and "passed" not in output


@pytest.mark.slow
def test_a_run_that_reads_the_observers_fetches_them_on_first_use_and_names_them_offline(first_use, monkeypatch):
    """The observers' decisions are a data set like the stimuli, but optional for the gate: offline, the run goes
    on, naming them once, and the fixture says why they are absent; online, the controller fetches them once into
    the cache, verified, and the fixture reads them."""
    suite, cache, url = first_use
    suite.makepyfile(test_run="import os\n"
                              "def test_observers(human_observers):\n"
                              "    if os.environ.get('EXPECT_ABSENT'):\n"
                              "        assert 'python -m visionaudit fetch texture-vs-shape-raw' in human_observers['absent']\n"
                              "        return\n"
                              "    assert sorted(human_observers['subjects']) == ['subject-02', 'subject-03']\n"
                              "    assert len(human_observers['images']) == 1280 and human_observers['missing'] == []\n")
    monkeypatch.setenv("EXPECT_ABSENT", "1")
    offline = suite.runpytest_subprocess("-p", "no:cacheprovider", "--audit-offline")
    output = offline.stdout.str() + offline.stderr.str()
    offline.assert_outcomes(passed=1)
    assert RangeHandler.requests == []
    assert said_once(output, f"{OBSERVERS} is not in the data cache {cache} and downloads are off"), output
    assert (f"{url}/{OBSERVERS_FOLDER}/<file> for each file listed in "
            "visionaudit/resources/texture_vs_shape_raw_manifest.json") in output
    monkeypatch.delenv("EXPECT_ABSENT")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    assert f"fetching {OBSERVERS} into the data cache {cache}" in output and len(RangeHandler.requests) == 2
    assert said_once(output, "Human observers' trial-by-trial decisions on the cue-conflict stimuli"), output


def test_a_data_root_the_user_named_is_never_written_to(tmp_path, monkeypatch):
    from visionaudit.data.provision import provide

    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9")  # nothing listens: a download would fail loudly
    monkeypatch.setenv("VISIONAUDIT_DATA", str(tmp_path))
    assert provide(None, "imagenet-sample", {"cue-conflict", "labelled"}, offline=False) == [
        f"cue-conflict not found at {tmp_path / 'cue-conflict'}: python -m visionaudit fetch cue-conflict --dest {tmp_path}",
        f"labelled images not found at {tmp_path / 'imagenet-sample'}: python -m visionaudit fetch imagenet-sample "
        f"--dest {tmp_path}"]
    assert not list(tmp_path.iterdir())


@pytest.mark.slow(data=False)
def test_imagenette_offline_is_one_clear_error(suite, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    suite.makepyfile(test_run="def test_labelled(labelled_images):\n    pass\n")
    result = suite.runpytest_subprocess(f"--audit-data={tmp_path}", "--audit-images=imagenette", "--audit-offline",
                                        "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = (f"Imagenette not found under {tmp_path / 'imagenette'}: downloads are off (--audit-offline / "
               "VISIONAUDIT_OFFLINE=1). "
               "Run once on a machine with internet, or download https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz "
               f"and unpack it into {tmp_path / 'imagenette'}/")
    assert said_once(output, message), output
    assert "Traceback" not in output and len(output.splitlines()) < 15, output
