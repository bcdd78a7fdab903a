"""audit.toml: a closed config. Every key, nested key, enumeration and range is checked against the
family descriptors (per-model tables, and the paths in the file: tests/test_config_model_tables.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionaudit.config import load_config
from visionaudit.errors import ConfigError
from visionaudit.families import get_family

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text) -> Path:
    p = tmp_path / "audit.toml"
    p.write_text(text)
    return p


def test_the_shipped_config_is_valid():
    cfg = load_config(ROOT / "audit.toml")
    assert cfg.run["models"] == ["efficientnet_lite0"]
    assert cfg.thresholds("accuracy", "efficientnet_lite0")["min_top1"] == 0.85
    assert cfg.thresholds("deployment", "efficientnet_lite0").entry("max_abs_diff", "bf16_cpu") == 1.5


def test_overrides_apply_to_their_model_only(tmp_path):
    cfg = load_config(write(tmp_path, """
[audits.accuracy]
min_top1 = 0.5
[models."torchvision:resnet50".accuracy]
min_top1 = 0.75
"""))
    assert cfg.thresholds("accuracy", "torchvision:resnet50")["min_top1"] == 0.75
    assert cfg.thresholds("accuracy", "efficientnet_lite0")["min_top1"] == 0.5


# -- the cases a new user tried: each was accepted and silently ignored before ----------------------

def _refused_naming_the_file(tmp_path, text: str, message: str) -> None:
    """``text`` as audit.toml is refused with ``message`` (a regex), which names the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param("[audits.robustness]\nmax_drop_by_transform = {horizontal_flp = 0.5}\n",
                     r"audits.robustness.max_drop_by_transform = \{'horizontal_flp': 0.5\} unknown key 'horizontal_flp'; "
                     r"allowed: rotation, .*; did you mean 'horizontal_flip'\?", id="nested-key-typo"),
        pytest.param('[audits.robustness]\nnot_significant = ["horizontal_flp"]\n',
                     r"audits.robustness.not_significant = \['horizontal_flp'\] unknown item 'horizontal_flp'; .*did you mean "
                     r"'horizontal_flip'\?",
                     id="list-item-typo"),
        pytest.param('[audits.shape_bias]\naggregation = "median"\n',
                     r"audits.shape_bias.aggregation = 'median' unknown value 'median'; allowed: mean, sum, max",
                     id="enumeration"),
        pytest.param("[audits.accuracy]\nmin_top1 = 1.5\n",
                     r"audits.accuracy.min_top1 = 1.5 is out of range; it must be in \[0, 1\]",
                     id="fraction-above-1"),
        pytest.param("[audits.robustness]\nalpha = -0.05\n",
                     r"audits.robustness.alpha = -0.05 is out of range; it must be in \(0, 1\)",
                     id="negative-alpha"),
        pytest.param("[audits.robustness]\nalpha = 1.0\n", r"alpha = 1.0 is out of range", id="alpha-1"),
        pytest.param("[audits.robustness]\nbootstrap_resamples = 0\n",
                     r"bootstrap_resamples = 0 is out of range; it must be in \[1, inf\)",
                     id="zero-count"),
        pytest.param("[audits.channel_bias]\nfunctional_images = 2.5\n",
                     r"functional_images = 2.5 has the wrong type; it must be int",
                     id="float-count"),
        pytest.param("[audits.robustness]\nmax_drop_by_transform = {zoom = 2.0}\n",
                     r"has zoom = 2.0, out of range; values must be in \[-1, 1\]",
                     id="nested-value-range"),
        pytest.param("[audits.robustness]\nseverities = []\n", r"severities = \[\] is empty", id="empty-list"),
        # cfg45: an l typed for a 1 was answered "did you mean 'min_top5'?", another bound (difflib's tie-break)
        pytest.param("[audits.accuracy]\nmin_topl = 0.8\n", r"unknown key 'min_topl'; .*; did you mean 'min_top1'\?",
                     id="lookalike-typo"),
        # cfg45 review: a capital I (or O) for a 1 (or 0) was not a lookalike: min_top5 again
        pytest.param("[audits.accuracy]\nmin_topI = 0.8\n", r"unknown key 'min_topI'; .*; did you mean 'min_top1'\?",
                     id="lookalike-typo-capital"),
        # cfg45: refused only as the corruption tests were collected, a traceback and exit 2 (not 4) before
        pytest.param("[audits.corruption]\nseverities = [1, 2.5]\n",
                     r"audits.corruption.severities = \[1, 2.5\] holds 2.5, not a whole number; each must be a whole number "
                     r"in \[1, 5\]", id="fractional-severity"),
        pytest.param('[models."efficientnet_lite0".corruption]\nseverities = [0.5]\n', r"holds 0.5, not a whole number",
                     id="fractional-severity-in-a-model-table"),
        pytest.param('[models."efficientnet_lite0".accuracy]\nmin_top1 = 7\n',
                     r'models."efficientnet_lite0".accuracy.min_top1 = 7 is out of range',
                     id="range-in-a-model-table"),
    ],
)
def test_typos_and_out_of_range_values_are_refused(tmp_path, text, message):
    _refused_naming_the_file(tmp_path, text, message)


