"""The id a text written for a model stands for (``--audit-baseline-as``, ``[baseline.pairs]``, ``compare``): a
spec's, or a bare model name. Apart from model_names.py, which specs.py imports: this reads both."""

from __future__ import annotations

from visionaudit.errors import VisionAuditError
from visionaudit.models.model_names import MODEL_NAME, given_name
from visionaudit.models.specs import canonical_spec


def model_id(text: str, arch: str | None = None) -> str:
    """The id ``text`` names: a spec's (its ``?name=``, else its canonical form), or a bare name as written (a
    baseline's model, whose spec need not parse here). A text that is neither raises the spec's error."""
    try:
        return given_name(text) or canonical_spec(text, arch)
    except VisionAuditError:
        if MODEL_NAME.match(text.strip()):
            return text.strip()
        raise
