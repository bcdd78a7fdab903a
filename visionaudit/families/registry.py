"""Audit families: each declared once, beside its core code, by a :class:`Family` descriptor.

A family is one kind of audit (accuracy, shape_bias, ...): its name is the pytest marker its tests
carry (``@pytest.mark.audit("shape_bias")``, also selectable as ``-m shape_bias``), its threshold
schema (each key with its default) is what ``[audits.NAME]`` in audit.toml may hold, its key metric and direction are what the
summaries show, and its optional aggregate and summary lines are what the report computes across
models. Config validation, marker registration, the report, the summaries and the README's family
table all read this registry, so adding a family is its core module (with the descriptor) and its
audit file.

A family outside this package registers with :func:`register_family` before the config is read: at
import time of a conftest.py or pytest plugin, or through the ``visionaudit.families`` entry-point
group (``module:ATTRIBUTE`` naming a Family, or a module that registers on import).
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Callable, Mapping

from visionaudit.errors import ConfigError, unknown_name
from visionaudit.families.thresholds import Field

# The families shipped with the suite, in the order the summaries list them.
BUILTIN_MODULES = (
    "visionaudit.families.accuracy",
    "visionaudit.families.shape_bias",
    "visionaudit.families.channel_bias",
    "visionaudit.families.robustness",
    "visionaudit.families.corruption",
    "visionaudit.families.conversion",
    "visionaudit.families.deployment",
    "visionaudit.families.baseline",
)
ENTRY_POINT_GROUP = "visionaudit.families"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def direction_words(higher_is_better: bool | None) -> str:
    """How a direction reads: the summaries', the README table's and the page's one wording."""
    return {True: "higher is better", False: "lower is better"}.get(higher_is_better, "no direction")


@dataclass(frozen=True)
class CountsLabelled:
    """A gate that counts the run's labelled images (``require_count`` against its ``min_images``): how many it counts,
    from its own bounds, so that a count below ``min_images`` is said at startup, not found after its tests ran.

    - ``cap``: the bound (a key of its thresholds) of the stratified subset it takes of them: it counts
      ``min(cap, N)`` of the run's N (0: all N); "" for all N.
    - ``unless``: the run option (a field of the run's settings, e.g. ``"imagenet_c"``) under which it scores images of
      its own instead: set, the count is not the labelled images'.
    - ``measures``: below ``min_images`` its tests still measure and record (accuracy, robustness); False: its
      assessor stops at the count, before measuring (corruption, deployment), and the startup note says so.
    """

    cap: str = ""
    unless: str = ""
    measures: bool = True

    def count(self, thresholds: Mapping[str, Any], n_images: int) -> int:
        """What the gate counts of ``n_images`` labelled images under ``thresholds``."""
        cap = int(thresholds[self.cap]) if self.cap else 0
        return min(cap, n_images) if cap else n_images