@pytest.mark.parametrize("key", ["images", "data", "cache", "classes", "device", "decode_memory"])
def test_an_empty_run_text_is_refused_not_read_as_not_given(tmp_path, key):
    """Stop 40: `images = ""` audited the default images, `classes = ""` named no classes, `cache = ""` kept none,
    each without a word, as an empty command-line value did."""
    for blank in ("", " "):
        _refused_naming_the_file(tmp_path, f'[run]\n{key} = "{blank}"\n',
                                 rf"run.{key} = '{blank}' is empty; give a value or leave the key out")
    # A family's own text may be empty (a plugin family's default ""): only [run]'s texts must not be.
    from visionaudit.families.thresholds import Field

    assert Field("str", default="").problem("") is None


def test_an_empty_list_of_models_is_refused_not_read_as_not_given(tmp_path):
    """Stop 40: `[run] models = []` audited the default model (efficientnet_lite0) without a word."""
    _refused_naming_the_file(tmp_path, "[run]\nmodels = []\n",
                             r"run.models = \[\] is empty; give at least one or leave the key out")
    # A family's own list of names may be empty (its default is): only a list with a least length refuses it.
    from visionaudit.families.thresholds import Field

    assert Field("list[str]", default=[]).problem([]) is None
    from visionaudit.config import RUN_SCHEMA

    assert RUN_SCHEMA["models"].problem("m.pt") == "has the wrong type; it must be list[str], not empty"  # no range


@pytest.mark.parametrize("old, new",
                         [("deployment_images = 64", "images"),
                          ("deployment_max_abs_diff = { torchscript = 1e-4 }", "max_abs_diff"),
                                      ("deployment_min_top1_agreement = { torchscript = 0.99 }", "min_top1_agreement")])
def test_moved_deployment_keys_say_where_they_went(tmp_path, old, new):
    path = write(tmp_path, f"[audits.conversion]\n{old}\n")
    with pytest.raises(ConfigError,
                       match=rf"audits.conversion.deployment_\w+ has moved to \[audits.deployment\] {new}; move it there"):
        load_config(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[audits.accuracy]\nmin_tp1 = 0.5\n",
         r"\[audits.accuracy\] unknown key 'min_tp1'; allowed: min_top1, min_top5, min_balanced_accuracy, min_class_accuracy, "
         r"min_class_images, min_images; did you mean 'min_top1'\?"),
        ("[audits.accuracy]\nmin_top1 = 'high'\n",
         r"audits.accuracy.min_top1 = 'high' has the wrong type; it must be number in \[0, 1\]"),
        ("[audits.accuracy]\nmin_top1 = true\n", r"min_top1 = True has the wrong type"),
        ("[audits.acuracy]\nmin_top1 = 0.5\n",
         r"\[audits.acuracy\] unknown audit family 'acuracy'; allowed: accuracy, .*did you mean 'accuracy'\?"),
        ("[run]\nmodels = 'efficientnet_lite0'\n",
         r"run.models = 'efficientnet_lite0' has the wrong type; it must be list\[str\]"),
        ("[runs]\n", r"unknown top-level table 'runs'; allowed: run, audits, models, baseline; did you mean 'run'\?"),
        ('[models."efficientnet_lite0".accuracy]\nmax_top1 = 1\n',
         r'\[models."efficientnet_lite0".accuracy\] unknown key \'max_top1\''),
        ("[audits\n", r"is not valid TOML"),
        ("[audits.baseline]\ntolerance = { clean_top = 0.01 }\n", r"unknown key 'clean_top'.*did you mean 'clean_top1'\?"),
        ("[audits.baseline]\ntolerance = { clean_top1 = -0.01 }\n", r"tolerance"),
        ("[baseline]\npair = {}\n",
         r"\[baseline\] holds only a pairs table; unknown key 'pair'; allowed: pairs; did you mean 'pairs'\?"),
        ('[baseline.pairs]\n"tests.tiny:x" = 3\n', r"\[baseline.pairs\] maps this run's model to the baseline's"),
        # said of the pair (review 37 F6)
        ('[baseline.pairs]\n"resnet50" = "efficientnet_lite0"\n', r'\[baseline.pairs\] "resnet50": unknown model spec'),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, text, message):
    _refused_naming_the_file(tmp_path, text, message)


