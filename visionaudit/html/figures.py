"""The HTML report's figures: matplotlib (Agg) drawn to inline SVG, text kept as text (small, searchable).

Each function takes what visionaudit/html/figure_data.py extracts and returns an SVG string, or None when
there is nothing to draw.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import matplotlib
import numpy as np

from visionaudit.families.corruption.imagenet_c import ALL_CORRUPTIONS

matplotlib.use("Agg")  # no display, no GUI toolkit: CI machines and notebooks alike

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "visionaudit", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 100, "text.parse_math": False})  # a "$" in a spec is text
MARKERS = "os^v<>ph*X"  # no diamond: the human references are diamonds
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
REFERENCE_STYLE = {"humans (average)": ("#c03030", "-"), "AlexNet": ("#777777", "--"), "torchvision ResNet-50": ("#777777", ":"),
                   "VGG-16": ("#777777", "-."), "ResNet-50 trained on Stylized-ImageNet": ("#999999", (0, (1, 3)))}


def styles(models: list[str]) -> dict[str, tuple[str, str]]:
    """One (marker, colour) per model, the same in every figure: in the report's model order."""
    return {m: (MARKERS[k % len(MARKERS)], COLORS[k % len(COLORS)]) for k, m in enumerate(models)}


def _label(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _xerr(value: float, ci: Any) -> list[list[float]]:
    """Error bars of an interval around its estimate (never negative, nothing when the interval is unknown)."""
    if not ci or any(not isinstance(v, (int, float)) for v in ci):
        return [[0.0], [0.0]]
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate: bytes with nothing to show
    return text[text.index("<svg"):]  # the XML header and doctype do not belong inside HTML


def shape_bias_figure(data: dict[str, Any], human_per_category: dict[str, float] | None = None,
                      style: dict[str, tuple[str, str]] | None = None) -> str | None:
    """Shape fraction per category, one marker per model (Geirhos et al. 2019, Fig. 4 style), with the
    published overall values as vertical lines and, when given, per-category human references."""
    if not data["models"]:
        return None
    cats = data["categories"]
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(cats) + 1.6))
    ys = list(range(len(cats)))[::-1]
    for name, value in data["references"].items():
        color, linestyle = REFERENCE_STYLE.get(name, ("#888888", "--"))
        ax.axvline(value, color=color, linestyle=linestyle, linewidth=1, label=f"{name}: {value:.3f} (published)")
    if human_per_category:
        ax.scatter([human_per_category.get(c, math.nan) for c in cats], ys, marker="D", s=26, facecolors="none",
                   edgecolors="#c03030", label="humans (given decisions), per category")
    style = style or styles(list(data["models"]))
    for model, m in data["models"].items():
        xs = [m["per_category"].get(c, math.nan) for c in cats]
        marker, color = style[model]
        ax.scatter([x if x is not None else math.nan for x in xs], ys, marker=marker, s=30,
                   **_marked(color, m.get("not_judged"), scatter=True), label=_model_label(model, m, _label(m["overall"])))
    ax.set_yticks(ys, cats)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of shape decisions (shape / (shape + texture))")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, ncol=2, frameon=False)
    return _svg(fig)


HUMAN_COLOR = "#c03030"


NOT_JUDGED = " (not judged)"  # beside a model whose shape-bias entry was not judged (its kappas recorded all the same)
NOT_JUDGED_DRAWN = " (not judged: hollow, held to no bound)"  # a figure's legend: what a hollow marker is


def _marked(color: str, not_judged: Any, scatter: bool = False) -> dict[str, Any]:
    """A marker's colours: filled for a judged value, hollow (edged in the model's colour) for a not-judged one, drawn
    as measured and told apart in the legend (:data:`NOT_JUDGED_DRAWN`); ``scatter``: ax.scatter's keywords."""
    if not not_judged:
        return {"color": color}
    return {"facecolors": "none", "edgecolors": color} if scatter else {"color": color, "markerfacecolor": "none"}


def _model_label(model: str, row: dict[str, Any], value: str | None = None) -> str:
    return f"{model}{NOT_JUDGED_DRAWN if row.get('not_judged') else ''}" + (f": {value}" if value is not None else "")


