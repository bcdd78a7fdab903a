"""Options that mean the same in a pytest run and in a ``visionaudit`` command, each declared once.

pytest-benchmark's pattern: a builder takes an ``addoption``-like callable (argparse's ``add_argument``,
pytest's ``group.addoption``) and a ``prefix``, and adds one group of related options. plugins/options.py
passes ``"audit-"`` (``--audit-data``), the commands ``""`` (``--data``): one help text, one default, one
name up to the prefix; ``tool`` (the run, or the command's name) adds what the option means in that tool only.
``--model``, ``--arch`` and ``--device`` carry no prefix anywhere: they name the model in every example of both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from visionaudit.errors import empty_value

AddOption = Callable[..., Any]

PYTEST_PREFIX = "audit-"

# Spellings replaced by one name everywhere, still accepted (scripts use them) and said deprecated in the help.
DEPRECATED_ALIASES = {
    "--baseline-unpaired": "--unpaired",
    "--baseline-as": "--baseline-model",
    "--audit-shape-bias-reference": "--shape-bias-reference",
}

RUN = "run"  # the pytest run's tool name; a command's is its own ("html", "compare", "shape-bias")
ARCH_HELP = "architecture for state-dict specs without ?arch= (torchvision:NAME, timm:NAME, package.module:factory)"
# A shared option's help is one body, the same for every tool, then what it means in the tool at hand only (its
# default, a caveat): each reader gets its own tool's notes, not the others'. A tool without a note gets the body.
DEVICE_HELP = "auto (default), cpu, cuda, cuda:N or mps"
DEVICE_NOTES = {RUN: "; under xdist, auto and cuda spread workers over GPUs"}
DATA_HELP = "data root holding cue-conflict/, imagenet-sample/, ..."
DATA_NOTES = {
    RUN: " (default: $VISIONAUDIT_DATA, else the user cache $VISIONAUDIT_CACHE, which the run fills on first use)",
    "shape-bias": " (default: $VISIONAUDIT_DATA, else the user cache $VISIONAUDIT_CACHE; python -m visionaudit fetch "
                  "cue-conflict fills it)",
    "html": " for the page's images (no default: without it the page shows no images)",
}
IMAGES_HELP = ("labelled natural images: a folder under the data root, a path (class folders named by class name or "
               "WNID, a CSV manifest of path,label rows, <wnid>_<name> files, or ILSVRC2012_val_* files with the "
               "devkit's ground truth or Kaggle's LOC_val_solution.csv), or 'imagenette'")
IMAGES_NOTES = {RUN: " (default imagenet-sample)", "html": " (default: the report's)"}
CLASSES_HELP = ("the model's class names in output order (one per line, or a JSON list), for models that carry none "
                "of their own (torchvision weights, timm, a Hugging Face config.id2label do); one model's own: "
                "?classes=FILE in its spec")
CONFIG_HELP = "thresholds file"
CONFIG_NOTES = {RUN: " (default: audit.toml at the rootdir)",
                "compare": ": its [audits.baseline] tolerances and [baseline.pairs] (no default: the family's built-in "
                           "tolerances without it)",
                "html": ": its [audits.baseline] tolerances and [baseline.pairs] (no default: the family's built-in "
                        "tolerances without it)"}
BASELINE_HELP = "compare each model with its entry in this report of the previous release, image by image"
BASELINE_AS_HELP = "compare the model with the baseline's OLD_SPEC instead of its entry of the same spec"
BASELINE_AS_NOTES = {RUN: ": the run's one model (several: [baseline.pairs] in audit.toml)",
                     "compare": ": the model --model NEW_SPEC names", "html": ": the model --model NEW_SPEC names"}
BASELINE_UNPAIRED_HELP = "compare with a baseline made on other images, seed or subset by unpaired two-proportion tests"
ACCEPT_INCOMPLETE_BASELINE_HELP = ("accept a baseline report whose own verdict is not pass (incomplete: an interrupted "
                                   "run, gates not judged; or fail): without it such a baseline makes the verdict "
                                   "incomplete (exit 1); with it the report says it was accepted")
SHAPE_BIAS_REFERENCE_HELP = ("decision CSVs (the authors' raw-data format, one per observer) drawn as per-category "
                             "references in the HTML shape-bias figure")


def _add(addoption: AddOption, flag: str, help: str, **kwargs: Any) -> None:
    """``flag`` and its deprecated old spelling, if it has one (the help says which)."""
    old = DEPRECATED_ALIASES.get(flag)
    if old:
        addoption(flag, old, help=f"{help} ({old}: the old spelling, deprecated)", **kwargs)
    else:
        addoption(flag, help=help, **kwargs)


def add_model_options(addoption: AddOption, prefix: str = "", tool: str = RUN) -> None:
    """How a model spec loads: the architecture of a state dict and the device."""
    _add(addoption, "--arch", ARCH_HELP, default=None, metavar="ARCH")
    # In pytest the dest carries the prefix: "device" is too common a name to claim among every plugin's options.
    _add(addoption, "--device", DEVICE_HELP + DEVICE_NOTES.get(tool, ""), dest=f"{prefix.replace('-', '_')}device",
         default=None, metavar="DEVICE")


def add_classes_option(addoption: AddOption, prefix: str = "") -> None:
    _add(addoption, f"--{prefix}classes", CLASSES_HELP, default=None, metavar="FILE")


def add_data_options(addoption: AddOption, prefix: str = "", images: bool = True, tool: str = RUN) -> None:
    """Where the data is: the data root and, with ``images``, the labelled natural images under it."""
    _add(addoption, f"--{prefix}data", DATA_HELP + DATA_NOTES.get(tool, ""), default=None, metavar="DIR")
    if images:
        _add(addoption, f"--{prefix}images", IMAGES_HELP + IMAGES_NOTES.get(tool, ""), default=None,
             metavar="NAME|DIR|FILE.csv")


def add_config_option(addoption: AddOption, prefix: str = "", tool: str = RUN) -> None:
    _add(addoption, f"--{prefix}config", CONFIG_HELP + CONFIG_NOTES.get(tool, ""), default=None, metavar="PATH")


def add_baseline_options(addoption: AddOption, prefix: str = "", report: bool = True, tool: str = RUN) -> None:
    """The comparison with the previous release: its report (unless the command takes it as an argument),
    the model paired with ours, and unpaired tests for reports made on other images."""
    if report:
        _add(addoption, f"--{prefix}baseline", BASELINE_HELP, default=None, metavar="PREV.json")
    _add(addoption, f"--{prefix}baseline-as", BASELINE_AS_HELP + BASELINE_AS_NOTES.get(tool, ""), default=None,
         metavar="OLD_SPEC")
    _add(addoption, f"--{prefix}baseline-unpaired", BASELINE_UNPAIRED_HELP, action="store_true", default=False)


def add_accept_incomplete_baseline_option(addoption: AddOption, prefix: str = "") -> None:
    """Where a verdict is judged against a baseline: a run, ``compare``, and ``html --baseline``, whose page says the
    comparison's verdict as ``compare`` gives it (the page's own verdict stays the report's)."""
    _add(addoption, f"--{prefix}accept-incomplete-baseline", ACCEPT_INCOMPLETE_BASELINE_HELP, action="store_true", default=False)


