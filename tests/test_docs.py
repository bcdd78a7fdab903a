"""The docs stay true: docs/architecture.md names every module with its layer, every relative link in
README.md and docs/ points to a file that exists, and so does every repository path they name."""

from __future__ import annotations

import re
from pathlib import Path

from plugins import options as options_plugin
from tests.cli.test_options import _RecordingParser, cli_options
from tests.test_architecture import LAYERS, PACKAGES, _modules

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# A module row: | `path/to/module.py` | layer | what it holds |
ROW = re.compile(r"^\|\s*`([^`]+\.py)`\s*\|\s*([A-Za-z_]+)\s*\|")
# [text](target) and [text]: target; images too
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)


def layer_of_path(path: str) -> str:
    """The layer a module file belongs to: the core's from LAYERS, else its pytest-side package."""
    parts = Path(path).with_suffix("").parts
    if parts[0] != "visionaudit":
        return parts[0]
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    for layer, prefixes in LAYERS:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return layer
    raise AssertionError(f"{name} is in no layer of tests/test_architecture.py's LAYERS")


def architecture_problems(page: str, root: Path = ROOT) -> list[str]:
    """What docs/architecture.md gets wrong: modules missing from its table, rows naming no module, wrong layers."""
    rows: dict[str, str] = {}
    problems = []
    for line in page.splitlines():
        if m := ROW.match(line):
            if m[1] in rows:
                problems.append(f"{m[1]} has two rows")
            rows[m[1]] = m[2]
    actual = {p.relative_to(root).as_posix() for p in _modules(root).values()}
    problems += [f"{path} is not in docs/architecture.md: add a row with its layer" for path in sorted(actual - rows.keys())]
    problems += [f"docs/architecture.md names {path}, which does not exist" for path in sorted(rows.keys() - actual)]
    for path in sorted(actual & rows.keys()):
        if rows[path] != (layer := layer_of_path(path)):
            problems.append(f"docs/architecture.md puts {path} in layer {rows[path]!r}; it is in {layer!r}")
    return problems


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", root / "CHANGELOG.md", *sorted((root / "docs").rglob("*.md"))]


def broken_links(path: Path) -> list[str]:
    """Relative links in a Markdown file whose target file does not exist (anchors and URLs are not checked)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)  # code blocks hold no links
    out = []
    for m in LINK.finditer(text):
        target = (m[1] or m[2]).split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor in the page, or a URL
            continue
        if not (path.parent / target).exists():
            out.append(f"{path.relative_to(ROOT)}: link to {target}, which does not exist")
    return out


# A repository path in a code span: `visionaudit/data/fetch.py`, `audits/test_accuracy.py`, `visionaudit/families/`
PATH = re.compile(r"`((?:visionaudit|plugins|fixtures|audits|benchmarks|tests)/[\w./-]*)`")


def missing_paths(path: Path, root: Path = ROOT) -> list[str]:
    """Repository paths named in a page's text (code blocks aside: they hold examples) that do not exist."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return [f"{path.relative_to(root)} names {p}, which does not exist"
            for p in dict.fromkeys(PATH.findall(text)) if not (root / p).exists()]


def test_architecture_page_names_every_module_with_its_layer():
    assert architecture_problems(ARCHITECTURE.read_text()) == []