def error_consistency_figure(data: dict[str, Any], style: dict[str, tuple[str, str]] | None = None) -> str | None:
    """Kappa per human observer (model-vs-human's error-consistency plot): each model's kappa with each observer
    (95 % interval) and its mean as a line; each observer's kappas with the other observers as red diamonds, and
    their mean as a red line; 0 is what independent errors give."""
    observers = data["observers"]
    if not data["models"] or not observers:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    xs = list(range(len(observers)))
    ax.axhline(0.0, color="#bbbbbb", linewidth=0.8)
    humans = [(x, k) for x, s in zip(xs, observers) for k in data["pairwise"].get(s, []) if isinstance(k, (int, float))]
    if humans:
        ax.scatter([x + 0.18 for x, _ in humans], [k for _, k in humans], marker="D", s=12, facecolors="none",
                   edgecolors=HUMAN_COLOR, linewidths=0.8, label="observer vs each other observer")
    mean = data.get("observers_mean")
    if isinstance(mean, (int, float)) and math.isfinite(mean):
        ax.axhline(mean, color=HUMAN_COLOR, linewidth=1, label=f"observers' mean pairwise kappa: {_label(mean)}")
    style = style or styles(list(data["models"]))
    n = len(data["models"])
    for k, (model, m) in enumerate(data["models"].items()):
        marker, color = style.get(model, ("o", "#333333"))
        offset = -0.3 + 0.25 * (k + 0.5) / n  # models left of each observer, the humans right
        points = [(x + offset, m["per_observer"][s]) for x, s in zip(xs, observers) if s in m["per_observer"]]
        points = [(x, r) for x, r in points if isinstance(r.get("kappa"), (int, float))]
        if points:
            errs = [_xerr(r["kappa"], r.get("ci")) for _, r in points]
            ax.errorbar([x for x, _ in points], [r["kappa"] for _, r in points],
                        yerr=[[e[0][0] for e in errs], [e[1][0] for e in errs]], fmt=marker, color=color, markersize=4,
                        elinewidth=0.8, linestyle="none",
                        label=f"{model}{NOT_JUDGED if m.get('not_judged') else ''}: mean kappa {_label(m.get('mean'))}")
        if isinstance(m.get("mean"), (int, float)):
            ax.axhline(m["mean"], color=color, linewidth=1, linestyle="--")
    ax.set_xticks(xs, observers, rotation=45, ha="right")
    ax.set_ylim(-0.2, 1)  # model-vs-human's axis
    ax.set_ylabel("error consistency (Cohen's kappa)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), fontsize=7, ncol=2, frameon=False)
    return _svg(fig)


def accuracy_scatter(rows: list[dict[str, Any]], style: dict[str, tuple[str, str]] | None = None) -> str | None:
    if len(rows) < 2:
        return None
    style = style or styles([r["model"] for r in rows])
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for r in rows:
        marker, color = style[r["model"]]
        ax.scatter(r["clean_top1"], r["shape_bias"], marker=marker, **_marked(color, r.get("not_judged"), scatter=True),
                   label=_model_label(r["model"], r))
    ax.set_xlabel("clean top-1")
    ax.set_ylabel("shape bias")
    for get, put in ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim)):  # fractions: no axis below 0 or past 1
        low, high = get()
        put(max(low, 0.0), min(high, 1.0))
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def channel_bars(data: dict[str, Any]) -> str | None:
    numeric = lambda v: all(isinstance(x, (int, float)) and math.isfinite(x) for x in v) and len(v) == 3  # noqa: E731
    bars = {m: s for m, s in {**data["models"], **data["groups"]}.items() if numeric(s)}  # a null share is in the table only
    if not any(m in bars for m in data["models"]):
        return None
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(bars) + 1.0))
    colors = ("#d04040", "#40a040", "#4060d0")
    names = list(bars)[::-1]
    for y, name in enumerate(names):
        left = 0.0
        for share, color, channel in zip(bars[name], colors, data["channels"]):
            ax.barh(y, share, left=left, color=color, edgecolor="white")
            ax.text(left + share / 2, y, f"{channel} {share:.3f}", ha="center", va="center", color="white", fontsize=7)
            left += share
    ax.axvline(1 / 3, color="#333333", linewidth=0.6, linestyle=":")
    ax.axvline(2 / 3, color="#333333", linewidth=0.6, linestyle=":")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of |first-layer weights| per input channel (dotted: 1/3 each)")
    return _svg(fig)


