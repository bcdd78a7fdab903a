"""A shape-bias ``category_map`` typo stops the run at startup (exit 4) for a model whose classes are known then
(issue 24 review): it was a skip, which hid it."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from plugins.data_check import check_category_maps
from visionaudit.config import load_config

NAMES = ["cat", "dog", "bird"]


def test_a_category_map_typo_is_found_before_the_model_loads(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(NAMES) + "\n")
    toml = tmp_path / "audit.toml"
    toml.write_text('[audits.shape_bias.category_map]\nbirds = "bird"\ncat = "cat"\n')
    model = f"tests.tiny_models:ten_classes?classes={classes}"
    settings = SimpleNamespace(models=[model], model_specs=[model], classes=None, config=load_config(toml))
    problems = check_category_maps(settings)
    assert len(problems) == 1 and problems[0].startswith(f"{model}: [audits.shape_bias] category_map: ")
    assert "class 'birds' is not one of the model's 3 classes (closest class: 'bird')" in problems[0]
    toml.write_text('[audits.shape_bias.category_map]\nbird = "bird"\ncat = "cat"\n')
    assert check_category_maps(SimpleNamespace(models=[model], model_specs=[model], classes=None, config=load_config(toml))) == []
    # An ImageNet-1k model uses the published mapping: its map is not read, so no typo can be said of it.
    toml.write_text('[audits.shape_bias.category_map]\nbirds = "bird"\n')
    assert check_category_maps(SimpleNamespace(models=["torchvision:resnet18"], model_specs=["torchvision:resnet18"], classes=None, config=load_config(toml))) == []


SHAPE_ONLY = """
import pytest

pytestmark = pytest.mark.audit("shape_bias")

@pytest.mark.parametrize("stimuli", ["edges"])
def test_edges(model, shape_only_images, stimuli):
    open("ran.txt", "w").close()
"""


def test_a_shape_only_run_stops_at_startup_too(suite, monkeypatch):
    """Stop-33 review, defect 2: the check ran only when cue-conflict stimuli were collected, so `-k accuracy` (the
    shape-only accuracy tests: edges, silhouettes) loaded the model first and reported a test error (exit 1)."""
    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("VISIONAUDIT_TEST_LOAD_LOG", str(suite.path / "loads.log"))
    suite.makepyfile(test_shape=SHAPE_ONLY)
    (suite.path / "classes.txt").write_text("\n".join(NAMES + [f"other{i}" for i in range(997)]) + "\n")  # tiny: 1,000 outputs
    for category in ("bird", "cat"):
        (suite.path / "data" / "edges" / category).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(suite.path / "data" / "edges" / category / f"{category}1.png")
    suite.makefile(".toml", audit='[audits.shape_bias]\ncategory_map = {"birdd" = "bird"}\n')
    model = f"tests.tiny_models:tiny?classes={suite.path / 'classes.txt'}"  # tiny logs its loads
    result = suite.runpytest_subprocess("--model", model, "--audit-data", "data", "--device", "cpu", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert ("audit.toml does not fit the models' classes (no test was run):\n"
            f"  {model}: [audits.shape_bias] category_map: class 'birdd' is not one of the model's 1000 classes "
            "(closest class: 'bird')") in output, output[-3000:]
    assert not (suite.path / "loads.log").exists() and not (suite.path / "ran.txt").exists()
