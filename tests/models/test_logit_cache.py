"""The clean-logit cache on disk (--audit-cache): a hit skips the forward pass; a change of any key
component misses; a stale or corrupt entry is never trusted, said once and replaced; nothing is unpickled."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import visionaudit.version
from visionaudit.data import image_sets as datasets
from visionaudit.models import inference, logit_cache
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Geometry

pytestmark = pytest.mark.slow  # images from the real data, and a run of the real accuracy audit

ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests.tiny_models:tiny?size=32&resize=40"


@pytest.fixture
def cache(tmp_path):
    previous = logit_cache.configure(tmp_path / "cache")
    yield tmp_path / "cache"
    logit_cache.configure(previous)


@pytest.fixture(scope="module")
def sample(shared_data):
    return datasets.labelled_images(shared_data / "imagenet-sample").stratified_subset(12, seed=5)


@pytest.fixture(scope="module")
def images(sample):
    return datasets.load_images(sample, Geometry(40, 32))


def fresh_model(spec: str = SPEC):
    """A new model object: its in-process logits cache is empty, so only the disk can spare a pass."""
    return load_model(spec, "cpu")


def test_a_second_model_object_reads_the_logits_from_disk(cache, sample, images, monkeypatch):
    first = inference.clean_logits(fresh_model(), sample, images, batch_size=4)
    entries = list(cache.glob("clean-*.safetensors"))
    assert len(entries) == 1

    def no_forward(*args, **kwargs):
        raise AssertionError("the clean pass ran although the cache holds it")

    monkeypatch.setattr(inference, "predict_logits", no_forward)
    again = inference.clean_logits(fresh_model(), sample, images, batch_size=4)
    assert torch.equal(again, first)


def test_a_renamed_model_reads_the_logits_of_its_spec(tmp_path, sample):
    """?name= is what people call the model, not what it computes: the same spec under any name, or none, is one
    cache entry (tests/test_named_model_runs.py sees the hit in a run)."""
    stored = logit_cache.entry(tmp_path, fresh_model(SPEC + "&name=release-1"), sample, Geometry(40, 32), 4)
    logits = torch.randn(12, 1000)
    logit_cache.store(stored, logits)
    for spec in (SPEC + "&name=release-2", SPEC):
        renamed = logit_cache.entry(tmp_path, fresh_model(spec), sample, Geometry(40, 32), 4)
        read, problem = logit_cache.load(renamed)
        assert renamed.path == stored.path and problem is None and torch.equal(read, logits), spec


def _variants(tmp_path: Path, sample):
    """Each key component changed on its own: (name, model spec, image set, geometry, batch size, patch)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sample.paths:
        (copy / p.name).write_bytes(p.read_bytes())
        os.utime(copy / p.name, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))
    moved = datasets.labelled_images(copy)
    touched = tmp_path / "touched"
    touched.mkdir()
    for p in sample.paths:
        (touched / p.name).write_bytes(p.read_bytes())
    g = Geometry(40, 32)
    return [
        ("weights", "tests.tiny_models:tiny_other?size=32&resize=40", sample, g, 4, {}),
        ("normalization", SPEC + "&mean=0.5,0.5,0.5&std=0.5,0.5,0.5", sample, g, 4, {}),
        ("image files elsewhere", SPEC, moved, g, 4, {}),
        ("image files rewritten", SPEC, datasets.labelled_images(touched), g, 4, {}),
        ("fewer images", SPEC, sample.select(list(range(11))), g, 4, {}),
        ("geometry", SPEC, sample, Geometry(48, 32), 4, {}),
        ("interpolation", SPEC, sample, Geometry(40, 32, "bicubic"), 4, {}),
        ("batch size", SPEC, sample, g, 5, {}),
        ("device type", SPEC, sample, g, 4, {"device": torch.device("meta")}),
        ("torch version", SPEC, sample, g, 4, {"torch": "9.9.9"}),
        ("suite version", SPEC, sample, g, 4, {"visionaudit": "9.9.9"}),
    ]


def test_every_key_component_misses(tmp_path, sample, monkeypatch):
    model = fresh_model()
    base = logit_cache.entry(tmp_path, model, sample, Geometry(40, 32), 4)
    logit_cache.store(base, torch.randn(12, 1000))
    assert logit_cache.load(base)[0] is not None
    for name, spec, image_set, geometry, batch, patch in _variants(tmp_path, sample):
        other = fresh_model(spec) if spec != SPEC else model
        with monkeypatch.context() as m:
            if "device" in patch:
                other = replace(other, device=patch["device"])
            if "torch" in patch:
                m.setattr(torch, "__version__", patch["torch"])
            if "visionaudit" in patch:
                m.setattr(visionaudit.version, "__version__", patch["visionaudit"])  # its one home
            variant = logit_cache.entry(tmp_path, other, image_set, geometry, batch)
            logits, problem = logit_cache.load(variant)
        assert logits is None, name
        assert variant.path != base.path or problem is not None, name


def test_stale_entry_names_what_changed(tmp_path, sample, monkeypatch):
    model = fresh_model()
    logit_cache.store(logit_cache.entry(tmp_path, model, sample, Geometry(40, 32), 4), torch.randn(12, 1000))
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert logit_cache.load(logit_cache.entry(tmp_path, model, sample, Geometry(40, 32),
                                              4)) == (None, "stale: made with another torch")


