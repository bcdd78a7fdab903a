"""Options in one home: every pytest option is registered in plugins/options.py, and an option that the
``visionaudit`` commands share with the pytest run is one declaration (visionaudit/cli/options.py) with the
same help and default on both sides, named the same up to the ``audit-`` prefix."""

from __future__ import annotations

import argparse
import ast
import re
import shutil
from pathlib import Path

import pytest

from plugins import options as options_plugin
from visionaudit.cli import build_parser, main
from visionaudit.cli.options import DEPRECATED_ALIASES, HELP_BODIES, PYTEST_PREFIX

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"fetch", "convert-checkpoint", "shape-bias", "report", "compare", "merge", "html", "families"}
# Shared with the pytest run: (CLI spelling, pytest spelling).
SHARED = {"--arch": "--arch", "--device": "--device", "--data": "--audit-data", "--images": "--audit-images",
          "--config": "--audit-config", "--baseline": "--audit-baseline", "--baseline-as": "--audit-baseline-as",
          "--baseline-unpaired": "--audit-baseline-unpaired", "--shape-bias-reference": "--audit-shape-bias-reference",
          "--accept-incomplete-baseline": "--audit-accept-incomplete-baseline"}
# --model is the one name both sides use for different options: the run's models (repeatable, default from
# audit.toml) versus the one model a command runs or picks from a report.
DIFFERENT_ON_PURPOSE = {"--model"}


