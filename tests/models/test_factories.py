"""``package.module:factory`` checked at startup without importing the team's module (stop-33 review, defect 5 and doubt
D2): a module or factory typo is named, with the closest function; what the source cannot settle is left to the load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from visionaudit.models.factories import factory_problem

# Every module below raises when imported: a check that imported it would fail the test.
BOOM = "raise RuntimeError('imported: the check must only read the source')\n"


@pytest.fixture
def path(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not the modules' folder: no working-directory leniency
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    (tmp_path / "lib").mkdir()
    return tmp_path / "lib"


def _modules(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_module_is_read_not_imported_and_a_typo_names_the_closest_factory(path):
    _modules(path, {"fa_team.py": BOOM + "import torch\n\ndef factory():\n    return None\n\nclass Net:\n    pass\n"})
    assert factory_problem("fa_team:factory") is None
    assert factory_problem("fa_team:Net") is None
    problem = factory_problem("fa_team:factroy")
    assert problem == (f"fa_team ({path / 'fa_team.py'}) has no callable factroy (did you mean fa_team:factory?); the spec "
                       "package.module:factory names a function returning an nn.Module")
    assert "fa_team" not in sys.modules


def test_a_package_is_not_imported_to_find_its_submodule(path):
    _modules(path, {"fa_pkg/__init__.py": BOOM, "fa_pkg/models.py": BOOM + "def build():\n    pass\n", "fa_plain.py": "x = 1\n"})
    assert factory_problem("fa_pkg.models:build") is None
    assert "has no callable biuld (did you mean fa_pkg.models:build?)" in factory_problem("fa_pkg.models:biuld")
    assert factory_problem("fa_pkg.modles:build") == (
        "cannot import fa_pkg.modles for the factory fa_pkg.modles:build (no module named 'fa_pkg.modles' on the import "
        "path); is it installed or on PYTHONPATH?")
    assert "no module named 'fa_tema'" in factory_problem("fa_tema.models:build")
    assert "no module named 'fa_plain.sub'" in factory_problem("fa_plain.sub:f")  # a module is no package
    assert "fa_pkg" not in sys.modules and "fa_pkg.models" not in sys.modules


@pytest.mark.parametrize("source", [
    "from os.path import *\n",                             # a star import may bring it
    "def __getattr__(name):\n    return print\n",          # PEP 562 answers any name
    "def _lazy(name):\n    return print\n__getattr__ = _lazy\n",  # ... bound by assignment
    "import lazy_loader as lazy\n__getattr__, __dir__, __all__ = lazy.attach(__name__, ['fa_made'])\n",  # lazy loading
    "globals()['fa_made'] = print\n",                      # made at run time
    "exec('def fa_made(): pass')\n",
    "import sys\nsetattr(sys.modules[__name__], 'fa_made', print)\n",
    "vars()['fa_made'] = print\n",
    "def f(:\n",                                           # unparsable: importing it will say
])
def test_what_the_source_cannot_settle_is_left_to_the_load(path, source):
    _modules(path, {"fa_dyn.py": source})
    assert factory_problem("fa_dyn:fa_made") is None


def test_names_bound_any_way_count_and_an_imported_module_is_asked(path):
    _modules(path, {"fa_bound.py": "from functools import partial as fa_p\nif True:\n    fa_a = lambda: 1\n"
                                   "try:\n    import fa_missing as fa_b\nexcept ImportError:\n    fa_b = None\n"})
    for name in ("fa_p", "fa_a", "fa_b"):
        assert factory_problem(f"fa_bound:{name}") is None, name
    # Already imported (json, by the suite itself): the module is asked, and a non-callable name is refused.
    assert factory_problem("json:loads") is None
    assert "json" in sys.modules and "has no callable decoder (did you mean" in factory_problem("json:decoder")


def test_a_module_only_in_the_working_directory_is_left_to_the_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fa_here.py").write_text("def f():\n    pass\n")
    assert factory_problem("fa_here:g") is None  # an xdist worker started elsewhere may have it on its path
    assert "no module named 'fa_nowhere'" in factory_problem("fa_nowhere:f")