def test_baseline_pairs_are_canonical(tmp_path):
    cfg = load_config(write(tmp_path, '[baseline.pairs]\n"efficientnet-lite0" = "torchvision:resnet50"\n'))
    assert dict(cfg.baseline_pairs) == {"efficientnet_lite0": "torchvision:resnet50"}


def test_without_a_table_the_family_defaults_apply(tmp_path):
    """A config that sets nothing for a family gives the defaults its descriptor declares; a table overrides
    only the keys it sets, and a per-name table only the names it lists."""

    cfg = load_config(write(tmp_path, "[audits.deployment]\nmax_abs_diff = { onnxruntime = 0.01 }\n"))
    for name in ("accuracy", "shape_bias", "channel_bias", "robustness", "corruption", "conversion", "baseline"):
        declared = {k: f.default for k, f in get_family(name).thresholds.items() if f.default is not None}
        unset = set(get_family(name).thresholds) - set(declared)  # optional bounds: their assessor says what unset means
        assert dict(cfg.thresholds(name, "m")) == declared, name
        assert unset == ({"min_top5", "min_balanced_accuracy"} if name == "accuracy" else set()), name
    deployment = cfg.thresholds("deployment", "m")
    assert deployment.entry("max_abs_diff", "onnxruntime") == 0.01
    assert deployment.entry("max_abs_diff", "bf16_cpu") == 1.5  # the default of a name the table does not list
    assert deployment["images"] == 64 and load_config(None).thresholds("accuracy", "m")["min_top1"] == 0.70


def test_a_default_is_checked_against_its_field():
    from visionaudit.families import thresholds as f

    with pytest.raises(ValueError, match=r"default 1.5 is out of range; it must be in \[0, 1\]"):
        f.fraction("a share", default=1.5)
    with pytest.raises(ValueError, match=r"default \{'nope': 0.1\} unknown key 'nope'"):
        f.per_name(["a", "b"], f.fraction(), default={"nope": 0.1})


def test_missing_threshold_names_where_to_add_it(tmp_path):
    """A key whose family gives no default (a family from a package may leave one to the config)."""
    from visionaudit.config import Thresholds

    with pytest.raises(ConfigError,
                       match=r"sets no min_top1 for the accuracy audit .*gives no default; add it under \[audits.accuracy\]"):
        Thresholds("accuracy", "m", {})["min_top1"]
    cfg = load_config(write(tmp_path, "[audits.deployment]\nmax_abs_diff = { onnxruntime = 0.01 }\n"))
    with pytest.raises(ConfigError, match=r"sets no max_drop_by_transform for zoom in the robustness audit"):
        cfg.thresholds("robustness", "m").entry("max_drop_by_transform", "zoom")


def test_whole_severities_written_as_floats_are_still_read():
    field = get_family("corruption").field("severities")
    assert field.problem([1.0, 3]) is None
    assert field.describe() == "list[int] in [1, 5]"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    # cfg45: these were an INTERNALERROR traceback (exit 3), and compare --config's a traceback with exit 1
    (tmp_path / "file").write_text("")
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    for unreadable, why in [(tmp_path / "file" / "audit.toml", "Not a directory"),
                            (tmp_path / "loop.toml", "Too many levels of symbolic links"),
                            (tmp_path / ("a" * 300 + ".toml"), "File name too long")]:
        with pytest.raises(ConfigError, match=rf"config file .* cannot be read \({why}\); pass --audit-config PATH"):
            load_config(unreadable)
