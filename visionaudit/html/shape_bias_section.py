"""The shape-bias section of the HTML page (the family's descriptor names it): shape bias per category against the
published values, against clean accuracy, the error consistency with the human observers, and a table of each
model's shape bias, kappas and 16-way accuracy on the shape-only stimuli (edges, filled silhouettes), not-judged
values shown as measured, greyed."""

from __future__ import annotations

from typing import Any

from visionaudit.formatting import fmt
from visionaudit.html import figure_data as data
from visionaudit.html.sections import SectionInputs, figure, interval, judged_rows

SHAPE_BIAS_CITATION = ("Published values: Geirhos et al., ImageNet-trained CNNs are biased towards texture, ICLR 2019; the "
                       "CNNs' are the torchvision models' from its texture-vs-shape repository README (not Fig. 4, whose "
                       "AlexNet and VGG-16 are Caffe models), humans the paper's observers; humans per category are the "
                       "mean of the nine observers.")


def shape_bias(page: SectionInputs) -> dict | None:
    from visionaudit.html import figures

    sb = data.shape_bias_by_category(page.report, not_judged=True)
    svg = figure(figures.shape_bias_figure, sb, page.references, page.style)
    ec = data.error_consistency(page.report)
    only = data.shape_only_accuracies(page.report)
    if not sb["models"] and not ec["models"] and not only:
        return None
    figs = [{"svg": svg, "alt": "shape bias per category for each model, with published references",
             "caption": "Fraction of shape decisions per category (cue-conflict images "
                        "whose cues differ; hollow: a shape bias not judged, as measured and held to no bound). "
                        + SHAPE_BIAS_CITATION}] if svg else []
    scatter = figure(figures.accuracy_scatter, data.shape_bias_vs_accuracy(page.report), page.style)
    if scatter:
        figs.append({"svg": scatter, "alt": "shape bias against clean top-1 accuracy",
                     "caption": "Shape bias against clean top-1 (hollow: either not judged, as measured)."})
    consistency = figure(figures.error_consistency_figure, ec, page.style)
    if consistency:
        figs.append({"svg": consistency, "alt": "error consistency (kappa) of each model with each human observer, and of "
                                                "the observers with each other",
                     "caption": f"Error consistency with the human observers on the cue-conflict stimuli "
                                f"({ec['n_trials'] or '?'} trials; right = the shape category): "
                                "Geirhos, Meding & Wichmann, NeurIPS 2020, as model-vs-human computes it, except that an "
                                "undefined kappa (both always right or always wrong, where it gives 1.0) is left "
                                "out of the means. "
                                f"Observers' mean pairwise kappa {fmt(ec['observers_mean'])}."})
    # A not-judged entry's shape bias, interval and kappas as measured (too few stimuli to judge), its row greyed and
    # marked as the error-consistency figure marks it; each model's 16-way accuracy on the shape-only stimuli beside.
    marks = [{"model": m, **v} for m, v in sb["models"].items()]
    marks += [{"model": m, "not_judged": v.get("not_judged"), "why": None} for m, v in ec["models"].items()
              if m not in sb["models"]]
    marks += [{"model": m, "not_judged": False, "why": None} for m in only if m not in sb["models"] and m not in ec["models"]]
    rows = [[m["model"] + (figures.NOT_JUDGED if m.get("not_judged") else ""),
             fmt(sb["models"][m["model"]]["overall"]) if m["model"] in sb["models"] else "-",
             interval(sb["models"][m["model"]].get("ci")) if m["model"] in sb["models"] else "-",
             fmt((ec["models"].get(m["model"]) or {}).get("mean")), interval((ec["models"].get(m["model"]) or {}).get("ci")),
             *(_shape_only(only.get(m["model"], {}).get(k)) for k in ("edges", "silhouettes"))] for m in marks]
    whys = [{"model": m, "not_judged": True, "why": f"{k}: {v['why']}"}
            for m, per in only.items() for k, v in per.items() if v.get("not_judged")]
    table = judged_rows({"header": ["model", "shape bias", "95% interval", "error consistency with observers (mean kappa)",
                                     "95% interval", "edges accuracy (16-way)", "silhouettes accuracy (16-way)"],
                          "rows": rows}, marks, "shape bias, its interval and kappas")
    if any(w["not_judged"] for w in whys):
        table.setdefault("notes", []).append("Shape-only accuracies marked (not judged), as measured and held to no "
                                             "bound: " + "; ".join(f"{w['model']}: {w['why']}" for w in whys) + ".")
    return {"id": "shape_bias", "title": "Shape bias", "figures": figs, "table": table}


def _shape_only(row: dict[str, Any] | None) -> str:
    """A model's 16-way accuracy on edges or filled silhouettes (Geirhos et al. 2019's shape-only stimuli)."""
    if not row:
        return "-"
    return fmt(row["accuracy"]) + (" (not judged)" if row.get("not_judged") else "")