def robustness_figure(data: dict[str, Any], style: dict[str, tuple[str, str]] | None = None) -> str | None:
    if not data["models"]:
        return None
    style = style or styles(list(data["models"]))
    transforms = sorted({t for per in data["models"].values() for t in per})
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(transforms) * max(1, len(data["models"])) + 1.2))
    n = len(data["models"])
    for k, (model, per) in enumerate(data["models"].items()):
        marker, color = style[model]
        labelled: set[bool] = set()  # the legend names the model once per kind of point: judged, not judged
        for i, t in enumerate(transforms):
            if t not in per:
                continue
            r = per[t]
            y = len(transforms) - 1 - i + (k - (n - 1) / 2) * 0.8 / max(n, 1)
            err = _xerr(r["drop"], r.get("ci"))
            # a not-judged drop (too few images) drawn as measured, hollow, and named so in the legend
            kind = bool(r.get("not_judged"))
            ax.errorbar(r["drop"], y, xerr=err, fmt=marker, capsize=2, **_marked(color, kind),
                        label=None if kind in labelled else _model_label(model, r))
            labelled.add(kind)
            if r.get("significant") and not r.get("not_judged"):
                ax.text(r["drop"] + err[1][0] + 0.01, y, "*", va="center", color=color)
    ax.axvline(0, color="#333333", linewidth=0.6)
    ax.set_yticks(range(len(transforms)), transforms[::-1])
    ax.set_xlabel("top-1 drop with 95 % paired bootstrap interval (* significant, Holm)")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _svg(fig)


def max_diff_figure(rows: list[dict[str, Any]]) -> str | None:
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 0.26 * len(rows) + 1.0))
    floor = 1e-10  # an exact 0 has no place on a log axis: drawn at the floor, labelled as 0
    finite = [r["max_abs_diff"] for r in rows if isinstance(r["max_abs_diff"], (int, float))]
    ceiling = max(finite + [r["bound"] for r in rows if isinstance(r.get("bound"), (int, float))] + [1.0]) * 10
    for y, r in enumerate(rows[::-1]):
        # red only where the table says failed or error: an interrupted, timed-out or not-judged test is no failure
        color = {"passed": "#40a040", "failed": "#d04040", "error": "#d04040"}.get(r["outcome"], "#999999")
        if isinstance(r["max_abs_diff"], (int, float)):
            ax.scatter(max(r["max_abs_diff"], floor), y, color=color, s=18)
        else:  # not a finite number (an overflow): drawn past everything, as a cross
            ax.scatter(ceiling, y, color="#d04040", marker="x", s=24)
        if isinstance(r.get("bound"), (int, float)):
            ax.scatter(r["bound"], y, marker="|", color="#333333", s=80)
    ax.set_xscale("log")
    # The log axis labels itself in mathtext ($\mathdefault{10^{-10}}$), which SVG text with math parsing off
    # shows raw in a browser: plain labels instead (1e-10 ... 10).
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(rows)), [f"{r['model']} {r['audit']} {r['label']}" for r in rows[::-1]], fontsize=7)
    ax.set_xlabel(f"max |logit difference| (dot; 0 drawn at {floor:g}, not finite as x at the right) and its bound (bar)")
    return _svg(fig)


VERDICT_COLORS = {"regression": "#d04040", "warning": "#d09020", "improvement": "#40a040", "unchanged": "#cccccc"}
_CONDITION = re.compile(r"^corruption_(.+)_(\d+)$")  # corruption_<corruption>_<severity> (docs/baseline.md)
SUMMARIES = {"mce": "mCE change (points of the AlexNet-normalized mCE)",
             "mean_error": "mean corruption error change (top-1 error, own label space)"}


