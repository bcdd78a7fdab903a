"""A shape-bias ``category_map`` typo stops the run at startup (exit 4) for a model whose classes are known then
(issue 24 review): it was a skip, which hid it."""

from __future__ import annotations

from types import SimpleNamespace

from plugins.data_check import check_category_maps
from visionaudit.config import load_config

NAMES = ["cat", "dog", "bird"]


def test_a_category_map_typo_is_found_before_the_model_loads(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(NAMES) + "\n")
    toml = tmp_path / "audit.toml"
    toml.write_text('[audits.shape_bias.category_map]\nbirds = "bird"\ncat = "cat"\n')
    model = f"tests.tiny_models:ten_classes?classes={classes}"
    settings = SimpleNamespace(models=[model], classes=None, config=load_config(toml))
    problems = check_category_maps(settings)
    assert len(problems) == 1 and problems[0].startswith(f"{model}: [audits.shape_bias] category_map: ")
    assert "class 'birds' is not one of the model's 3 classes (closest class: 'bird')" in problems[0]
    toml.write_text('[audits.shape_bias.category_map]\nbird = "bird"\ncat = "cat"\n')
    assert check_category_maps(SimpleNamespace(models=[model], classes=None, config=load_config(toml))) == []
    # An ImageNet-1k model uses the published mapping: its map is not read, so no typo can be said of it.
    toml.write_text('[audits.shape_bias.category_map]\nbirds = "bird"\n')
    assert check_category_maps(SimpleNamespace(models=["torchvision:resnet18"], classes=None, config=load_config(toml))) == []
