"""Reading the report files the commands are given, and the model pairs they are compared by."""

from __future__ import annotations

import argparse

from visionaudit.errors import VisionAuditError


def read_json(path: str) -> dict:
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise VisionAuditError(f"{path} is not a readable JSON report ({e})") from None


def model_pairs(args: argparse.Namespace, which: str) -> dict[str, str] | None:
    """``--model NEW_SPEC --baseline-as OLD_SPEC`` as {new: old}; None (pair by spec) without them."""
    from visionaudit.models.specs import canonical_spec

    if bool(args.model) != bool(args.baseline_as):
        raise VisionAuditError(f"--model and --baseline-as go together: {which}")
    return {canonical_spec(args.model): canonical_spec(args.baseline_as)} if args.model else None
