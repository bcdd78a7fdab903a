"""Benchmark of the suite's own work, by phase: prints ratios, not a timed test (issue 27, items 2 and 3).

For each model, on the same labelled images, through the functions the audits call (timed around them, on the
real code paths; the phases inside a family's run are timed by wrapping the functions it calls, so they sit
inside the family's own time):

- decoding (per geometry, once per process as the audits decode), the bare forward passes (one clean pass);
- per family (accuracy, robustness, corruption): the whole audit (its forward passes with what runs around them,
  statistics, assessors), and inside it the transforms (robustness kernels), the corruption kernels, the JPEG round
  trip, the statistics (McNemar, bootstrap, t-test, the assessors) and the report (assembly and JSON write);
- the ratio of the whole audit to its bare forward passes (one clean pass times the passes it needs) and the suite's
  own work per image and condition ((audit - bare forward) / (images x passes));
- start-up (benchmarks/phases_startup.py): the time from ``pytest audits`` to the first forward pass (median of a
  few runs of ``-k test_clean_top1 --audit-samples 8`` under xdist; the run's first forward pass is logged through
  ``VISIONAUDIT_FIRST_FORWARD_LOG``, visionaudit/progress.py), beside the controller's import of the plugins (and
  whether torch came with it) and the model load.

Each model's table is printed, and the JSON (``--json``) written, as soon as that model is measured, with the torch and
torchvision versions and the card's name; ``complete`` turns true once the start-up is measured too: a run stopped
at a time limit keeps what it finished.

Phases are microseconds per image and condition (a condition: one forward pass over the images: a transform at
a severity, a corruption at a severity, the clean pass). On a GPU every timed phase synchronizes the device. The
``corruption`` row runs the family's CPU work in turn, so that its phases are shares of its time; the ``corruption-ahead``
row is the audit as it runs, each pass's batches prepared in threads ahead of the device (the device's
default, visionaudit/families/corruption/ahead.py): its ratio is the one a run sees, and its kernel and JPEG phases,
in the threads and overlapping the forward passes, are not timed ("-").

    python benchmarks/phases.py --data ../shared/data --images 100 --batch 32 --device cpu \\
        --model benchmarks.near_free:conv1x1 --model efficientnet_lite0 [--corruption-severities 3] [--json out.json]
    python benchmarks/phases.py --data ../shared/data   # the defaults: 1,000 images, batch 128, the 1x1 model,
                                                        # lite0 and a random-init ResNet-50 (for a GPU)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import scipy.stats  # noqa: F401  (imported once per worker in a run, not per image: kept out of the phases)
import torch
import torchvision

# benchmarks/phases_startup.py, found as the script's own folder is first on sys.path
from phases_startup import controller_imports, first_forward

import visionaudit.families.corruption as corruption_family
import visionaudit.families.robustness as robustness_family
from visionaudit.config import Thresholds
from visionaudit.data.fingerprint import sample_set
from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.devices import resolve_device
from visionaudit.families.accuracy import class_names, clean_outcomes
from visionaudit.families.assessment import NotApplicable, NotJudged, assess
from visionaudit.families.corruption import PROTOCOL_GEOMETRY, Corrupted, CorruptionRun
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import get_family
from visionaudit.files import write_atomically
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model
from visionaudit.report.assembly import assemble, blank_entry

ROOT = Path(__file__).resolve().parent.parent
NEAR_FREE = "benchmarks.near_free:conv1x1"
DEFAULT_MODELS = (NEAR_FREE, "efficientnet_lite0", "torchvision:resnet50:none")
# "corruption-ahead": the corruption audit as it runs, its batches prepared in threads ahead of the device (the
# device's default); "corruption" times the same work in turn, so that its phases are shares of its time.
FAMILIES = ("accuracy", "robustness", "corruption", "corruption-ahead")
# Every phase a family's row prints, in order (the test checks each is printed); "forward+rest" is the remainder.
PHASES = ("transforms", "corruption kernels", "JPEG round trip", "statistics", "report")
IN_THREADS = ("corruption kernels", "JPEG round trip")  # with threads ahead: overlapping the forward passes, not timed
SEED = 0


class Clock:
    """Seconds per phase, summed; on a GPU each timed call synchronizes the device first and last."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds = device, {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)
        return timed