def test_the_architecture_check_can_fail(tmp_path):
    """A module missing from the page, a row naming no module and a wrong layer are each named."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    for module in ("visionaudit/errors.py", "visionaudit/data/shards.py", "plugins/options.py"):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text("")
    page = "\n".join([
        "| module | layer | what it holds |", "|---|---|---|",
        "| `visionaudit/errors.py` | base | errors |",
        "| `visionaudit/data/shards.py` | models | shards |",
        "| `visionaudit/gone.py` | base | a module that was removed |",
    ])
    assert architecture_problems(page, tmp_path) == [
        "plugins/options.py is not in docs/architecture.md: add a row with its layer",
        "docs/architecture.md names visionaudit/gone.py, which does not exist",
        "docs/architecture.md puts visionaudit/data/shards.py in layer 'models'; it is in 'data'",
    ]


def test_relative_links_point_to_files_that_exist():
    files = [p for p in doc_files() if p.exists()]
    assert ROOT / "README.md" in files and len(files) > 2  # the README and the docs pages were read
    assert [problem for p in files for problem in broken_links(p)] == []


def test_the_link_check_can_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "data.md").write_text("x")
    page = tmp_path / "docs" / "index.md"
    page.write_text("[data](data.md#where) [gone](gone.md) [web](https://example.org/x.md) [top](#top)\n"
                    "```\n[in code](nowhere.md)\n```\n[ref]: ../README.md\n")
    assert broken_links(page) == ["docs/index.md: link to gone.md, which does not exist",
                                  "docs/index.md: link to ../README.md, which does not exist"]


def test_paths_named_in_the_docs_exist():
    """Module paths in README.md and docs/ follow the code (CHANGELOG.md names old paths on purpose)."""
    pages = [p for p in doc_files() if p.exists() and p.name != "CHANGELOG.md"]
    assert [problem for p in pages for problem in missing_paths(p)] == []


def test_the_path_check_can_fail(tmp_path):
    (tmp_path / "visionaudit" / "data").mkdir(parents=True)
    (tmp_path / "visionaudit" / "data" / "fetch.py").write_text("")
    page = tmp_path / "page.md"
    page.write_text("`visionaudit/data/fetch.py`, `visionaudit/data/`, `visionaudit/datasets.py`\n"
                    "```python\n# visionaudit/mine.py (an example)\n```\n")
    assert missing_paths(page, tmp_path) == ["page.md names visionaudit/datasets.py, which does not exist"]


PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
RELATIVE_PATH = re.compile(r"""["']\.\.?/""")  # "../x" or "./x": a path from one working folder only


def relative_paths_in_examples(page: str) -> list[str]:
    """The lines of a page's Python examples that name a path relative to the folder they are run from."""
    return [line.strip() for block in PYTHON_BLOCK.findall(page) for line in block.splitlines() if RELATIVE_PATH.search(line)]


