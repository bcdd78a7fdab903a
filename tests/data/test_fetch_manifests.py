"""The fetch manifests: the shipped ones are upstream's listings of the real files, an override replaces what it names,
and paths, set names and symlinks that would leave the data root are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.data.loopback_mirror import OBSERVERS_FOLDER, sha
from visionaudit.cli import main as cli_main
from visionaudit.data.fetch import (
    COMMIT,
    IMAGENET_SAMPLE,
    LICENCE,
    MANIFEST_ENV,
    OBSERVERS,
    STIMULI,
    fetch,
    file_url,
    load_manifest,
)
from visionaudit.errors import DataError


@pytest.mark.parametrize("rel, why", [("../escape.png", "it holds .."), ("a/../../escape.png", "it holds .."),
                                      ("/tmp/escape.png", "it is absolute"), ("C:/escape.png", "it is absolute"),
                                      ("a\\..\\b.png", "it holds a backslash")])
def test_manifest_paths_outside_the_data_root_are_refused(tmp_path, monkeypatch, rel, why):
    """Issue 23, item 12: through --manifest / VISIONAUDIT_FETCH_MANIFEST, and a manifest handed to fetch()."""
    override = tmp_path / "m.json"
    override.write_text(json.dumps({"edges": {"files": {"ok.png": "0" * 64, rel: "0" * 64}}}))
    monkeypatch.setenv(MANIFEST_ENV, str(override))
    with pytest.raises(DataError) as refused:
        load_manifest()
    assert f"file {rel!r} is refused: {why}" in str(refused.value) and str(override) in str(refused.value)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="is refused"):
        fetch("edges", dest, base_url="http://127.0.0.1:9", manifest={"edges": {"files": {rel: "0" * 64}}})
    assert not (tmp_path / "escape.png").exists() and not Path("/tmp/escape.png").exists()


def test_a_data_set_name_that_leaves_the_root_is_refused(tmp_path, monkeypatch, capsys):
    override = tmp_path / "m.json"
    override.write_text(json.dumps({"../up": {"files": {"x.png": "0" * 64}}}))
    # its code: the exit-code table
    assert cli_main(["fetch", "../up", "--dest", str(tmp_path / "d"), "--manifest", str(override)]) != 0
    assert "data set name '../up' is refused: it holds .." in capsys.readouterr().err
    assert not (tmp_path / "up").exists()


def test_a_symlink_out_of_the_data_set_is_refused_before_anything_is_written(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "dest" / "edges"
    root.mkdir(parents=True)
    (root / "link").symlink_to(outside, target_is_directory=True)
    manifest = {"edges": {"files": {"a.png": "0" * 64, "link/b.png": "0" * 64}}}
    with pytest.raises(DataError, match=r"file 'link/b.png' is refused: .* through a symlink, outside"):
        fetch("edges", tmp_path / "dest", base_url="http://127.0.0.1:9", manifest=manifest)
    assert list(outside.iterdir()) == [] and not (root / "a.png.part").exists()


@pytest.mark.slow
def test_shipped_manifest_matches_the_real_stimuli(shared_data):
    manifest = load_manifest()
    assert {k: len(manifest[k]["files"]) for k in STIMULI} == {"cue-conflict": 1280, "edges": 160, "filled-silhouettes": 160}
    for name in STIMULI:
        local = {p.relative_to(shared_data / name).as_posix(): sha(p) for p in (shared_data / name).rglob("*.png")}
        assert local == manifest[name]["files"], name
        assert manifest[name]["terms"] == LICENCE


@pytest.mark.slow
def test_shipped_observers_manifest_is_the_upstream_listing_at_the_stimuli_commit(shared_data):
    shipped = json.loads((ROOT / "visionaudit" / "resources" / "texture_vs_shape_raw_manifest.json").read_text())
    assert shipped == json.loads((shared_data / "manifests" / "texture-vs-shape-raw-upstream.json").read_text())
    entry = load_manifest()[OBSERVERS]
    assert len(entry["files"]) == 10 and shipped["commit"] == COMMIT  # the stimuli's pinned commit
    name = "style-transfer-512-nomask-experiment_subject-01_session_1.csv"
    assert file_url(entry,
                    name) == f"https://raw.githubusercontent.com/rgeirhos/texture-vs-shape/{COMMIT}/{OBSERVERS_FOLDER}/{name}"
    # ../shared holds nine of the ten, byte for byte; subject-01 is not there
    local = {p.name: sha(p) for p in (shared_data / OBSERVERS).iterdir()}
    assert len(local) == 9 and name not in local
    assert all(entry["files"][n]["sha256"] == digest for n, digest in local.items())


@pytest.mark.slow
def test_shipped_imagenet_sample_manifest_is_the_upstream_listing(shared_data):
    shipped = json.loads((ROOT / "visionaudit" / "resources" / "imagenet_sample_manifest.json").read_text())
    assert shipped == json.loads((shared_data / "manifests" / "imagenet-sample-upstream.json").read_text())
    entry = load_manifest()[IMAGENET_SAMPLE]
    # One file per ILSVRC-2012 class, named <wnid>_<name> as the labelled-image layout reads it.
    wnids = [line.strip() for line in (shared_data / "imagenet_wnids.txt").read_text().splitlines() if line.strip()]
    assert sorted(name.split("_")[0] for name in entry["files"]) == wnids
    assert sum(f["size"] for f in entry["files"].values()) == 109_576_417  # the README's "110 MB"
    assert file_url(entry, "n01440764_tench.JPEG") == ("https://raw.githubusercontent.com/EliSchwartz/imagenet-sample-images/"
                                                      "bc69043e2862758a1906c6a24a792bb28c6bb2ff/n01440764_tench.JPEG")
    assert "ImageNet terms" in entry["terms"] and "EliSchwartz/imagenet-sample-images" in entry["terms"]
    # The copies in ../shared are resized: none of their hashes is an upstream one, so none can be built from them.
    resized = {sha(p) for p in list((shared_data / "imagenet-sample").iterdir())[:20]}
    assert not resized & {f["sha256"] for f in entry["files"].values()}


def test_manifest_override_replaces_files_and_keeps_the_rest(tmp_path, monkeypatch):
    override = tmp_path / "m.json"
    override.write_text(json.dumps({"edges": {"files": {"a/b.png": "0" * 64}}, "mine": {"files": {"x.png": "1" * 64}}}))
    monkeypatch.setenv(MANIFEST_ENV, str(override))
    manifest = load_manifest()
    assert manifest["edges"]["files"] == {"a/b.png": "0" * 64} and manifest["edges"]["terms"] == LICENCE
    assert (file_url(manifest["edges"], "a/b.png")
            == f"https://raw.githubusercontent.com/rgeirhos/texture-vs-shape/{COMMIT}/stimuli/edges/a/b.png")
    assert len(manifest["cue-conflict"]["files"]) == 1280  # not named in the override: shipped
    assert file_url(manifest["mine"], "x.png", "http://mirror") == "http://mirror/x.png"
    override.write_text("{not json")
    with pytest.raises(DataError, match="cannot read the fetch manifest"):
        load_manifest()