@contextmanager
def patched(module: Any, name: str, replacement: Callable) -> Iterator[None]:
    """``module.name`` replaced for the block: how a phase inside a family's own code is timed on its real path."""
    original = getattr(module, name)  # an AttributeError here: the family's code moved, update the benchmark
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


def thresholds(family: str, **overrides: Any) -> Thresholds:
    """The family's defaults (no audit.toml), with ``min_images`` lowered so that a short run still measures (a
    gate not judged measures nothing to time)."""
    return Thresholds(family, "", {**get_family(family).defaults, "min_images": 1, **overrides})


def judge(family: str, test: str, measured: Any, thresholds: dict[str, Any], context: dict[str, Any], nodeid: str,
          entries: list[dict[str, Any]]) -> None:
    """The family's assessor, as ``assess`` runs it in an audit; its record becomes a report entry."""
    record = AuditRecord(audit=test, model=context.get("model"), params={})
    outcome = "passed"
    try:
        assess(family, test, record, measured, thresholds, context)
    except AssertionError:
        outcome = "failed"
    except (NotJudged, NotApplicable):
        outcome = "skipped"
    entry = blank_entry(nodeid, {"audit": family, "model": record.model}, outcome)
    rec = record.to_dict()
    for key in ("metrics", "thresholds", "tables"):
        entry[key].update(rec[key])
    if rec.get("outcomes"):
        entry["outcomes"] = rec["outcomes"]
    entries.append(entry)


def report_phase(clock: Clock, entries: list[dict[str, Any]], out_dir: Path) -> None:
    """The report of these entries: assembly (the families' aggregates included) and its JSON write."""
    with clock.phase("report"):
        report = assemble({"benchmark": "phases"}, {}, entries)
        write_atomically(out_dir / "report.json", report)


def accuracy(model, images, labels, named, clock: Clock, out_dir: Path) -> torch.Tensor:
    """The accuracy family: the clean pass (shared by the others, as the ``evaluated`` fixture shares it) and its assessor."""
    entries: list[dict[str, Any]] = []
    with clock.phase("audit"):
        logits = predict_logits(model, images, clock.batch)
        with clock.phase("statistics"):
            judge("accuracy", "clean_top1", clean_outcomes(named, logits, labels), thresholds("accuracy"),
                  {"model": model.id, "set_name": "imagenet-sample", "preprocessing": model.preprocessing.source,
                   "class_names": class_names(model)},
                  f"audits/test_accuracy.py::test_clean_top1[{model.id}]", entries)
        report_phase(clock, entries, out_dir)
    clock.passes = 1
    return logits


def robustness(model, images, labels, clean, named, ids, clock: Clock, out_dir: Path) -> None:
    """Every transform at the family's severities (``cached_transform``'s work), then its assessor per transform."""
    severities = clock.options.robustness_severities or get_family("robustness").defaults["severities"]
    t = thresholds("robustness", severities=severities)
    entries: list[dict[str, Any]] = []
    kernels = robustness_family.get_transform
    for name in robustness_family.TRANSFORMS:  # once per process in a run (caches, first calls): not per image
        for s in severities:
            kernels(name)(images[:2].to(model.device), ids[:2], SEED, s)

    def timed_kernel(name):
        return clock.wrap("transforms", kernels(name))

    with patched(robustness_family, "get_transform", timed_kernel), \
         patched(robustness_family, "transform_result", clock.wrap("statistics", robustness_family.transform_result)), \
         clock.phase("audit"):
        for name in robustness_family.TRANSFORMS:
            results = [robustness_family.evaluate_transform(model, images, labels, clean, name, s, seed=SEED,
                                                            batch_size=clock.batch, resamples=t["bootstrap_resamples"],
                                                            sample_ids=ids)
                       for s in severities]
            with clock.phase("statistics"):
                judge("robustness", "transform", robustness_family.transform_outcomes(named, results, clean, labels), t,
                      {"model": model.id, "model_classes": model.num_classes, "class_names": class_names(model),
                       "transform": name, "seed": SEED}, f"audits/test_robustness.py::test_transform[{model.id}-{name}]", entries)
        report_phase(clock, entries, out_dir)
    clock.passes = len(robustness_family.TRANSFORMS) * len(severities)


