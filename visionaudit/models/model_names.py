"""A model's name (``?name=NAME`` in any spec): what people call it, its id in test ids, report rows, messages and
baseline pairing. The name is never part of the canonical spec, which says what the model is (audit.toml's
per-model tables and the logit cache's key go by that), so renaming a model changes no number."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from visionaudit.errors import SpecError

# No "?", "&", "/", ":", "[" or space: a name never reads as a spec or a path, nor breaks a test id's brackets.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
MODEL_NAME_RULE = "a letter or digit, then up to 63 letters, digits, '.', '_', '+' or '-'"


def given_name(raw: str) -> str:
    """The ``?name=`` of the spec ``raw`` ("" without one), refused when it breaks the rule."""
    query = raw.strip().partition("?")[2]
    # "+" kept as written (the rule allows it), not read as a space the way a URL query's is
    names = [v.strip() for k, v in parse_qsl(query.replace("+", "%2B"), keep_blank_values=True) if k.strip() == "name"]
    if names and not MODEL_NAME.match(names[0]):
        raise SpecError(f"--model {raw.strip()}: ?name={names[0]} is not a model name; a name is {MODEL_NAME_RULE} "
                        "(the spec itself stays in the report beside the name)")
    return names[0] if names else ""


def named_spec(canonical: str, model_id: str) -> str:
    """A spec that parses to the model whose canonical spec and id these are: ``canonical`` with ``?name=model_id``
    when the id is a name (for code that takes a model as a spec string and says its id)."""
    if model_id == canonical:
        return canonical
    return canonical + ("&" if "?" in canonical else "?") + f"name={model_id}"

