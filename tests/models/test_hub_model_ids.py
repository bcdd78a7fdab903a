"""Issue 25: a hub model's id where the suite keys things by it (audit.toml tables, the logit cache), and the colour
space folds on a Hugging Face model."""

from __future__ import annotations

import json

import torch

from visionaudit.models.loading import as_logits, load_model

# --- the model's id where the suite keys things by it ------------------------------------------------


def test_audit_toml_tables_name_hub_models_in_their_canonical_form(tmp_path):
    from visionaudit.config import load_config

    toml = tmp_path / "audit.toml"
    toml.write_text('[models."hf:tiny-org/tiny-vit@main".accuracy]\nmin_top1 = 0.5\n'
                    '[models."timm:resnet18".accuracy]\nmin_top1 = 0.6\n')
    config = load_config(toml)
    assert config.thresholds("accuracy", "hf:tiny-org/tiny-vit")["min_top1"] == 0.5
    assert config.thresholds("accuracy", "timm:resnet18")["min_top1"] == 0.6  # as main names it: old tables still apply
    toml.write_text('[models."timm:resnet18".accuracy]\nmin_top1 = '
                    '0.6\n[models."timm:resnet18.a1_in1k".accuracy]\nmin_top1 = 0.7\n')
    config = load_config(toml)  # the tag written out is another spec (which tag is the default depends on timm's version)
    assert (config.thresholds("accuracy", "timm:resnet18")["min_top1"],
            config.thresholds("accuracy", "timm:resnet18.a1_in1k")["min_top1"]) == (0.6, 0.7)
    # A baseline written by a suite that knew no tags names timm:resnet18: [baseline.pairs] can still name it.
    toml.write_text('[baseline.pairs]\n"timm:resnet18.a1_in1k" = "timm:resnet18"\n')
    assert dict(load_config(toml).baseline_pairs) == {"timm:resnet18.a1_in1k": "timm:resnet18"}


def test_the_logit_cache_key_covers_every_file_of_an_hf_model(tmp_path, vit_folder):
    """The processor's file is part of the model: another mean is another entry, though the weights are the same."""
    from visionaudit.models import logit_cache

    folder = tmp_path / "m"
    folder.mkdir()
    for p in vit_folder.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    first = load_model(f"hf:{folder}", "cpu")
    config = json.loads((folder / "preprocessor_config.json").read_text())
    config["image_mean"] = [0.5, 0.5, 0.5]
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    second = load_model(f"hf:{folder}", "cpu")
    assert first.id == second.id and first.sha256 != second.sha256

    class Images:  # what the key reads of an image set
        name, sample_ids, paths = "x", ["a.png"], [tmp_path / "a.png"]

        def __len__(self):
            return 1

    (tmp_path / "a.png").write_bytes(b"not read")
    entries = [logit_cache.entry(tmp_path, m, Images(), m.preprocessing.geometry, 8) for m in (first, second)]
    assert entries[0].path != entries[1].path
    assert (entries[0].key["model"]["sha256"] == first.sha256
            and "preprocessor_config.json" in entries[0].key["model"]["sha256_of"])
    assert entries[0].key["model_code"]["module"].startswith("transformers.")  # transformers' version is in the key


def test_the_colour_space_folds_run_on_an_hf_model(vit_folder):
    """ViT checks the input's channels against the num_channels its embeddings and config keep: the folded copy says
    1 (and the expansion back 3), the original still 3. The fold is exact: the original on the gray image stacked
    three times gives the folded model's logits on the gray image."""
    from visionaudit.families.conversion import gray_to_rgb, rgb_to_gray

    model = load_model(f"hf:{vit_folder}", "cpu")
    gray = rgb_to_gray(model.module, model.preprocessing)
    assert gray.model.config.num_channels == 1 and model.module.config.num_channels == 3
    g = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        stacked = as_logits(model.module(model.preprocessing.normalize(255 * g.expand(-1, 3, -1, -1))))
        folded = as_logits(gray.model(gray.preprocessing.normalize(255 * g)))
    assert torch.allclose(stacked, folded, atol=1e-5), (stacked - folded).abs().max()
    assert gray_to_rgb(gray.model, gray.preprocessing).model.config.num_channels == 3
