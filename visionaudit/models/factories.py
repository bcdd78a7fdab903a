"""A ``package.module:factory`` spec checked without running the team's code.

The module is found on the import path as ``import`` would find it (its parent packages are not imported) and its
source is read for the name, so a typo in the module or the factory stops the run at startup (exit 4) on the xdist
controller, which imports no torch (a factory's module almost always does). Where the source cannot say (an
extension module, ``from x import *``, a module ``__getattr__``, names made with ``globals()`` or ``exec``, a
package that extends its own ``__path__``), nothing is refused: loading the factory says what is wrong.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from typing import Any

from visionaudit.errors import closest

# Calls that can bind a module's names at run time (setattr(sys.modules[__name__], ...) too): such a module is left to the load.
_DYNAMIC_CALLS = {"globals", "exec", "vars", "setattr"}


class _CannotTell(Exception):
    """The source does not settle it: the load will."""


def factory_problem(target: str) -> str | None:
    """What is wrong with the factory ``module:attr`` (one line naming the fix), or None when it is there or the
    source cannot tell."""
    mod_name, _, attr = target.partition(":")
    loaded = sys.modules.get(mod_name)
    if loaded is not None:  # imported already (by this process): ask it, nothing runs
        if callable(getattr(loaded, attr, None)):
            return None
        near = closest(attr, [n for n in dir(loaded) if not n.startswith("_") and callable(getattr(loaded, n, None))])
        return _no_callable(mod_name, getattr(loaded, "__file__", None), attr, near)
    try:
        spec, missing = _find(mod_name)
        if spec is None:
            return (f"cannot import {mod_name} for the factory {target} (no module named {missing!r} on the import path); "
                    "is it installed or on PYTHONPATH?")
        origin = spec.origin
        if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
            return None  # an extension module, a namespace package, a zip: the load will say
        defined, top = _names(origin)
    except _CannotTell:
        return None
    if attr in defined:
        return None
    return _no_callable(mod_name, origin, attr, closest(attr, top))


def _no_callable(mod_name: str, origin: str | None, attr: str, near: str | None) -> str:
    where = f" ({origin})" if origin else ""
    hint = f" (did you mean {mod_name}:{near}?)" if near else ""
    return (f"{mod_name}{where} has no callable {attr}{hint}; the spec package.module:factory names a function "
            "returning an nn.Module")


def _find(mod_name: str) -> tuple[Any, str]:
    """``(spec, "")`` for the module, or ``(None, the first part not found)``; no package is imported."""
    parts = mod_name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: found, not run
    except (ImportError, ValueError):
        raise _CannotTell from None
    if spec is None:
        if os.path.isfile(parts[0] + ".py") or os.path.isdir(parts[0]):
            raise _CannotTell  # in the working directory: a worker started elsewhere may have it on its path
        return None, parts[0]
    for i in range(1, len(parts)):
        parent, full = ".".join(parts[:i]), ".".join(parts[: i + 1])
        if parent in sys.modules:
            try:
                spec = importlib.util.find_spec(full)  # the parent is imported already: nothing runs
            except (ImportError, ValueError):
                raise _CannotTell from None
        else:
            locations = spec.submodule_search_locations
            if locations is None:
                return None, full  # the parent is a module, not a package
            if spec.origin and spec.origin.endswith(".py") and "__path__" in _source(spec.origin):
                raise _CannotTell  # a package that extends its own path (pkgutil.extend_path)
            spec = _find_in(full, list(locations))
        if spec is None:
            return None, full
    return spec, ""


def _find_in(full: str, path: list[str]) -> Any:
    """What the import system finds for ``full`` in its parent's ``path``, asking each finder as ``import`` does."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(full, path, None)
        except Exception:  # noqa: BLE001  (a finder of another tool failing: not this check's to judge)
            raise _CannotTell from None
        if spec is not None:
            return spec
    return None


def _source(origin: str) -> str:
    try:
        with open(origin, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        raise _CannotTell from None


def _names(origin: str) -> tuple[set[str], list[str]]:
    """Every name the module's source binds anywhere (generous: a local of the same name counts), and the functions
    and classes it defines at its top level (for "did you mean"); cannot tell where names are made at run time."""
    try:
        tree = ast.parse(_source(origin))
    except (SyntaxError, ValueError):
        raise _CannotTell from None  # importing it will say
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            if node.name == "*":
                raise _CannotTell
            bound.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            raise _CannotTell
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    top = _top_level_defs(tree.body)
    if "__getattr__" in bound:  # bound any way: def, assignment, lazy.attach(...)'s tuple, an import
        raise _CannotTell  # a module __getattr__ (PEP 562) answers names the source does not bind
    return bound, sorted(top)


def _top_level_defs(body: list[ast.stmt]) -> set[str]:
    out: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                out |= _top_level_defs(getattr(node, block, []) or [])
            for handler in getattr(node, "handlers", []):
                out |= _top_level_defs(handler.body)
    return out
