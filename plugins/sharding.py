"""``--audit-shard I/N``: this job audits its share of the images; ``visionaudit merge`` joins the shards.

The families that split by image (``Family.splits_by_image``) see the shard's part of every image set
(fixtures/data.py); the others (weight shares, conversion folds, fixed subsets) run whole in shard 1 and
are deselected in the other shards. A shard is never compared with a baseline: merge the shards, then
``python -m visionaudit compare BASELINE.json MERGED.json``.
"""

from __future__ import annotations

import pytest

from visionaudit.families.registry import families

from .markers import splits_by_image
from .selection import deselect_own
from .settings import get_settings


@pytest.hookimpl(trylast=True)  # after the baseline plugin's own deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = get_settings(config).shard
    if shard is None or shard.first:
        return
    whole = [item for item in items if not splits_by_image(item)]
    if whole:  # they run in shard 1: here they are not tests that could run and did not
        deselect_own(config, whole)
        items[:] = [item for item in items if splits_by_image(item)]


def pytest_report_header(config: pytest.Config) -> list[str]:
    shard = get_settings(config).shard
    if shard is None or hasattr(config, "workerinput"):
        return []
    split = ", ".join(name for name, family in families().items() if family.splits_by_image)
    return [f"shard {shard}: the images whose sample id hashes to {shard.index} of {shard.count} ({split}); "
            + ("the audits that do not split by image run whole here" if shard.first else "the other audits run in shard 1")]