def corruption(model, images224, labels224, named, ids, clock: Clock, out_dir: Path, ahead: bool = False) -> None:
    """The corruption run (clean, JPEG only, each condition) with each condition's assessor and the mCE's; in turn, or
    with ``ahead`` as the audit runs it (threads ahead of the device, whose phases are not timed)."""
    severities = clock.options.corruption_severities or get_family("corruption").defaults["severities"]
    t = thresholds("corruption", severities=severities)
    entries: list[dict[str, Any]] = []
    kernel_for = corruption_family.kernel_for
    warm = images224[:2].to(model.device)  # once per process in a run (textures, filters, first calls): not per image
    corruption_family.jpeg_round_trip(warm)
    for name in t["corruptions"]:
        try:
            kernel = kernel_for(name)
        except corruption_family.Unavailable:
            continue
        for s in severities:
            kernel(warm, ids[:2], SEED, s)

    def timed_kernel(name):
        return clock.wrap("corruption kernels", kernel_for(name))

    timed = contextlib.nullcontext() if ahead else contextlib.ExitStack()
    if not ahead:  # in the threads ahead these would sum time that overlaps the forward passes
        timed.enter_context(patched(corruption_family, "kernel_for", timed_kernel))
        timed.enter_context(patched(corruption_family, "jpeg_round_trip",
                                    clock.wrap("JPEG round trip", corruption_family.jpeg_round_trip)))
    with timed, patched(corruption_family, "paired", clock.wrap("statistics", corruption_family.paired)), \
         clock.phase("audit"):
        # In turn: each pass's CPU work between the forward passes, so the phases are shares of the audit's own time;
        # ahead: the device's default, as the audit runs (benchmarks/corruptions.py --ahead compares the two per pass).
        run = CorruptionRun(model, images224, labels224, ids, SEED, t["jpeg_round_trip"], ahead=None if ahead else 0)
        corrupted = Corrupted(run, named, "kernels", None, False)
        context = {"model": model.id, "imagenet": model.label_space.imagenet1k}
        run.clean()  # measured before any assessor runs (the scores measure lazily), so no phase sits in another
        if t["jpeg_round_trip"]:
            run.jpeg_only()
        scored = 0
        for name in t["corruptions"]:
            for s in severities:
                try:
                    run.condition(name, s)
                    scored += 1
                except corruption_family.Unavailable:
                    pass  # the assessor skips it, saying why; no forward pass of its own
                measured = corrupted.condition_score(name, s, t["jpeg_round_trip"])
                with clock.phase("statistics"):
                    judge("corruption", "condition", measured, t, {**context, "corruption": name, "severity": s},
                          f"audits/test_corruption.py::test_corruption[{model.id}-{name}-{s}]", entries)
        with clock.phase("statistics"):
            judge("corruption", "mce", corrupted.mce_score(t["corruptions"], severities, t["jpeg_round_trip"]), t,
                  {**context, "seed": SEED}, f"audits/test_corruption.py::test_mce[{model.id}]", entries)
        report_phase(clock, entries, out_dir)
    clock.passes = 1 + int(bool(t["jpeg_round_trip"])) + scored  # clean, JPEG only, each condition that ran


def untimed(family: str, phase: str) -> bool:
    """A phase the row does not time: the corruption work in the threads ahead of the device (None in the JSON)."""
    return family == "corruption-ahead" and phase in IN_THREADS


