"""Markers: the one place they are registered and read.

``@pytest.mark.audit("NAME")`` puts a test in a family; each registered family is also a marker of
its own, added to the family's tests at collection, so ``-m robustness`` selects them.
"""

from __future__ import annotations

import pytest

from visionaudit.families.registry import families, get_family

STATIC_MARKERS = (
    "audit(name): the audit family a test belongs to (python -m visionaudit families lists them)",
    "slow: reads the real data (../shared/data) or starts the real audits, or (slow(data=False)) is an integration run of "
    "a few seconds that needs no data; pytest tests -m 'not slow' is the quick loop",
)


def family_of(item: pytest.Item) -> str | None:
    """The family named by the item's ``audit`` marker, or None for a test outside every family."""
    mark = item.get_closest_marker("audit")
    if mark is None or not mark.args:
        return None
    return str(mark.args[0])


def splits_by_image(item: pytest.Item) -> bool:
    """Whether ``item``'s family splits by image (shards give it their part of each image set)."""
    name = family_of(item)
    return name is not None and name in families() and families()[name].splits_by_image


def require_family(item: pytest.Item) -> str:
    """The item's family, checked against the registry (an unknown name says which ones exist)."""
    name = family_of(item)
    if name is None:
        pytest.fail(f"{item.nodeid} needs @pytest.mark.audit('NAME') (or pytestmark) to record or get thresholds", pytrace=False)
    return get_family(name).name


def pytest_configure(config: pytest.Config) -> None:
    for line in STATIC_MARKERS:
        config.addinivalue_line("markers", line)
    for name, family in families().items():
        config.addinivalue_line("markers",
                                f"{name}: the {name} audit family ({family.key_metric}); added from @pytest.mark.audit")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    known = families()
    for item in items:
        name = family_of(item)
        if name in known:
            item.add_marker(getattr(pytest.mark, name))