def test_python_examples_run_from_any_folder():
    # Hunt 34: the quickstart's example read Path("../shared/data/imagenet-sample"), this project's layout only.
    found = {page.name: relative_paths_in_examples(page.read_text(encoding="utf-8"))
             for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    assert not {name: lines for name, lines in found.items() if lines}


def descriptor_fields_undocumented(page: str) -> list[str]:
    """The Family fields a family's author sets that docs/extending.md's table of them leaves out (``defined_in`` is
    set by register_family)."""
    from dataclasses import fields

    from visionaudit.families.registry import Family

    rows = re.findall(r"^\| `([a-z_]+)", page, flags=re.M) + re.findall(r"^\| `[a-z_]+`, `([a-z_]+)`", page, flags=re.M)
    return [f.name for f in fields(Family) if f.name != "defined_in" and f.name not in rows]


def test_every_descriptor_field_is_in_the_family_authors_table():
    assert descriptor_fields_undocumented((ROOT / "docs" / "extending.md").read_text()) == []


def test_the_descriptor_field_check_can_fail():
    page = (ROOT / "docs" / "extending.md").read_text()
    assert descriptor_fields_undocumented(page.replace("| `counts_labelled` |", "| counts |")) == ["counts_labelled"]


def test_the_report_page_names_the_schema_version_written_and_the_oldest_read():
    """rep40: docs/report.md's JSON section said "version 5 (... also read versions 3 and 4)" at schema 7."""
    from visionaudit.version import OLDEST_READABLE, SCHEMA_VERSION

    text = (ROOT / "docs" / "report.md").read_text().split("## JSON", 1)[1]
    stated = re.search(r"report_schema\(\)`\), version (\d+) \(the baseline gate, `compare`, `merge` and `html` also read "
                       r"versions (\d+) to (\d+)\)", text.replace("\n", " "))
    assert stated, "docs/report.md's JSON section does not say the schema version in the usual words"
    assert tuple(map(int, stated.groups())) == (SCHEMA_VERSION, OLDEST_READABLE, SCHEMA_VERSION - 1)


# docs42: the options and commands the docs name are the ones the code registers.
OLD_SPELLING = "the old spelling, deprecated"  # an alias's stand-in help: no row of its own is needed


def registered_run_options() -> dict[str, str]:
    """Each option of ``pytest audits`` (plugins/options.py) with its help; a deprecated other spelling: OLD_SPELLING."""
    recorder = _RecordingParser()
    options_plugin.pytest_addoption(recorder)
    return {name: attrs.get("help", "") if i == 0 else OLD_SPELLING
            for names, attrs in recorder.calls for i, name in enumerate(names)}


def subcommand_options() -> dict[str, dict[str, str]]:
    """Each ``python -m visionaudit`` command's options with their help; a deprecated other spelling: OLD_SPELLING."""
    return {name: {flag: (action.help or "") if flag == action.option_strings[0] else OLD_SPELLING
                   for flag, action in actions.items() if flag not in ("-h", "--help")}
            for name, actions in cli_options().items()}


def _section(page: str, heading: str) -> str:
    return page.split(heading, 1)[1].split("\n## ", 1)[0]


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells: an escaped `\\|` (as in `NAME\\|DIR`) is inside its cell."""
    return re.split(r"(?<!\\)\|", line)


def run_options_table_problems(page: str, options: dict[str, str]) -> list[str]:
    """What docs/options.md's table of `pytest audits` options gets wrong: an option it names that is not registered,
    a registered one (old spellings aside) without a row, a default whose numbers the option's help does not give."""
    rows = {}
    for line in _section(page, "## `pytest audits` options").splitlines():
        if line.startswith("| `--"):
            cells = _cells(line)
            for name in re.findall(r"(--[a-z][a-z0-9-]*)", cells[1]):
                rows[name] = cells[2]
    problems = [f"docs/options.md has a row for {name}, which pytest audits does not have"
                for name in rows if name not in options]
    for name, help_text in options.items():
        if help_text == OLD_SPELLING:
            continue
        if name not in rows:
            problems.append(f"{name} has no row in docs/options.md's table")
            continue
        default = re.search(r"default:?\s*([^)]*)", help_text, flags=re.I)
        stated = re.sub(r"(?<=\d),(?=\d)", "", rows[name])
        for number in re.findall(r"\d+(?:\.\d+)?", default[1] if default else ""):
            if not re.search(rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)", stated):
                problems.append(f"docs/options.md gives {name} the default {rows[name].strip()!r}; its help says "
                                f"default {default[1].strip()!r}")
    return problems


def subcommand_table_problems(page: str, commands: dict[str, dict[str, str]]) -> list[str]:
    """What docs/options.md's table of commands gets wrong: a command or option that does not exist, a command or
    an option (old spellings aside) it leaves out."""
    listed = {}
    for line in _section(page, "## `python -m visionaudit` subcommands").splitlines():
        if (cells := _cells(line)) and len(cells) > 3 and (m := re.match(r" `([a-z-]+)", cells[1])):
            listed[m[1]] = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", cells[2]))
    problems = [f"docs/options.md lists the command {name}, which does not exist" for name in listed if name not in commands]
    for name, options in commands.items():
        if name not in listed:
            problems.append(f"the command {name} has no row in docs/options.md")
            continue
        problems += [f"docs/options.md gives {name} the option {flag}, which it does not have"
                     for flag in sorted(listed[name] - options.keys())]
        problems += [f"docs/options.md leaves out {name}'s option {flag}" for flag, help_text in options.items()
                     if flag not in listed[name] and help_text != OLD_SPELLING]
    return problems


def test_the_options_page_lists_every_option_with_its_default():
    page = (ROOT / "docs" / "options.md").read_text()
    assert run_options_table_problems(page, registered_run_options()) == []
    assert subcommand_table_problems(page, subcommand_options()) == []


def test_the_options_page_checks_can_fail():
    options = {"--audit-seed": "seed (default 0)", "--audit-timeout": "limit (default 1800)", "--audit-new": "new",
               "--audit-images": "images (default 0.5)", "--audit-ref": "x (--ref: the old spelling, deprecated)",
               "--ref": OLD_SPELLING}
    page = ("## `pytest audits` options\n\n| option | default | |\n|---|---|---|\n| `--audit-seed N` | 0 | seed |\n"
            "| `--audit-timeout SECONDS` | 1,200 | limit |\n| `--audit-gone` | | removed |\n"
            "| `--audit-images NAME\\|DIR` | 0.5 | a name or a folder |\n\n## Next\n")
    assert run_options_table_problems(page, options) == [
        "docs/options.md has a row for --audit-gone, which pytest audits does not have",
        "docs/options.md gives --audit-timeout the default '1,200'; its help says default '1800'",
        "--audit-new has no row in docs/options.md's table",
        "--audit-ref has no row in docs/options.md's table"]  # docs42 review: one with an old spelling was not checked
    commands = {"merge": {"-o": "", "--output": ""}, "html": {"--data": "", "--unpaired": OLD_SPELLING},
                "compare": {"--images": "", "--baseline-unpaired": "u (--unpaired: the old spelling, deprecated)"}}
    page = ("## `python -m visionaudit` subcommands\n\n| command | options | what |\n|---|---|---|\n"
            "| `merge PART.json ...` | `-o/--output REPORT.json`, `--force` | join |\n| `old` | | gone |\n"
            "| `compare A B` | `--images NAME\\|DIR` | pairs |\n\n## Next\n")
    assert subcommand_table_problems(page, commands) == [
        "docs/options.md lists the command old, which does not exist",
        "docs/options.md gives merge the option --force, which it does not have",
        "the command html has no row in docs/options.md",
        "docs/options.md leaves out compare's option --baseline-unpaired"]


FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)  # a block: opening to closing
SHELL = ("bash", "sh", "shell", "yaml", "")  # the blocks whose commands are read: a YAML workflow's `run:` too
OPTION = re.compile(r"(?<![\w$-])(--?[a-zA-Z][\w-]*)")