def _split_baseline_rows(rows: list[dict[str, Any]]) -> tuple[list, dict[str, list], dict[str, dict]]:
    """The fixed comparisons (a vector one row per component), the corruption summaries by name (``mce``,
    ``mean_error``: their own scales) and the corruption conditions by model as ``{(corruption, severity): row}``."""
    fixed, summaries, conditions = [], {}, {}
    for r in rows:
        name = str(r.get("comparison"))
        m = _CONDITION.match(name)
        if m:
            conditions.setdefault(r["model"], {})[(m.group(1), int(m.group(2)))] = r
        elif name in SUMMARIES:
            if isinstance(r.get("delta"), (int, float)):
                summaries.setdefault(name, []).append(r)
        elif isinstance(r.get("delta"), list):  # a vector (channel shares): one row per component, the comparison's verdict
            fixed += [{**r, "comparison": f"{r['comparison']} {c}", "delta": d, "ci": None}
                      for c, d in zip("RGB", r["delta"]) if isinstance(d, (int, float))]
        elif isinstance(r.get("delta"), (int, float)):
            fixed.append(r)
    return fixed, summaries, conditions


def _delta_rows(ax, rows: list[dict[str, Any]], xlabel: str) -> None:
    for y, r in enumerate(rows[::-1]):
        ax.errorbar(r["delta"], y, xerr=_xerr(r["delta"], r.get("ci")), fmt="o",
                    color=VERDICT_COLORS.get(r["verdict"], "#333333") if r["verdict"] != "unchanged" else "#777777", capsize=2)
    ax.axvline(0, color="#333333", linewidth=0.6)
    shown = lambda r: (r.get("per_class") or {}).get("shown")  # noqa: E731  the per-class bar is one class's change
    ax.set_yticks(range(len(rows)), [f"{r['model']} {r['comparison']}" + (f" ({shown(r)})" if shown(r) else "")
                                     for r in rows[::-1]], fontsize=7)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(xlabel, fontsize=7)


def _benchmark_order(corruption: str) -> tuple[int, str]:
    """The benchmark's order (noise, blur, weather, digital, then the extras), as the corruption family's own figure
    and table; a name outside it goes last, alphabetically."""
    known = corruption in ALL_CORRUPTIONS
    return (ALL_CORRUPTIONS.index(corruption) if known else len(ALL_CORRUPTIONS), "" if known else corruption)


