"""``visionaudit html``: a saved report as one self-contained HTML page."""

from __future__ import annotations

import argparse

from .options import (
    add_accept_incomplete_baseline_option,
    add_baseline_options,
    add_config_option,
    add_data_options,
    add_shape_bias_reference_option,
    empty_option,
)
from .report_files import model_pairs, read_json

HELP = "the report as one self-contained HTML file (figures inline, no network)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("html", help=HELP, description=HELP)
    h.add_argument("report", metavar="REPORT.json", help="a run's report (--audit-json), or a merged one")
    h.add_argument("-o", "--output", required=True, metavar="PATH.html", help="the HTML file to write")
    add_baseline_options(h.add_argument, tool="html")
    add_accept_incomplete_baseline_option(h.add_argument)  # the comparison's verdict on the page is compare's
    h.add_argument("--model", metavar="NEW_SPEC", help="with --baseline: the report's model to compare (with --baseline-as)")
    add_config_option(h.add_argument, tool="html")
    add_shape_bias_reference_option(h.add_argument)
    add_data_options(h.add_argument, tool="html")
    h.add_argument("--any-schema", action="store_true", help="render a report older than schema 3 (no per-image outcomes)")
    h.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from visionaudit.errors import VisionAuditError
    from visionaudit.families.baseline.pairing import (
        read_report,
        refuse_shard_part,
        require_whole,
    )
    from visionaudit.files import output_problem
    from visionaudit.html.page import write_html
    from visionaudit.html.thumbnails import ImageSource, transform_strips

    problem = empty_option({"--baseline": args.baseline, "--model": args.model, "--baseline-as": args.baseline_as,
                            "--config": args.config, "--shape-bias-reference": args.shape_bias_reference,
                            "--data": args.data, "--images": args.images})
    # -o before the page is made: not a traceback after it
    problem = problem or output_problem(args.output, "-o/--output", "report.html")
    if problem:
        raise VisionAuditError(problem)
    start = time.perf_counter()
    report = read_report(args.report, "report") if not args.any_schema else require_whole(read_json(args.report), args.report)
    comparison = None
    if args.baseline is not None:
        from visionaudit.config import load_config
        from visionaudit.report.compare import compare_reports

        pairs = model_pairs(args, "the report's model and the baseline's")
        baseline = read_report(args.baseline)
        refuse_shard_part(baseline, f"baseline report {args.baseline}")
        refuse_shard_part(report, f"report {args.report}")  # a part is never compared, on either side
        config = load_config(args.config, flag="--config") if args.config is not None else None
        comparison = compare_reports(baseline, report, pairs, config, unpaired=args.baseline_unpaired,
                                     accept_incomplete=args.accept_incomplete_baseline)
    strips = transform_strips(report, Path(args.data), args.images) if args.data else None
    images = ImageSource(Path(args.data), args.images) if args.data else None  # the lost images' thumbnails
    path = write_html(args.output, report, args.shape_bias_reference or (), strips, comparison, images)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB in {time.perf_counter() - start:.1f} s")
    return 0