@dataclass(frozen=True)
class Family:
    """Everything the suite needs to know about one audit family.

    - ``aggregate(entries)``: results across this family's report entries (every model), or None;
      it may add metrics to the entries (robustness writes its Holm-adjusted p-values back).
    - ``summary_lines(report)``: lines for the terminal and step summaries, given the whole report.
    - ``thresholds``: ``{key: Field}``; a field's ``default`` applies when audit.toml does not set the key
      (:attr:`defaults`), so a family needs no audit.toml entry.
    - ``assessors``: ``{test name: assessor}``, the functions that judge its gates from what a test measured
      (visionaudit/families/assessment.py); a partial report stores one as ``"<family>.<test name>"``.
    """

    name: str
    gates: str  # what it gates, one sentence (README table)
    key_metric: str
    higher_is_better: bool | None  # None: no direction (a vector or a range, judged by tolerance)
    thresholds: Mapping[str, Field]
    metrics: tuple[str, ...] = ()  # the other metrics it records, for the README table
    audit_file: str = ""  # default audits/test_<name>.py
    moved_keys: Mapping[str, str] = field(default_factory=dict)  # old key -> where it lives now
    directions: Mapping[str, bool | None] = field(default_factory=dict)  # other metrics' directions (baseline comparisons)
    # Its tests judge per-image data through an assessor (visionaudit/families/assessment.py), so shards split its
    # images and a merge re-judges them; a family without one runs whole in shard 1.
    splits_by_image: bool = False
    # test name -> assessor(record, measured, thresholds, context); stored in partial reports as "<family>.<test name>"
    assessors: Mapping[str, Callable[..., None]] = field(default_factory=dict)
    aggregate: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None
    summary_lines: Callable[[dict[str, Any]], list[str]] | None = None
    defined_in: str = ""
    # Under pytest-xdist, its tests of one model run on one worker: they share a computation that one of them
    # reads whole (plugins/distribution.py).
    one_worker_per_model: bool = False
    # The family whose per-model work its tests reuse (the baseline's live side reads the corruption run): under
    # pytest-xdist its tests of a model run on that family's worker for the model, so the work is done once.
    shares_worker_with: str | None = None
    # A model whose tests of this family all end skipped or not judged has not passed it (the baseline: a
    # comparison set that compared nothing), even where other families judged that model.
    needs_a_judgement: bool = False
    # What builds its section of the HTML page: a callable given the page's inputs
    # (visionaudit.html.sections.SectionInputs) returning a section dict or None, or a "module:function"
    # string naming one, resolved when the page is drawn (a family's module need not import the html layer).
    # None: the generic section (its entries with the key metric). Families naming one builder share its section.
    html_section: str | Callable[[Any], dict[str, Any] | None] | None = None
    # Metrics the summaries show when an entry has no key metric (corruption: a model of its own label space has no mCE).
    alt_key_metrics: tuple[str, ...] = ()
    # How many of the run's labelled images its gate counts against its ``min_images`` (:class:`CountsLabelled`): a
    # count below it, known at startup, is said then (visionaudit/families/sample_floor.py). None: it counts images of
    # its own (stimuli) or none.
    counts_labelled: CountsLabelled | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"family name {self.name!r} must be lower_snake_case (it is a pytest marker)")
        if not self.audit_file:
            object.__setattr__(self, "audit_file", f"audits/test_{self.name}.py")
        # Checked here, not found at startup as an AttributeError (True) or a warning silently never given (a typo)
        if self.counts_labelled is not None and not isinstance(self.counts_labelled, CountsLabelled):
            raise ValueError(f"the {self.name} family's counts_labelled must be a visionaudit.CountsLabelled or None, "
                             f"not {self.counts_labelled!r} (CountsLabelled() for all of the run's labelled images)")
        cap = self.counts_labelled.cap if self.counts_labelled else ""
        if cap and cap not in self.thresholds:
            raise ValueError(f"the {self.name} family's counts_labelled cap {cap!r} is not one of its thresholds "
                             f"({', '.join(self.thresholds) or 'none'})")

    @property
    def direction(self) -> str:
        return direction_words(self.higher_is_better)

    def higher_is_better_for(self, metric: str) -> bool | None:
        """The direction of ``metric``: the key metric's, or the one ``directions`` gives."""
        if metric == self.key_metric:
            return self.higher_is_better
        if metric not in self.directions:
            raise KeyError(f"the {self.name} family gives no direction for {metric!r}")
        return self.directions[metric]

    @property
    def defaults(self) -> dict[str, Any]:
        """The bounds that apply when audit.toml sets nothing: each field's default (copies), in schema order."""
        return {key: f.default_value() for key, f in self.thresholds.items() if f.has_default}

    def assessor(self, test: str) -> Callable[..., None]:
        """The assessor that judges ``test`` (a name in :attr:`assessors`)."""
        if test not in self.assessors:
            raise ValueError(unknown_name(f"assessor of the {self.name} family", test, self.assessors))
        return self.assessors[test]

    def field(self, key: str) -> Field:
        try:
            return self.thresholds[key]
        except KeyError:
            raise ConfigError(unknown_name(f"threshold of the {self.name} family", key, self.thresholds)) from None

    def describe(self) -> dict[str, Any]:
        """What a report reader needs to interpret this family's numbers without the code."""
        return {"key_metric": self.key_metric, "higher_is_better": self.higher_is_better, "gates": self.gates,
                "directions": {self.key_metric: self.higher_is_better, **self.directions}}


_REGISTRY: dict[str, Family] = {}
_loaded = False


def register_family(family: Family) -> Family:
    """Add ``family`` to the registry (public API). Registering the same name again from the module
    that first registered it replaces it (a re-import); from elsewhere it is an error."""
    if not family.defined_in:
        family = replace(family, defined_in=sys._getframe(1).f_globals.get("__name__", ""))
    existing = _REGISTRY.get(family.name)
    if existing is not None and existing is not family and existing.defined_in != family.defined_in:
        raise ValueError(f"an audit family named {family.name!r} is already registered (from {existing.defined_in or 'unknown'})")
    _REGISTRY[family.name] = family
    return family


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, Family):
            register_family(obj)


def families() -> dict[str, Family]:
    """Every registered family: the built-in ones in their order, then the others as registered."""
    _load()
    builtin = [m.rsplit(".", 1)[1] for m in BUILTIN_MODULES]
    order = {name: i for i, name in enumerate(builtin)}
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (order.get(kv[0], len(order)), list(_REGISTRY).index(kv[0]))))


def get_family(name: str) -> Family:
    known = families()
    if name not in known:
        raise ConfigError(unknown_name("audit family", name, known))
    return known[name]


# -- the README's family table --------------------------------------------------------------------

README_START = "<!-- families:start (generated from the family registry: python -m visionaudit families --markdown) -->"
README_END = "<!-- families:end -->"


def markdown_table(selected: Mapping[str, Family] | None = None) -> str:
    rows = ["| family | audit file | what it gates | key metric | also recorded |", "|---|---|---|---|---|"]
    for fam in (selected or families()).values():
        also = ", ".join(f"`{m}`" for m in fam.metrics) or "-"
        gates = fam.gates.replace("|", "\\|")  # a pipe would end the cell
        rows.append(f"| `{fam.name}` | `{fam.audit_file}` | {gates} | `{fam.key_metric}` ({fam.direction}) | {also} |")
    return "\n".join(rows)


def readme_table_problems(readme_text: str) -> list[str]:
    """What is wrong with the family table in a README (empty when it matches the registry)."""
    if README_START not in readme_text or README_END not in readme_text:
        return [f"the README has no generated family table: put the markers {README_START!r} and {README_END!r} around it"]
    current = readme_text.split(README_START, 1)[1].split(README_END, 1)[0].strip()
    expected = markdown_table()
    if current == expected:
        return []
    have = set(current.splitlines())
    problems = [f"missing or changed row: {line}" for line in expected.splitlines() if line not in have]
    want = set(expected.splitlines())
    problems += [f"row not in the registry: {line}" for line in current.splitlines() if line not in want]
    return problems or ["the table's rows are out of order; regenerate it: python -m visionaudit families --markdown"]