def add_shape_bias_reference_option(addoption: AddOption, prefix: str = "") -> None:
    _add(addoption, f"--{prefix}shape-bias-reference", SHAPE_BIAS_REFERENCE_HELP, nargs="+", default=None,
         metavar="FILE.csv")


# The one body of each shared option's help (the tool's note follows it), by its name in the commands.
HELP_BODIES = {"--arch": ARCH_HELP, "--device": DEVICE_HELP, "--data": DATA_HELP, "--images": IMAGES_HELP,
               "--classes": CLASSES_HELP, "--config": CONFIG_HELP, "--baseline": BASELINE_HELP,
               "--baseline-as": BASELINE_AS_HELP, "--baseline-unpaired": BASELINE_UNPAIRED_HELP,
               "--accept-incomplete-baseline": ACCEPT_INCOMPLETE_BASELINE_HELP,
               "--shape-bias-reference": SHAPE_BIAS_REFERENCE_HELP}


# What an option given an empty value should have been given, by its name without the run's prefix: an empty value (an
# unset CI variable: `--audit-baseline "$PREV"`) would otherwise be read as not given, the default without a word (no
# baseline gate, the default images, the built-in tolerances), or as the working directory.
EMPTY_FIXES = {"arch": "an architecture, such as torchvision:resnet50", "device": "auto, cpu, cuda, cuda:N or mps",
               "model": "a model's spec or name", "data": "the data root's folder",
               "images": "the labelled images' folder, CSV manifest or name", "classes": "a class names file",
               "config": "an audit.toml", "cache": "the logit cache's folder", "decode-memory": "a size, such as 2GiB",
               "imagenet-c": "the ImageNet-C folder", "baseline": "the previous release's report, PREV.json",
               "baseline-as": "the baseline model's spec", "shape-bias-reference": "decision CSV files",
               "from-journal": "the REPORT.journal.jsonl file of a killed run"}


def empty_option(values: Mapping[str, Any], required: Collection[str] = ()) -> str | None:
    """The first option in ``values`` ({flag: its value; None when not given; a list for several}) given an empty or
    blank value, in words with the fix (the option named in ``required`` cannot be left out); None when none is."""
    for flag, value in values.items():
        if any(v is not None and not str(v).strip() for v in (value if isinstance(value, list) else [value])):
            what = EMPTY_FIXES[flag.removeprefix("--").removeprefix(PYTEST_PREFIX)]
            return empty_value(flag, what, None if flag in required else flag)
    return None
