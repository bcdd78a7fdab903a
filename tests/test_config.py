"""audit.toml: validation, defaults, per-model overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionaudit.config import load_config
from visionaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text) -> Path:
    p = tmp_path / "audit.toml"
    p.write_text(text)
    return p


def test_the_shipped_config_is_valid():
    cfg = load_config(ROOT / "audit.toml")
    assert cfg.run["models"] == ["efficientnet_lite0"]
    assert cfg.thresholds("accuracy", "efficientnet_lite0")["min_top1"] == 0.85


def test_overrides_apply_to_their_model_only(tmp_path):
    cfg = load_config(write(tmp_path, """
[audits.accuracy]
min_top1 = 0.5
[models."torchvision:resnet50".accuracy]
min_top1 = 0.75
"""))
    assert cfg.thresholds("accuracy", "torchvision:resnet50")["min_top1"] == 0.75
    assert cfg.thresholds("accuracy", "other")["min_top1"] == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("[audits.accuracy]\nmin_tp1 = 0.5\n", r"unknown key audits.accuracy.min_tp1; known keys of \[audits.accuracy\]: min_top1"),
        ("[audits.accuracy]\nmin_top1 = 'high'\n", r"audits.accuracy.min_top1 = 'high' has the wrong type; it must be number"),
        ("[audits.accuracy]\nmin_top1 = true\n", r"min_top1 = True has the wrong type"),
        ("[audits.acuracy]\nmin_top1 = 0.5\n", r"unknown audit \[audits.acuracy\]"),
        ("[run]\nmodels = 'efficientnet_lite0'\n", r"run.models = 'efficientnet_lite0' has the wrong type; it must be list\[str\]"),
        ("[runs]\n", r"unknown top-level key\(s\) runs"),
        ('[models."m".accuracy]\nmax_top1 = 1\n', r'unknown key models."m".accuracy.max_top1'),
        ("[audits\n", r"is not valid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(path)
    assert str(path) in str(e.value)


def test_missing_threshold_names_where_to_add_it(tmp_path):
    cfg = load_config(write(tmp_path, "[run]\nseed = 1\n"))
    with pytest.raises(ConfigError, match=r"sets no min_top1 for the accuracy audit .*\[audits.accuracy\]"):
        cfg.thresholds("accuracy", "m")["min_top1"]


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