class _RecordingParser:
    """Stands in for pytest's parser: records every addoption call, as pytest would receive it."""

    def __init__(self):
        self.calls: list[tuple[tuple[str, ...], dict]] = []

    def getgroup(self, *args, **kwargs):
        return self

    def addoption(self, *names, **attrs):
        self.calls.append((names, attrs))

    addini = None  # not an option: would need its own check

    def as_argparse(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        for names, attrs in self.calls:
            parser.add_argument(*names, **attrs)
        return parser


def pytest_options() -> dict[str, dict]:
    recorder = _RecordingParser()
    options_plugin.pytest_addoption(recorder)
    return {names[0]: attrs for names, attrs in recorder.calls}


def cli_options() -> dict[str, dict[str, argparse.Action]]:
    """command -> {option string: action}."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {s: a for a in p._actions for s in a.option_strings} for name, p in sub.choices.items()}


# -- one home ---------------------------------------------------------------------------------------------

def options_declared_outside(root: Path) -> list[str]:
    """Every pytest_addoption hook or addoption call in plugins/, fixtures/ and conftest files, but plugins/options.py."""
    home = root / "plugins" / "options.py"
    paths = [*(root / "plugins").rglob("*.py"), *(root / "fixtures").rglob("*.py"), *root.glob("conftest.py"),
             *(root / "audits").rglob("conftest.py"), *(root / "tests").rglob("conftest.py")]
    found = []
    for path in sorted(p for p in paths if p != home):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "pytest_addoption":
                found.append(f"{path.relative_to(root)}:{node.lineno}: pytest_addoption")
            elif isinstance(node, ast.Call) and getattr(node.func, "attr",
                                                        getattr(node.func, "id", "")) in ("addoption", "_addoption"):
                found.append(f"{path.relative_to(root)}:{node.lineno}: addoption")
    return found


def test_every_pytest_option_is_registered_in_plugins_options_only():
    assert options_declared_outside(ROOT) == []


def test_the_one_home_check_names_an_option_added_elsewhere(tmp_path):
    for package in ("plugins", "fixtures"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    planted = tmp_path / "plugins" / "html_page.py"
    lines = len(planted.read_text().splitlines())
    planted.write_text(planted.read_text() + "\ndef pytest_addoption(parser):\n    parser.getgroup('x').addoption('--x')\n")
    assert options_declared_outside(tmp_path) == [f"plugins/html_page.py:{lines + 2}: pytest_addoption",
                                                  f"plugins/html_page.py:{lines + 3}: addoption"]


def test_the_sessions_audit_options_are_exactly_those_of_plugins_options(pytestconfig):
    """This session ran every plugin's pytest_addoption (installed ones too): its ``audit_*`` destinations
    are those plugins/options.py declares, and nothing else declared one."""
    recorder = _RecordingParser()
    options_plugin.pytest_addoption(recorder)
    declared = {a.dest for a in recorder.as_argparse()._actions if a.dest != "help"}
    session = {dest for dest in vars(pytestconfig.option) if dest.startswith("audit_")}
    assert session == {d for d in declared if d.startswith("audit_")}
    assert {"model", "arch"} <= declared and {"audit_device", "audit_html", "audit_baseline_unpaired"} <= session


# -- one declaration, one spelling -----------------------------------------------------------------------

def without_alias_note(text: str) -> str:
    """The help as declared, without the note a deprecated spelling adds on its side only."""
    return re.sub(r" \(--[a-z-]+: the old spelling, deprecated\)$", "", text)


def test_shared_options_have_one_help_and_default_in_the_cli_and_in_pytest():
    in_pytest = pytest_options()
    seen = set()
    for command, actions in cli_options().items():
        for flag, action in actions.items():
            if flag in DIFFERENT_ON_PURPOSE or flag != action.option_strings[0]:  # an alias: checked with its option
                continue
            twin = next((f for f in (f"--{PYTEST_PREFIX}{flag[2:]}", flag) if f in in_pytest), None)
            if twin is None:
                continue
            assert SHARED.get(flag) == twin, f"{command} {flag}: a pytest option's name, not in SHARED"
            attrs = in_pytest[twin]
            # One body on both sides; each tool's own note (a default, a caveat) may follow it.
            assert action.help.startswith(HELP_BODIES[flag]) and attrs["help"].startswith(HELP_BODIES[flag]), \
                f"{command} {flag} vs {twin}"
            assert action.default == attrs.get("default"), f"{command} {flag} vs {twin}"
            seen.add(flag)
    assert seen == set(SHARED)  # each shared option appears in at least one command


def test_each_tools_help_says_only_what_applies_to_it():
    """hunt34: the shared help strings said other tools' caveats (pytest --help: "visionaudit html has no default";
    shape-bias --device: "under xdist"). Each tool gets the body and its own note."""
    in_pytest = pytest_options()
    for flag, attrs in in_pytest.items():
        for other in ("visionaudit html", "visionaudit compare", "compare and html", "NEW_SPEC"):
            assert other not in attrs["help"], (flag, other)
    commands = cli_options()
    assert "xdist" not in commands["shape-bias"]["--device"].help and "xdist" in in_pytest["--device"]["help"]
    assert "cue-conflict fills it" in commands["shape-bias"]["--data"].help
    assert "rootdir" in in_pytest["--audit-config"]["help"]
    for command in ("compare", "html"):
        assert "rootdir" not in commands[command]["--config"].help and "[audits.baseline]" in commands[command]["--config"].help
        assert "--model NEW_SPEC" in commands[command]["--baseline-as"].help
    assert "shows no images" in commands["html"]["--data"].help and "shows no images" not in in_pytest["--audit-data"]["help"]


def test_the_images_option_names_every_form_it_reads():
    """docs42: --audit-images / html's --images showed NAME|DIR in --help, though a .csv manifest is read too
    (docs/options.md and docs/data.md say NAME|DIR|FILE.csv)."""
    assert pytest_options()["--audit-images"]["metavar"] == "NAME|DIR|FILE.csv"
    assert cli_options()["html"]["--images"].metavar == "NAME|DIR|FILE.csv"


def test_every_command_option_and_argument_has_a_help_line():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in sub.choices.items() for a in p._actions if not a.help]
    assert missing == []


def test_the_run_help_names_every_spec_form_and_query_key():
    """hunt34: pytest --help's --model left out hf:, timm's pretrained tags and the ?key=value settings that
    docs/models.md lists; --audit-offline left out hub models."""
    from visionaudit.models.specs import SPEC_OPTIONS

    in_pytest = pytest_options()
    text = in_pytest["--model"]["help"]
    for form in ("efficientnet_lite0", "torchvision:NAME", "timm:NAME[.TAG]", "timm:NAME:CHECKPOINT", "hf:FOLDER",
                 "hf:ORG/NAME[@REV]", "FILE.onnx", "package.module:factory", "?key=value", "docs/models.md"):
        assert form in text, form
    assert all(key in text for key in SPEC_OPTIONS)
    assert "Hugging Face cache" in in_pytest["--audit-offline"]["help"] and "hf:ORG/NAME" in in_pytest["--audit-offline"]["help"]


@pytest.mark.parametrize("argv", [["families", "--bogus"], ["compare", "a.json", "b.json", "--bogus"],
                                  ["shape-bias", "--model", "m", "--bogus"], ["fetch", "--all", "--bogus"]])
def test_an_unknown_option_after_a_command_prints_that_commands_usage(argv, capsys):
    """hunt34: argparse said it with the top-level usage (python -m visionaudit [-h] [--version] COMMAND ...)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 4
    assert err.startswith(f"usage: visionaudit {argv[0]} "), err
    assert f"visionaudit {argv[0]}: error: unrecognized arguments: --bogus" in err