def measure_model(spec: str, args, device: torch.device, root: Path, decoded: dict, out_dir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    model = load_model(spec, device)
    load_s = time.perf_counter() - start
    image_set = labelled_images(root / "imagenet-sample").stratified_subset(args.images, seed=SEED)
    image_set = image_set.for_classes(model.label_space)
    geometries = {"model": model.preprocessing.geometry}
    if {"corruption", "corruption-ahead"} & set(args.families):
        geometries["corruption"] = PROTOCOL_GEOMETRY
    images = {}
    for role, geometry in geometries.items():
        start = time.perf_counter()
        images[role] = load_images(image_set, geometry)  # decoded once per process and geometry, as in a run
        if geometry not in decoded:
            decoded[geometry] = time.perf_counter() - start
    labels = image_set.label_tensor()
    n = len(image_set)
    predict_logits(model, images["model"][: args.batch], args.batch)  # warm-up (kernels, allocator)
    passes = []
    for _ in range(2):  # the faster of two clean passes: a loaded machine's stall is not the model's time
        bare = Clock(device)
        with bare.phase("forward"):
            predict_logits(model, images["model"], args.batch)
        passes.append(bare.seconds["forward"])
    forward_s = min(passes)
    start = time.perf_counter()
    named = sample_set("labelled", image_set, args.images, SEED)  # the report's names of the images (file hashes)
    naming_s = time.perf_counter() - start

    rows: dict[str, dict[str, Any]] = {}
    clean = None
    for family in FAMILIES:
        if family not in args.families and not (family == "accuracy" and "robustness" in args.families):
            continue
        clock = Clock(device)
        clock.batch, clock.options, clock.passes = args.batch, args, 0
        if family == "accuracy":
            clean = accuracy(model, images["model"], labels, named, clock, out_dir)
        elif family == "robustness":
            robustness(model, images["model"], labels, clean, named, image_set.sample_ids, clock, out_dir)
        else:
            corruption(model, images["corruption"], labels, sample_set("corruption", image_set, args.images, SEED),
                       image_set.sample_ids, clock, out_dir, ahead=family == "corruption-ahead")
        passes, whole = clock.passes, clock.seconds["audit"]
        if family == "accuracy":
            clean_s = whole
        if family not in args.families:
            continue
        if family == "robustness":  # its clean pass is the accuracy family's, shared in a run: counted here too
            passes, whole = passes + 1, whole + clean_s
        per = n * passes
        rows[family] = {
            "passes": passes, "audit_s": round(whole, 6), "bare_forward_s": round(forward_s * passes, 6),
            "ratio": round(whole / (forward_s * passes), 3),
            "own_us": round(max(0.0, whole - forward_s * passes) / per * 1e6, 1),
            "phases_us": {p: None if untimed(family, p) else round(clock.seconds.get(p, 0.0) / per * 1e6, 1) for p in PHASES},
            "phases_s": {p: None if untimed(family, p) else round(clock.seconds.get(p, 0.0), 6) for p in PHASES},
        }
    if "accuracy" not in args.families:
        rows.pop("accuracy", None)
    return {
        "model": spec, "images": n, "batch": args.batch, "load_s": round(load_s, 3),
        "forward_us": round(forward_s / n * 1e6, 3),
        "decode_us": {f"{g.resize_size}/{g.crop_size} {g.interpolation}": round(decoded[g] / n * 1e6, 1)
                      for g in geometries.values()},
        "naming_us": round(naming_s / n * 1e6, 1),
        "families": rows,
    }


def print_table(results: list[dict[str, Any]], device: torch.device) -> None:
    threads = f", {torch.get_num_threads()} CPU threads" if device.type == "cpu" else ""
    for r in results:
        print(f"\n{r['model']} on {device}{threads}: {r['images']} images, batch {r['batch']}; load {r['load_s']:.2f} s; "
              f"bare forward {r['forward_us']:,.0f} us/image; decode " +
              ", ".join(f"{g} {us:,.0f} us/image" for g, us in r["decode_us"].items()) +
              f"; naming the images (file hashes) {r['naming_us']:,.0f} us/image")
        head = f"  {'family':<17}{'passes':>7}{'audit s':>10}{'bare fwd s':>11}{'ratio':>7}{'own us':>9}"
        print(head + "".join(f"{p:>20}" for p in PHASES))
        for family, row in r["families"].items():
            print(f"  {family:<17}{row['passes']:>7}{row['audit_s']:>10.2f}{row['bare_forward_s']:>11.2f}{row['ratio']:>7.2f}"
                  f"{row['own_us']:>9.1f}"
                  + "".join(f"{'-':>20}" if row['phases_us'][p] is None else f"{row['phases_us'][p]:>20.1f}"
                                                     for p in PHASES))


def print_legend() -> None:
    print("\n  us: microseconds per image and condition (one forward pass over the images); ratio: audit / bare forward;"
          "\n  own: (audit - bare forward) per image and condition; the phases are inside the audit's time;"
          "\n  corruption: its CPU work in turn between the passes; corruption-ahead: as a run does it, in threads ahead of"
          "\n  the device (-: in those threads, overlapping the forward passes, not timed).")


def device_name(device: torch.device) -> str:
    """The card's name on a CUDA device (timings name the card), else the device."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)


def write_json(path: str | None, out: dict[str, Any]) -> None:
    if path:
        write_atomically(Path(path), out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("VISIONAUDIT_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--model", action="append", default=None, help=f"repeatable; default {', '.join(DEFAULT_MODELS)}")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, of " + ", ".join(FAMILIES))
    ap.add_argument("--robustness-severities", type=lambda v: [float(x) for x in v.split(",")], default=None)
    ap.add_argument("--corruption-severities", type=lambda v: [int(x) for x in v.split(",")], default=None,
                    help="default: the family's (1-5); e.g. 3 for a short CPU run")
    ap.add_argument("--startup-repeats", type=int, default=3, help="runs of pytest for the time to first forward (0: none)")
    ap.add_argument("--startup-workers", type=int, default=2)
    ap.add_argument("--json", default=None, metavar="PATH")
    args = ap.parse_args(argv)
    args.families = [f for f in args.families.split(",") if f]
    unknown = set(args.families) - set(FAMILIES)
    if unknown:
        ap.error(f"unknown families {sorted(unknown)}; known: {', '.join(FAMILIES)}")
    device = resolve_device(args.device)
    models = args.model or list(DEFAULT_MODELS)
    # Each model's table is printed and the JSON written as soon as it is measured: a run stopped at a time limit
    # (a lent GPU's minutes) keeps what it finished. "complete" turns true once the start-up is measured too.
    out: dict[str, Any] = {"device": str(device), "device_name": device_name(device), "cpu_threads": torch.get_num_threads(),
                           "torch": torch.__version__, "torchvision": torchvision.__version__, "models": [],
                           "complete": False}
    print(f"torch {out['torch']}, torchvision {out['torchvision']}, {out['device_name']}")
    decoded: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in models:
            out["models"].append(measure_model(spec, args, device, Path(args.data), decoded, Path(tmp)))
            print_table(out["models"][-1:], device)
            write_json(args.json, out)
    print_legend()
    if args.startup_repeats:
        out["startup"] = {"controller_imports": controller_imports(),
                          "first_forward": first_forward(models[0], args.data, args.device, args.startup_workers,
                                                         args.startup_repeats)}
        s = out["startup"]
        print(f"\nstart-up ({s['first_forward']['command']}): first forward pass after {s['first_forward']['median_s']:.2f} s "
              f"(median of {args.startup_repeats}: {s['first_forward']['runs_s']}); the controller's import of the plugins and "
              f"family descriptors {s['controller_imports']['seconds']:.2f} s, torch imported: "
              f"{s['controller_imports']['torch_imported']}")
    out["complete"] = True
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