def code_blocks(page: str, *languages: str) -> list[str]:
    """The code blocks of a page in these languages (``` alone: ""), fences paired, so prose is never one."""
    return [m[2] for m in FENCE.finditer(page) if m[1] in languages]


def command_lines(block: str) -> list[str]:
    """The `pytest audits` and `python -m visionaudit` commands of a code block (a YAML `run:` too), continuation
    lines joined, comments and what follows a shell operator (`|| [ $? -eq 1 ]`, `| tee`, `> out`) left out."""
    lines = re.sub(r"\\\n\s*", " ", block).splitlines()
    return [re.split(r"\s(?:\|\|?|&&|;|\d?>>?(?:&\d)?)(?=\s|$)", m[1])[0].split(" # ", 1)[0].split("  #", 1)[0].rstrip()
            for line in lines if (m := re.search(r"((?:pytest audits|python -m visionaudit)\b.*)", line))]


def command_problems(page: str, run_options: dict[str, str], commands: dict[str, dict[str, str]]) -> list[str]:
    """Documented commands that cannot work as written: an option or command that does not exist, and a `compare`
    of the candidate a run paired with --audit-baseline-as OLD that does not pair it the same way (it is refused)."""
    problems = []
    for block in code_blocks(page, *SHELL):
        lines = command_lines(block)
        paired = {m[1] for line in lines if (m := re.search(r"--audit-baseline-as[ =](\S+)", line))}
        for line in lines:
            args = re.sub(r"^(pytest audits|python -m visionaudit)", "", line)  # -m of python -m is no option
            flags = [f.split("=", 1)[0] for f in OPTION.findall(args)]
            if line.startswith("pytest"):
                suite = [f for f in flags if f.startswith("--audit-") or f in ("--model", "--arch", "--device")]
                problems += [f"{line!r}: pytest audits has no option {f}" for f in suite if f not in run_options]
                continue
            name = re.match(r"python -m visionaudit\s+(\S+)", line)
            if not name or name[1] not in commands:
                problems.append(f"{line!r}: no such command")
                continue
            problems += [f"{line!r}: {name[1]} has no option {f}" for f in flags
                         if f not in commands[name[1]] and f not in ("-h", "--help")]
            given = set(re.findall(r"--baseline-as[ =](\S+)", line))
            if name[1] == "compare" and paired - given:
                problems.append(f"{line!r}: the run before it paired its model with --audit-baseline-as "
                                f"{', '.join(sorted(paired - given))}; compare needs --model NEW_SPEC --baseline-as the same")
    return problems


