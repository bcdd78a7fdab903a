"""The docs stay true: docs/architecture.md names every module with its layer, every relative link in
README.md and docs/ points to a file that exists, and so does every repository path they name."""

from __future__ import annotations

import re
from pathlib import Path

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
