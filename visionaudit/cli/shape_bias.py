"""``visionaudit shape-bias``: shape bias from decision CSVs, or of a model run here on the cue-conflict stimuli."""

from __future__ import annotations

import argparse
import sys

from visionaudit.errors import VisionAuditError

from .options import add_data_options, add_model_options, empty_option

HELP = "shape bias from decision CSVs (raw-data format), or of a model, exported as model-vs-human writes its raw data"


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("shape-bias", help=HELP, description=HELP)
    b.add_argument("--decisions", nargs="+", metavar="FILE.csv",
                   help="columns subj,session,trial,rt,object_response,category,condition,imagename; several files "
                        "(observers) also give their mean and pooled shape bias")
    b.add_argument("--model", metavar="SPEC", help="run this model on the cue-conflict stimuli (any --model spec)")
    add_model_options(b.add_argument, tool="shape-bias")
    add_data_options(b.add_argument, images=False, tool="shape-bias")
    b.add_argument("--geometry", choices=["native", "model_input"], default="native",
                   help="native: the 224x224 stimuli unchanged, as published (default); model_input: resized, uncropped")
    b.add_argument("--aggregation", choices=["mean", "sum", "max"], default="mean",
                   help="how the softmax probabilities of the ImageNet classes in each of the 16 categories make its "
                        "score: mean (default, as model-vs-human does), sum or max")
    b.add_argument("--export", metavar="DIR", help="write DIR/cue-conflict_<name>_session-1.csv (model-vs-human raw data)")
    b.add_argument("--name", default=None, help="the decision maker's name in the export (default: from the spec)")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from visionaudit.files import to_jsonable

    problem = empty_option({"--model": args.model, "--arch": args.arch, "--device": args.device, "--data": args.data})
    if problem:  # before a model loads: not the default device, the user cache as the data root
        raise VisionAuditError(problem)
    if bool(args.decisions) == bool(args.model):
        raise VisionAuditError("give either --decisions FILE.csv ... (decisions made elsewhere) or --model SPEC "
                               "(run a model here)")
    out = _of_files(args.decisions) if args.decisions else _of_model(args)
    # JSON has no NaN: a category without hits reads null, as in the report.
    print(json.dumps(to_jsonable(out), indent=2))
    return 0


def _of_files(paths: list[str]) -> dict:
    from visionaudit.families.shape_bias import shape_bias
    from visionaudit.families.shape_bias.decisions_csv import read_decisions

    read = [read_decisions(p) for p in paths]
    if len(read) == 1:
        return {"file": paths[0], **read[0].shape_bias().to_dict()}
    per_file = {p: d.shape_bias().to_dict() for p, d in zip(paths, read)}
    biases = [r["shape_bias"] for r in per_file.values()]
    pooled = shape_bias([x for d in read for x in d.decisions], [x for d in read for x in d.shapes],
                        [x for d in read for x in d.textures])
    # Averaged over observers (as published for humans), and pooled over all their decisions.
    return {"files": per_file, "mean_shape_bias": sum(biases) / len(biases), "pooled": pooled.to_dict()}


def _of_model(args: argparse.Namespace) -> dict:
    from visionaudit.data.image_sets import cue_conflict, data_root, load_images
    from visionaudit.data.imagenet16 import decide
    from visionaudit.families.shape_bias import shape_bias, stimulus_geometry
    from visionaudit.families.shape_bias.decisions_csv import (
        subject_name,
        write_decisions,
    )
    from visionaudit.models.inference import clean_logits
    from visionaudit.models.loading import load_model
    from visionaudit.progress import describe, subscribe, unsubscribe

    # The core's progress (load, decode, forward passes) on stderr, as a run prints it: the pass over 1,280 stimuli
    # takes minutes on a CPU, and stdout holds the JSON result alone.
    def show(event: dict) -> None:
        print(f"visionaudit {describe(event)}", file=sys.stderr, flush=True)

    subscribe(show)
    try:
        stimuli = cue_conflict(data_root(args.data) / "cue-conflict")  # missing stimuli said before the model loads
        model = load_model(args.model, args.device or "auto", arch=args.arch)
        geometry = stimulus_geometry(model, args.geometry)
        print(f"{model.id}: {len(stimuli)} cue-conflict stimuli at {geometry.crop_size}x{geometry.crop_size} "
              f"({args.geometry}) on {model.device}", file=sys.stderr)
        # through the logit cache when one is configured ($VISIONAUDIT_LOGIT_CACHE), as the audit's own pass is
        logits = clean_logits(model, stimuli, load_images(stimuli, geometry), geometry=geometry)
    finally:
        unsubscribe(show)
    decisions = decide(logits, args.aggregation)
    out = {"model": model.id, "stimulus_geometry": {"mode": args.geometry, **geometry.to_dict()},
           **shape_bias(decisions, stimuli.categories, stimuli.textures).to_dict()}
    if args.export:
        out["export"] = str(write_decisions(args.export, args.name or subject_name(model.id), stimuli, decisions))
    return out
