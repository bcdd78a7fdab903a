"""The ImageNet-1k class space: WNIDs in class-index order (sorted), shipped with the package."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from visionaudit.errors import DataError


@lru_cache(maxsize=1)
def wnids() -> tuple[str, ...]:
    """The 1,000 ILSVRC-2012 WNIDs; line i of the list is class index i."""
    text = resources.files("visionaudit").joinpath("resources/imagenet_wnids.txt").read_text()
    ids = tuple(line.strip() for line in text.splitlines() if line.strip())
    assert len(ids) == 1000 and list(ids) == sorted(ids), "the shipped WNID list must be the 1,000 sorted WNIDs"
    return ids


@lru_cache(maxsize=1)
def wnid_to_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(wnids())}


NOT_A_WNID = "is not an ImageNet-1k WNID (n########, one of the 1,000 ILSVRC-2012 classes)"


def class_index(wnid: str) -> int:
    try:
        return wnid_to_index()[wnid]
    except KeyError:
        raise DataError(f"{wnid!r} {NOT_A_WNID}") from None
