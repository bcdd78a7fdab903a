"""Stop 34: an ``hf:`` model without its image processor's ``preprocessor_config.json`` is fed ImageNet's
preprocessing; the startup note that says so (visionaudit.models.hf.assumed_preprocessing_note), and when it is not
said. The real run that prints it: tests/models/test_hf_runs.py."""

from __future__ import annotations

import pytest

from tests.hub_models import tiny_vit, write_cache_entry
from visionaudit.models.hf import assumed_preprocessing_note
from visionaudit.models.specs import parse_spec

pytest.importorskip("transformers", reason="in the hf extra: pip install 'visionaudit[hf]'")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-note")
    kept = tiny_vit(root / "kept")
    bare = tiny_vit(root / "bare")
    (bare / "preprocessor_config.json").unlink()
    return kept, bare


def test_said_for_a_folder_without_its_image_processor_only(folders):
    kept, bare = folders
    assert assumed_preprocessing_note(parse_spec(f"hf:{kept}")) is None
    assert assumed_preprocessing_note(parse_spec("tests.tiny_models:tiny")) is None  # not an hf: model
    note = assumed_preprocessing_note(parse_spec(f"hf:{bare}"))
    assert note is not None and note.startswith(f"hf:{bare}: no preprocessor_config.json was found in {bare}")
    # torchvision's ImageNet constants, as published; 256 / 224, the usual crop ratio
    assert "short side to 256, centre crop 224, bilinear, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)" in note
    assert f"processor.save_pretrained('{bare}')" in note
    assert f"hf:{bare}?size=N&resize=N&interpolation=bilinear|bicubic|nearest&mean=R,G,B&std=R,G,B" in note


def test_what_the_spec_gives_is_in_the_assumed_preprocessing_and_all_of_it_says_nothing(folders):
    _, bare = folders
    note = assumed_preprocessing_note(parse_spec(f"hf:{bare}?size=160&mean=0.5,0.5,0.5"))
    # size 160 alone keeps the 0.875 crop ratio: floor(160 / 0.875) = floor(182.86) = 182
    assert "short side to 182, centre crop 160, bilinear, mean (0.5, 0.5, 0.5), std (0.229, 0.224, 0.225)" in note
    assert "the spec giving size, mean" in note and f"hf:{bare}?size=N&" in note  # the fix is written without the query
    whole = f"hf:{bare}?size=224&resize=224&interpolation=bicubic&mean=0.5,0.5,0.5&std=0.5,0.5,0.5"
    assert assumed_preprocessing_note(parse_spec(whole)) is None  # the spec is the preprocessing: nothing assumed


def test_said_for_a_hub_model_whose_cached_copy_lacks_it(folders, tmp_path, monkeypatch):
    kept, _ = folders
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    files = {n: (kept / n).read_bytes() for n in ("config.json", "model.safetensors")}
    write_cache_entry(cache, "tiny-org/bare", files)
    note = assumed_preprocessing_note(parse_spec("hf:tiny-org/bare"))
    assert note is not None and note.startswith(f"hf:tiny-org/bare: no preprocessor_config.json was found for tiny-org/bare "
                                                f"in the Hugging Face cache {cache}")
    assert "hf download tiny-org/bare" in note  # the repo may have one: fetch it
    write_cache_entry(cache, "tiny-org/kept",
                      {**files, "preprocessor_config.json": (kept / "preprocessor_config.json").read_bytes()})
    assert assumed_preprocessing_note(parse_spec("hf:tiny-org/kept")) is None
