"""``python -m visionaudit``: commands that do not need pytest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionaudit.errors import VisionAuditError


def _fetch(args: argparse.Namespace) -> int:
    from visionaudit.data.fetch import fetch_all, load_manifest
    from visionaudit.data.user_cache import OFFLINE_ENV, cache_dir, offline

    if offline():
        raise VisionAuditError(f"{OFFLINE_ENV} is set: downloads are off. Unset it to fetch, on a machine with internet")
    if bool(args.all) == bool(args.dataset):
        raise VisionAuditError("name one data set to fetch, or --all")
    manifest = load_manifest(args.manifest)
    names = sorted(manifest) if args.all or args.dataset == "all" else [args.dataset]
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise VisionAuditError(f"unknown data set {unknown[0]!r}; fetchable: {', '.join(sorted(manifest))}")
    dest = Path(args.dest).expanduser() if args.dest else cache_dir()
    results = fetch_all(names, dest, base_url=args.base_url, manifest=manifest)
    for name, result in results.items():
        print(f"{name}: {len(result.downloaded)} downloaded, {len(result.kept)} already there, "
              f"{len(result.rejected)} rejected, {len(result.failed)} failed -> {result.path}")
    if not all(r.ok for r in results.values()):
        print("some files were rejected or failed, and their data sets were not put in place; run the same command "
              "again to retry them (verified files are kept)", file=sys.stderr)
        return 1
    print(f"data root: {dest} (the default when --audit-data and VISIONAUDIT_DATA are not given)"
          if not args.dest else f"data root: {dest}; point --audit-data or VISIONAUDIT_DATA at it")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from visionaudit.models.checkpoints import convert_to_safetensors

    n = convert_to_safetensors(args.src, args.dst, trust_pickle=args.trust_pickle)
    print(f"wrote {n} tensors to {args.dst}")
    return 0


def _shape_bias(args: argparse.Namespace) -> int:
    import json

    from visionaudit.files import to_jsonable

    if bool(args.decisions) == bool(args.model):
        raise VisionAuditError("give either --decisions FILE.csv ... (decisions made elsewhere) or --model SPEC (run a model here)")
    out = _shape_bias_of_files(args.decisions) if args.decisions else _shape_bias_of_model(args)
    # JSON has no NaN: a category without hits reads null, as in the report.
    print(json.dumps(to_jsonable(out), indent=2))
    return 0


def _shape_bias_of_files(paths: list[str]) -> dict:
    from visionaudit.families.shape_bias import shape_bias
    from visionaudit.families.shape_bias.decisions_csv import read_decisions

    read = [read_decisions(p) for p in paths]
    if len(read) == 1:
        return {"file": paths[0], **read[0].shape_bias().to_dict()}
    per_file = {p: d.shape_bias().to_dict() for p, d in zip(paths, read)}
    biases = [r["shape_bias"] for r in per_file.values()]
    pooled = shape_bias([x for d in read for x in d.decisions], [x for d in read for x in d.shapes], [x for d in read for x in d.textures])
    # Averaged over observers (as published for humans), and pooled over all their decisions.
    return {"files": per_file, "mean_shape_bias": sum(biases) / len(biases), "pooled": pooled.to_dict()}


def _shape_bias_of_model(args: argparse.Namespace) -> dict:
    from visionaudit.data.image_sets import cue_conflict, data_root, load_images
    from visionaudit.data.imagenet16 import decide
    from visionaudit.families.shape_bias import shape_bias, stimulus_geometry
    from visionaudit.families.shape_bias.decisions_csv import (
        subject_name,
        write_decisions,
    )
    from visionaudit.models.inference import predict_logits
    from visionaudit.models.loading import load_model

    model = load_model(args.model, args.device, arch=args.arch)
    stimuli = cue_conflict(data_root(args.data) / "cue-conflict")
    geometry = stimulus_geometry(model, args.geometry)
    print(f"{model.id}: {len(stimuli)} cue-conflict stimuli at {geometry.crop_size}x{geometry.crop_size} ({args.geometry}) "
          f"on {model.device}", file=sys.stderr)
    decisions = decide(predict_logits(model, load_images(stimuli, geometry)), args.aggregation)
    out = {"model": model.id, "stimulus_geometry": {"mode": args.geometry, **geometry.to_dict()},
           **shape_bias(decisions, stimuli.categories, stimuli.textures).to_dict()}
    if args.export:
        out["export"] = str(write_decisions(args.export, args.name or subject_name(model.id), stimuli, decisions))
    return out


def _families(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from visionaudit.families.registry import (
        families,
        markdown_table,
        readme_table_problems,
    )

    if args.check_readme:
        problems = readme_table_problems(Path(args.check_readme).read_text())
        for p in problems:
            print(f"{args.check_readme}: {p}", file=sys.stderr)
        return 1 if problems else 0
    if args.markdown:
        print(markdown_table())
        return 0
    for name, family in families().items():
        print(f"{name}: {family.gates}\n  key metric: {family.key_metric} ({family.direction}); audits: {family.audit_file}")
        if args.thresholds:
            for key, field in family.thresholds.items():
                default = f", default {json.dumps(field.default)}" if field.has_default else ", no default"
                print(f"  [audits.{name}] {key}: {field.describe()}{default}" + (f"  -- {field.help}" if field.help else ""))
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionaudit.files import write_atomically
    from visionaudit.report.journal import rebuild
    from visionaudit.report.summaries import terminal_lines

    journal = Path(args.from_journal)
    if args.output:
        out = Path(args.output)
    elif journal.name.endswith(".journal.jsonl") and journal.name != ".journal.jsonl":
        out = journal.with_name(journal.name.removesuffix(".journal.jsonl"))
    else:
        raise VisionAuditError(f"{journal} is not named REPORT.journal.jsonl; say where the report goes with -o PATH")
    data = rebuild(journal)
    write_atomically(out, data)
    for line in terminal_lines(data):
        print(line)
    print(f"report rebuilt from {journal}: {out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from visionaudit.config import load_config
    from visionaudit.families.baseline.pairing import read_report
    from visionaudit.models.specs import canonical_spec
    from visionaudit.report.compare import (
        Unpairable,
        compare_reports,
        regressions,
        render,
    )

    if bool(args.model) != bool(args.baseline_model):
        raise VisionAuditError("--model and --baseline-model go together: the new report's model and the old report's")
    pairs = {canonical_spec(args.model): canonical_spec(args.baseline_model)} if args.model else None
    config = load_config(args.config) if args.config else None
    try:
        comparison = compare_reports(read_report(args.old, "old report"), read_report(args.new, "new report"), pairs, config,
                                     unpaired=args.unpaired)
    except Unpairable as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    print(render(comparison, args.format))
    return 1 if regressions(comparison) else 0


def _merge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionaudit.files import write_atomically
    from visionaudit.report.merge import Unmergeable, merge_reports
    from visionaudit.report.summaries import terminal_lines

    parts = [_read_json(path) for path in args.parts]
    try:
        report = merge_reports(parts, args.parts)
    except Unmergeable as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    write_atomically(Path(args.output), report)
    for line in terminal_lines(report):
        print(line)
    print(f"merged {len(parts)} shards: {args.output}")
    return report["run"]["exit_status"]


def _html(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from visionaudit.families.baseline.pairing import read_report
    from visionaudit.html.page import write_html
    from visionaudit.html.thumbnails import transform_strips

    start = time.perf_counter()
    report = read_report(args.report, "report") if not args.any_schema else _read_json(args.report)
    comparison = None
    if args.baseline:
        from visionaudit.config import load_config
        from visionaudit.models.specs import canonical_spec
        from visionaudit.report.compare import compare_reports

        if bool(args.model) != bool(args.baseline_model):
            raise VisionAuditError("--model and --baseline-model go together: the report's model and the baseline's")
        pairs = {canonical_spec(args.model): canonical_spec(args.baseline_model)} if args.model else None
        comparison = compare_reports(read_report(args.baseline), report, pairs, load_config(args.config) if args.config else None,
                                     unpaired=args.unpaired)
    strips = transform_strips(report, Path(args.data), args.images) if args.data else None
    path = write_html(args.output, report, args.shape_bias_reference or (), strips, comparison)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB in {time.perf_counter() - start:.1f} s")
    return 0


def _read_json(path: str) -> dict:
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise VisionAuditError(f"{path} is not a readable JSON report ({e})") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m visionaudit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fetch", help="download the stimuli and the labelled ImageNet sample, verified by sha256")
    f.add_argument("dataset", nargs="?", help="cue-conflict, edges, filled-silhouettes or imagenet-sample")
    f.add_argument("--all", action="store_true", help="every data set (about 248 MB)")
    f.add_argument("--dest", default=None,
                   help="data root to fill (default: the user cache, $VISIONAUDIT_CACHE, which runs use when no data root is given)")
    f.add_argument("--base-url", default=None,
                   help="a mirror of the pinned repositories (default: $VISIONAUDIT_FETCH_BASE_URL, else GitHub raw at the pinned commits)")
    f.add_argument("--manifest", default=None,
                   help="a JSON manifest whose data sets replace the shipped ones (default: $VISIONAUDIT_FETCH_MANIFEST)")
    f.set_defaults(func=_fetch)

    c = sub.add_parser("convert-checkpoint", help="re-save a checkpoint as safetensors")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--trust-pickle", action="store_true",
                   help="unpickle SRC (can run code it carries): only for files you trust")
    c.set_defaults(func=_convert)
    b = sub.add_parser("shape-bias", help="shape bias from decisions CSVs (raw-data format), or of a model, exported as "
                                          "model-vs-human writes its raw data")
    b.add_argument("--decisions", nargs="+", metavar="FILE.csv",
                   help="columns subj,session,trial,rt,object_response,category,condition,imagename; several files "
                        "(observers) also give their mean and pooled shape bias")
    b.add_argument("--model", metavar="SPEC", help="run this model on the cue-conflict stimuli (any --model spec)")
    b.add_argument("--arch", default=None, help="architecture for a state-dict spec")
    b.add_argument("--data", default=None, help="data root holding cue-conflict/ (default: $VISIONAUDIT_DATA, else the user cache)")
    b.add_argument("--device", default="auto")
    b.add_argument("--geometry", choices=["native", "model_input"], default="native",
                   help="native: the 224x224 stimuli unchanged, as published (default); model_input: resized, uncropped")
    b.add_argument("--aggregation", choices=["mean", "sum", "max"], default="mean")
    b.add_argument("--export", metavar="DIR", help="write DIR/cue-conflict_<name>_session-1.csv (model-vs-human raw data)")
    b.add_argument("--name", default=None, help="the decision maker's name in the export (default: from the spec)")
    b.set_defaults(func=_shape_bias)

    r = sub.add_parser("report", help="rebuild the report of a run that was killed, from its journal")
    r.add_argument("--from-journal", required=True, metavar="PATH.journal.jsonl",
                   help="the journal written beside --audit-json PATH while the run went on")
    r.add_argument("-o", "--output", default=None, help="where to write the report (default: PATH, the journal's report path)")
    r.set_defaults(func=_report)

    cmp = sub.add_parser("compare", help="compare two saved reports image by image (the --audit-baseline gate, no model loaded); "
                                         "exit 1 on a regression, 4 when they cannot be paired")
    cmp.add_argument("old", metavar="OLD.json", help="the previous release's report")
    cmp.add_argument("new", metavar="NEW.json", help="the candidate's report")
    cmp.add_argument("--model", metavar="NEW_SPEC", help="the new report's model to compare (with --baseline-model)")
    cmp.add_argument("--baseline-model", metavar="OLD_SPEC", help="the old report's model it is compared with")
    cmp.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    cmp.add_argument("--config", metavar="audit.toml", help="tolerances from [audits.baseline] (default: the built-in ones)")
    cmp.add_argument("--unpaired", action="store_true", help="compare reports made on other images, seed or subset with unpaired tests")
    cmp.set_defaults(func=_compare)

    m = sub.add_parser("merge", help="join the partial reports of a sharded run (--audit-shard I/N) into the unsharded run's "
                                     "report, every statistic recomputed from all images; exit 1 when its verdict is not pass, "
                                     "4 when the parts are not the shards of one run")
    m.add_argument("parts", nargs="+", metavar="PART.json", help="the N shards' reports, in any order")
    m.add_argument("-o", "--output", required=True, metavar="REPORT.json")
    m.set_defaults(func=_merge)

    h = sub.add_parser("html", help="the report as one self-contained HTML file (figures inline, no network)")
    h.add_argument("report", metavar="REPORT.json")
    h.add_argument("-o", "--output", required=True, metavar="PATH.html")
    h.add_argument("--baseline", metavar="OLD.json", help="show the changes against this earlier report (as visionaudit compare)")
    h.add_argument("--unpaired", action="store_true", help="with --baseline: compare reports made on other images")
    h.add_argument("--model", metavar="NEW_SPEC", help="with --baseline: the report's model to compare (with --baseline-model)")
    h.add_argument("--baseline-model", metavar="OLD_SPEC", help="with --baseline: the baseline's model it is compared with")
    h.add_argument("--config", metavar="audit.toml", help="with --baseline: tolerances from [audits.baseline]")
    h.add_argument("--shape-bias-reference", nargs="+", metavar="FILE.csv",
                   help="decision CSVs (raw-data format, one per observer) drawn as per-category references")
    h.add_argument("--data", metavar="DIR", help="the data root: show a few images under each transform, as the model saw them")
    h.add_argument("--images", default=None, help="the labelled images under the data root (default: the report's)")
    h.add_argument("--any-schema", action="store_true", help="render a report older than schema 3 (no per-image outcomes)")
    h.set_defaults(func=_html)

    fam = sub.add_parser("families", help="the registered audit families, their key metrics and threshold schemas")
    fam.add_argument("--thresholds", action="store_true", help="list every threshold key with its type, range and allowed values")
    fam.add_argument("--markdown", action="store_true", help="print the README's family table")
    fam.add_argument("--check-readme", metavar="README.md", help="exit 1 when the README's family table does not match the registry")
    fam.set_defaults(func=_families)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VisionAuditError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
