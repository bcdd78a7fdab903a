"""Layer 4, the audit families: the registry and threshold schema (``registry``, ``thresholds``), the
judging of what a test measured by the family's assessors (``assessment``, ``outcomes``), then one module or
subpackage per family, each with its descriptor.

``visionaudit.families.Family`` and the registry's functions are public API, re-exported here; the
family modules themselves are imported by the registry on first use, not by this package.
"""

from visionaudit.families.registry import (
    BUILTIN_MODULES,
    ENTRY_POINT_GROUP,
    Family,
    families,
    get_family,
    markdown_table,
    readme_table_problems,
    register_family,
)

__all__ = ["BUILTIN_MODULES", "ENTRY_POINT_GROUP", "Family", "families", "get_family", "markdown_table",
           "readme_table_problems", "register_family"]