def test_documented_commands_name_options_that_exist():
    """Every `pytest audits ...` and `python -m visionaudit ...` in a code block of README.md and docs/ (docs/ci.md's
    YAML too) runs as written, as far as its options go."""
    run_options, commands = registered_run_options(), subcommand_options()
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = {p.name: command_problems(p.read_text(), run_options, commands) for p in pages}
    assert sum(len(command_lines(b)) for p in pages for b in code_blocks(p.read_text(), *SHELL)) > 20  # they were read
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_the_command_check_can_fail():
    run_options, commands = {"--model": "", "--audit-json": "", "--audit-baseline-as": ""}, {"compare": {"--format": ""},
                                                                                              "merge": {"-o": ""}}
    page = ("```python\nx = 1\n```\nProse, no command: `python -m visionaudit compare`'s exit code.\n\n"  # docs42 review
            "```\npython -m visionaudit merge a.json -o r.json || [ $? -eq 1 ]\n```\n"
            "```bash\npytest audits -n 2 --model m --audit-jsn r.json   # a typo\n"
            "pytest audits --model NEW --audit-baseline-as old \\\n   --audit-json new.json\n"
            "python -m visionaudit compare r.json new.json --format markdown\npython -m visionaudit merj a.json\n```\n"
            "```yaml\n      - run: python -m visionaudit compare a.json b.json --formt table\n```\n")
    assert command_problems(page, run_options, commands) == [
        "'pytest audits -n 2 --model m --audit-jsn r.json': pytest audits has no option --audit-jsn",
        "'python -m visionaudit compare r.json new.json --format markdown': the run before it paired its model with "
        "--audit-baseline-as old; compare needs --model NEW_SPEC --baseline-as the same",
        "'python -m visionaudit merj a.json': no such command",
        "'python -m visionaudit compare a.json b.json --formt table': compare has no option --formt"]


def test_every_audit_option_the_docs_name_exists():
    """A `--audit-*` option named anywhere in README.md or docs/ (prose too) is one the run has."""
    options = registered_run_options()
    named = {(p.name, o) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             for o in re.findall(r"(?<![\w-])--audit-[a-z][a-z0-9-]*", p.read_text())}
    assert len(named) > 20 and sorted((page, o) for page, o in named if o not in options) == []


def yaml_problems(page: str) -> list[str]:
    """The YAML examples of a page (GitHub Actions workflows) that do not load: GitHub refuses such a workflow."""
    import yaml  # PyYAML, in the [test] extra: this check runs in every CI, never skipped
    problems = []
    for block in code_blocks(page, "yaml", "yml"):
        try:
            yaml.safe_load(block)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at its line {mark.line + 1}" if mark else ""
            problems.append(f"the block {block.splitlines()[0]!r}...: {getattr(e, 'problem', None) or e}{where}")
    return problems


def test_the_yaml_examples_load():
    """docs42: docs/ci.md's sharded workflow wrote `with: { name: part-${{ matrix.shard }}, ... }`, a `{` inside a YAML
    flow mapping: the file does not parse, and GitHub refuses the workflow."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert {p.name: problems for p in pages if (problems := yaml_problems(p.read_text()))} == {}


def toml_problems(page: str) -> list[str]:
    """The TOML examples of a page (audit.toml, a package's pyproject.toml) that do not load as written."""
    from visionaudit.config import tomllib

    problems = []
    for block in code_blocks(page, "toml"):
        try:
            tomllib.loads(block)
        except tomllib.TOMLDecodeError as e:
            problems.append(f"the block {block.splitlines()[0]!r}...: {e}")
    return problems


def test_the_toml_examples_load():
    """docs42: docs/shape_bias.md's category_map example ended its inline table with `...`, which is no TOML."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert {p.name: problems for p in pages if (problems := toml_problems(p.read_text()))} == {}
    assert toml_problems("```toml\n[a]\nb = { c = 1, ... }\n```\n```toml\n[ok]\n```\n") == [
        "the block '[a]'...: Invalid initial character for a key part (at line 2, column 14)"]


def test_the_yaml_check_can_fail():
    page = "```yaml\njobs:\n  a:\n    steps:\n      - with: { name: part-${{ matrix.shard }} }\n```\n```yaml\nok: 1\n```\n"
    (problem,) = yaml_problems(page)
    assert problem == "the block 'jobs:'...: expected ',' or '}', but got '{' at its line 4"