def _corrupt(path: Path, how: str) -> None:
    from safetensors.torch import save

    key = json.loads(__import__("safetensors").safe_open(str(path), "pt").metadata()["key"])
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "wrong shape":
        path.write_bytes(save({"logits": torch.zeros(11, 1000)}, metadata={"key": json.dumps(key)}))
    elif how == "wrong dtype":
        path.write_bytes(save({"logits": torch.zeros(12, 1000, dtype=torch.float64)}, metadata={"key": json.dumps(key)}))
    elif how == "NaN":
        bad = torch.zeros(12, 1000)
        bad[3, 7] = float("nan")
        path.write_bytes(save({"logits": bad}, metadata={"key": json.dumps(key)}))
    elif how == "no key":
        path.write_bytes(save({"logits": torch.zeros(12, 1000)}))


@pytest.mark.parametrize("how", ["truncated", "empty", "wrong shape", "wrong dtype", "NaN", "no key"])
def test_corrupt_entry_is_said_once_recomputed_and_replaced(cache, sample, images, caplog, how):
    truth = inference.clean_logits(fresh_model(), sample, images, batch_size=4)
    [path] = cache.glob("clean-*.safetensors")
    _corrupt(path, how)
    with caplog.at_level(logging.WARNING, logger="visionaudit.models.inference"):
        model = fresh_model()
        again = inference.clean_logits(model, sample, images, batch_size=4)
        inference.clean_logits(model, sample, images, batch_size=4)
    assert torch.equal(again, truth)
    said = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(said) == 1 and str(path) in said[0], said
    entry = logit_cache.entry(cache, model, sample, Geometry(40, 32), 4)
    assert entry.path == path and torch.equal(logit_cache.load(entry)[0], truth)  # rewritten whole


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_at_the_entry_path_is_refused_not_loaded(tmp_path, sample):
    model = fresh_model()
    entry = logit_cache.entry(tmp_path, model, sample, Geometry(40, 32), 4)
    marker = tmp_path / "exploded"
    entry.path.write_bytes(pickle.dumps(_Bomb(marker)))
    pickle.loads(entry.path.read_bytes())  # the bomb works when unpickled ...
    assert marker.is_dir()
    marker.rmdir()
    torch.save({"logits": torch.zeros(12, 1000), "bomb": _Bomb(marker)}, entry.path)  # ... in a torch file too
    logits, problem = logit_cache.load(entry)
    assert logits is None and problem.startswith("unreadable") and not marker.exists()  # ... and is not, here


def test_concurrent_writers_leave_a_whole_entry(tmp_path, sample):
    model = fresh_model()
    entry = logit_cache.entry(tmp_path, model, sample, Geometry(40, 32), 4)
    logits = torch.randn(12, 1000)
    problems: list[str] = []

    def write():
        for _ in range(20):
            logit_cache.store(entry, logits)

    def read():
        for _ in range(200):
            got, problem = logit_cache.load(entry)
            if problem or (got is not None and not torch.equal(got, logits)):
                problems.append(problem or "other logits")

    threads = [threading.Thread(target=write) for _ in range(4)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems and [p.name for p in tmp_path.iterdir()] == [entry.path.name]  # no temporary file left


def test_second_run_skips_the_clean_pass(tmp_path, shared_data):
    """Two runs of the accuracy audit: the first fills the cache (--audit-cache), the second (the
    environment variable) says it read the logits and gives the same top-1 and per-image outcomes."""
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY", logit_cache.CACHE_ENV):
        env.pop(var, None)
    cache_dir = tmp_path / "cache"

    def run(name: str, *args: str, **extra_env: str):
        cmd = [sys.executable, "-m", "pytest", "audits/test_accuracy.py", "-p", "no:cacheprovider", "--model",
               "tests.tiny_models:tiny",
               "--device", "cpu", "--audit-samples", "60", f"--audit-json={tmp_path / name}", *args]
        proc = subprocess.run(cmd, cwd=ROOT, env={**env, **extra_env}, capture_output=True, text=True, timeout=300)
        assert (tmp_path / name).exists(), proc.stdout + proc.stderr
        return proc.stdout + proc.stderr, json.loads((tmp_path / name).read_text())

    first, a = run("a.json", f"--audit-cache={cache_dir}")
    second, b = run("b.json", **{logit_cache.CACHE_ENV: str(cache_dir)})
    skipped = "clean imagenet-sample[60 of 1000, seed 0]: 60 logits read from"
    assert skipped not in first and "forward pass skipped" in second and skipped in second, second
    [entry] = cache_dir.glob("clean-*.safetensors")
    assert str(entry) in second
    [clean_a], [clean_b] = a["audits"], b["audits"]
    assert "clean_top1" in clean_a["metrics"] and clean_a["metrics"] == clean_b["metrics"]
    assert clean_a["outcomes"] == clean_b["outcomes"] and a["samples"] == b["samples"]  # image by image


def test_a_change_of_model_code_alone_misses(tmp_path, sample, images, monkeypatch):
    """Same weights, same spec, other forward: the factory's source is in the key (a code-only release)."""
    module = tmp_path / "codechange_model.py"
    source = ("import torch\n"
              "class Net(torch.nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.fc = torch.nn.Linear(3, 1000)\n"
              "    def forward(self, x):\n"
              "        return SIGN * self.fc(x.mean(dim=(2, 3)))\n"
              "def factory():\n"
              "    torch.manual_seed(0)\n"
              "    return Net()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = logit_cache.configure(tmp_path / "cache")
    try:
        results = []
        for sign in (1, -1):
            module.write_text(f"SIGN = {sign}\n" + source)
            sys.modules.pop("codechange_model", None)
            model = load_model("codechange_model:factory?size=32&resize=40", "cpu")
            results.append(inference.clean_logits(model, sample, images, batch_size=4))
    finally:
        logit_cache.configure(previous)
    assert torch.allclose(results[1], -results[0])  # recomputed with the new code, not read back
    assert len(list((tmp_path / "cache").glob("clean-*.safetensors"))) == 1  # the stale entry was replaced