def _condition_grid(ax, model: str, cells: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Corruption x severity: each cell coloured by its verdict, its change in percentage points written in it
    (n/c: not compared)."""
    corruptions = sorted({c for c, _ in cells}, key=_benchmark_order)
    severities = sorted({s for _, s in cells})
    grid = np.ones((len(corruptions), len(severities), 3))
    for (c, s), r in cells.items():
        i, j = corruptions.index(c), severities.index(s)
        grid[i, j] = matplotlib.colors.to_rgb(VERDICT_COLORS.get(r.get("verdict"), "#ffffff"))
        delta = r.get("delta")
        text = f"{100 * delta:+.1f}" if isinstance(delta, (int, float)) else "n/c"
        bold = r.get("verdict") in ("regression", "warning", "improvement")
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5, fontweight="bold" if bold else "normal")
    ax.imshow(grid, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(severities)), [str(s) for s in severities])
    ax.set_yticks(range(len(corruptions)), [c.replace("_", " ") for c in corruptions], fontsize=7)
    ax.tick_params(length=0)
    ax.set_xlabel("severity", fontsize=7)
    ax.set_title(f"{model}: top-1 error change per corruption condition (percentage points)", fontsize=8)


def baseline_plot(rows: list[dict[str, Any]]):
    """The figure of :func:`baseline_figure` (a matplotlib Figure, or None): the fixed comparisons on one axis; each
    corruption summary (mCE in its points, the mean error) on its own axis; each model's corruption conditions as a
    corruption x severity grid, drawn only when there are some."""
    fixed, summaries, conditions = _split_baseline_rows(rows)
    if not fixed and not summaries and not conditions:
        return None
    panels = ([("fixed", fixed, 0.26 * len(fixed) + 0.7)] if fixed else []) + [
        ("summary", (name, rs), 0.26 * len(rs) + 0.7) for name, rs in summaries.items()] + [
        ("grid", (model, cells), 0.2 * len({c for c, _ in cells}) + 0.9) for model, cells in conditions.items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, sum(h for *_, h in panels) + 0.3), squeeze=False,
                             gridspec_kw={"height_ratios": [h for *_, h in panels]})
    for ax, (kind, what, _) in zip(axes[:, 0], panels):
        if kind == "fixed":
            _delta_rows(ax, what, "change against the baseline with 95 % interval (red regression, orange warning, "
                                  "green improvement)")
        elif kind == "summary":
            name, rs = what
            _delta_rows(ax, rs, SUMMARIES[name] + " with 95 % interval")
        else:
            _condition_grid(ax, *what)
    fig.tight_layout()
    return fig


def baseline_figure(rows: list[dict[str, Any]]) -> str | None:
    """Each comparison's change against the baseline on a scale of its own kind (see :func:`baseline_plot`)."""
    fig = baseline_plot(rows)
    return None if fig is None else _svg(fig)


def _yerr(value: float, ci: Any) -> list[float]:
    lo_hi = _xerr(value, ci)
    return [lo_hi[0][0], lo_hi[1][0]]


def corruption_error_figure(data: dict[str, Any], style: dict[str, tuple[str, str]] | None = None) -> str | None:
    """Top-1 error against severity, one panel per corruption, one line per model with its 95 % intervals."""
    models = {m: v for m, v in data["models"].items() if v["errors"]}
    if not models:
        return None
    corruptions = sorted({c for v in models.values() for c in v["errors"]}, key=_benchmark_order)  # the table's order
    columns = min(len(corruptions), 4)
    rows = math.ceil(len(corruptions) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.7 * columns + 1.0, 1.7 * rows + 0.9), squeeze=False, sharey=True)
    style = style or styles(list(models))
    n = len(models)
    for ax, corruption in zip(axes.flat, corruptions):
        for k, (model, v) in enumerate(models.items()):
            per = v["errors"].get(corruption) or {}
            if not per:
                continue
            marker, color = style.get(model, ("o", "#333333"))
            xs = [s + (k - (n - 1) / 2) * 0.08 for s in per]  # models side by side at each severity
            errs = [_yerr(r["error"], r.get("ci")) for r in per.values()]
            ax.errorbar(xs, [r["error"] for r in per.values()], yerr=[[e[0] for e in errs], [e[1] for e in errs]],
                        fmt=f"{marker}-", color=color, markersize=3.5, linewidth=1, elinewidth=0.8, capsize=2, label=model)
        ax.set_title(corruption.replace("_", " "), fontsize=8)
        ax.set_xticks(range(1, 6))
        ax.set_xlim(0.5, 5.5)
        ax.set_ylim(0, 1)
    for ax in list(axes.flat)[len(corruptions):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 error")
    for ax in axes[-1, :]:
        ax.set_xlabel("severity")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, -0.02 - 0.03 * n), fontsize=7, frameon=False,
               ncol=min(n, 2))
    fig.tight_layout()
    return _svg(fig)


def corruption_ce_figure(data: dict[str, Any], style: dict[str, tuple[str, str]] | None = None) -> str | None:
    """CE per corruption (the model's errors summed over severities in % of AlexNet's: AlexNet = 100), one marker per
    model, a reference line at 100; only the models normalized by AlexNet (ImageNet-1k)."""
    models = {m: v for m, v in data["models"].items() if v["normalized"] and v["ce"]}
    if not models:
        return None
    corruptions = sorted({c for v in models.values() for c in v["ce"]}, key=_benchmark_order)
    style = style or styles(list(models))
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(corruptions) * max(1, len(models)) ** 0.5 + 0.9))
    ax.axvline(100, color=REFERENCE_STYLE["AlexNet"][0], linestyle=REFERENCE_STYLE["AlexNet"][1], linewidth=1,
               label="AlexNet = 100")
    n = len(models)
    for k, (model, v) in enumerate(models.items()):
        marker, color = style.get(model, ("o", "#333333"))
        points = [(len(corruptions) - 1 - i + (k - (n - 1) / 2) * 0.6 / n, v["ce"][c]) for i, c in enumerate(corruptions)
                  if c in v["ce"]]
        ax.scatter([x for _, x in points], [y for y, _ in points], marker=marker, color=color, s=24, label=model)
    ax.set_yticks(range(len(corruptions)), [c.replace("_", " ") for c in corruptions[::-1]])
    ax.set_ylim(-0.6, len(corruptions) - 0.4)
    ax.set_xlim(0, max(120.0, *(x for v in models.values() for x in v["ce"].values())) * 1.05)
    ax.set_xlabel("corruption error (CE, % of AlexNet's errors over the severities run)")
    ax.legend(fontsize=7, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(n + 1, 3))
    return _svg(fig)
