"""Reading the report files the commands are given, and the model pairs they are compared by."""

from __future__ import annotations

import argparse

from visionaudit.errors import VisionAuditError, empty_value


def read_json(path: str) -> dict:
    import json
    from pathlib import Path

    if not path.strip():  # an unset CI variable: not the working directory
        raise VisionAuditError(empty_value("a report path", "the --audit-json file of a run"))
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise VisionAuditError(f"{path} is not a readable JSON report ({e})") from None


def model_pairs(args: argparse.Namespace, which: str) -> dict[str, str] | None:
    """``--model NEW --baseline-as OLD`` (each a model's id: a spec, or a ``?name=``) as {new: old}; None (pair by id)
    without them."""
    from visionaudit.models.model_ids import model_id

    if bool(args.model) != bool(args.baseline_as):
        raise VisionAuditError(f"--model and --baseline-as go together: {which}")
    return {model_id(args.model): model_id(args.baseline_as)} if args.model else None