@pytest.mark.parametrize("typed", ["visionaudit", "python -m visionaudit"])
def test_help_and_usage_errors_name_the_command_as_typed(typed):
    """fixsmall: the console script's --help and usage errors said "python -m visionaudit"."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("visionaudit")  # pyproject's [project.scripts], installed beside python
    assert script.exists(), f"{script}: the console script is not installed (pip install -e .)"
    start = [str(script)] if typed == "visionaudit" else [sys.executable, "-m", "visionaudit"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*start, *args], capture_output=True, text=True, timeout=60)

    top = run("--help")
    assert top.returncode == 0 and top.stdout.startswith(f"usage: {typed} [-h] [--version] COMMAND"), top.stdout[:200]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == COMMANDS
    for command in sorted(COMMANDS):
        shown = run(command, "--help")
        assert shown.returncode == 0 and shown.stdout.startswith(f"usage: {typed} {command} "), (command, shown.stdout[:200])
        refused = run(command, "--bogus")  # an unknown option, or a missing argument: a usage error either way
        assert refused.returncode == 4 and refused.stderr.startswith(f"usage: {typed} {command} "), (command, refused.stderr)
        assert f"\n{typed} {command}: error: " in refused.stderr, (command, refused.stderr)
    bare = run()
    assert bare.returncode == 4 and f"\n{typed}: error: " in bare.stderr, bare.stderr


def test_every_subcommand_has_a_one_line_help():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert set(helps) == COMMANDS
    for name, text in helps.items():
        assert text and "\n" not in text and len(text) < 120, name


@pytest.mark.parametrize("argv, dest, value", [
    (["compare", "a.json", "b.json", "--unpaired"], "baseline_unpaired", True),
    (["compare", "a.json", "b.json", "--baseline-unpaired"], "baseline_unpaired", True),
    (["html", "r.json", "-o", "r.html", "--baseline-model", "old"], "baseline_as", "old"),
    (["html", "r.json", "-o", "r.html", "--unpaired"], "baseline_unpaired", True),
    (["shape-bias", "--model", "m"], "device", None),
])
def test_cli_spellings_and_deprecated_aliases(argv, dest, value):
    assert getattr(build_parser().parse_args(argv), dest) == value


@pytest.mark.parametrize("argv, dest, value", [
    (["--shape-bias-reference", "a.csv"], "audit_shape_bias_reference", ["a.csv"]),
    (["--audit-shape-bias-reference", "a.csv", "b.csv"], "audit_shape_bias_reference", ["a.csv", "b.csv"]),
    (["--device", "cpu"], "audit_device", "cpu"),
    (["--audit-baseline-as", "m"], "audit_baseline_as", "m"),
])
def test_pytest_spellings_and_deprecated_aliases(argv, dest, value):
    recorder = _RecordingParser()
    options_plugin.pytest_addoption(recorder)
    assert getattr(recorder.as_argparse().parse_args(argv), dest) == value


def test_deprecated_aliases_are_said_deprecated_in_the_help():
    found = set()
    for command, actions in cli_options().items():
        for new, old in DEPRECATED_ALIASES.items():
            if new in actions:
                assert actions[new] is actions.get(old), (command, new, old)
                assert actions[new].help.endswith(f"({old}: the old spelling, deprecated)"), (command, new)
                found.add(new)
    recorder = _RecordingParser()
    options_plugin.pytest_addoption(recorder)
    for names, attrs in recorder.calls:
        if names[0] in DEPRECATED_ALIASES:
            assert names == (names[0], DEPRECATED_ALIASES[names[0]])
            assert attrs["help"].endswith(f"({DEPRECATED_ALIASES[names[0]]}: the old spelling, deprecated)")
            found.add(names[0])
    assert found == set(DEPRECATED_ALIASES)


def test_baseline_as_needs_model_and_says_so(capsys, tmp_path):
    assert main(["compare", "a.json", "b.json", "--baseline-as", "old"]) == 4
    assert "--model and --baseline-as go together" in capsys.readouterr().err
