"""The model's error consistency with the human observers on the cue-conflict stimuli, beside the observers'
consistency with each other, as model-vs-human computes it (github.com/bethgelab/model-vs-human, read at
79ed7cd1d9ac3a114e71b6638f0a98bdd627316c):

- ``modelvshuman/plotting/analyses.py``, ``ErrorConsistency.analysis``: a trial is right when the response
  equals ``category``, the shape category (so on cue-conflict stimuli a texture decision is an error); every
  trial counts, those whose shape and texture agree included (unlike ``ShapeBias``, it excludes none); a
  human "na" is an error; trials are paired by ``image_id``;
- ``helper/plotting_helper.py``, ``get_short_imagename``: ``image_id`` is the file name (``clock4-chair1.png``);
- ``ErrorConsistency.get_result_df``: a model's value is the mean of its kappas with each observer; the
  humans' value is the mean over observers of each one's mean kappa with the others, which is the mean of
  the pairwise kappas.

Where the model saw a subset (``--audit-samples``, a shard's merge sees all), every kappa, the observers'
included, is over the trials of the model's images, so that the two stand on the same trials.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping, Sequence

from visionaudit.error_consistency import RESAMPLES, error_consistency, mean_kappa

SOURCE = ("Geirhos, Meding & Wichmann (NeurIPS 2020), as model-vs-human computes it "
          "(modelvshuman/plotting/analyses.py, ErrorConsistency): right = response is the shape category, all trials")


def _right(responses: Sequence[str | None], shapes: Sequence[str]) -> list[bool]:
    return [r is not None and r == s for r, s in zip(responses, shapes)]


def observer_consistency(sample_ids: Sequence[str], decisions: Sequence[str], shapes: Sequence[str],
                         observers: Mapping[str, Any], resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """``observers``: :func:`visionaudit.families.shape_bias.decisions_csv.read_observers`'s dict. The model's kappa
    with each observer (with its interval), their mean (interval: trials resampled together), and the observers'
    pairwise kappas and their mean, on the trials the model and the observers share."""
    position = {name: i for i, name in enumerate(observers["images"])}
    rows = [(i, position.get(PurePosixPath(sid).name)) for i, sid in enumerate(sample_ids)]
    paired = sorted(((i, j) for i, j in rows if j is not None), key=lambda p: p[1])  # by image id, as model-vs-human sorts
    unmatched = sorted(PurePosixPath(sample_ids[i]).name for i, j in rows if j is None)
    shape = [shapes[i] for i, _ in paired]
    model = _right([decisions[i] for i, _ in paired], shape)
    humans = {s: _right([r[j] for _, j in paired], shape) for s, r in observers["subjects"].items()}
    per = {s: error_consistency(model, h, resamples, seed).to_dict() for s, h in humans.items()}
    mean, ci = mean_kappa([(model, h) for h in humans.values()], resamples, seed)
    names = list(humans)
    pairwise = {f"{a} / {b}": error_consistency(humans[a], humans[b], 0).kappa
                for k, a in enumerate(names) for b in names[k + 1:]}
    defined = [v for v in pairwise.values() if v is not None]
    return {
        "per_observer": per,
        "mean": mean,
        "mean_ci": list(ci) if ci else None,
        "observers_pairwise": pairwise,
        "observers_mean": sum(defined) / len(defined) if defined else None,
        "detail": {"n_trials": len(paired), "n_unmatched": len(unmatched), "unmatched": unmatched[:20],
                   "n_observers": len(humans), "observers_missing": list(observers.get("missing") or []),
                   "resamples": resamples, "seed": seed, "definition": SOURCE},
    }
