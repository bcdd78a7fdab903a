"""Reports made without running pytest: the assessors judging hand-made per-image arrays, as a whole run and as the
parts of its shards (what `visionaudit merge` reads)."""

from __future__ import annotations

from tests.audit_runs import ROOT
from visionaudit.data.shards import Shard, shard_of


def synthetic_run(shard, arrays_of, ids, families):
    """A report of assessors judging per-image arrays (a whole run when ``shard`` is None, else one part)."""
    import numpy as np

    from visionaudit.config import Thresholds, load_config
    from visionaudit.data.fingerprint import SampleSet
    from visionaudit.families.assessment import NotJudged, PerImage, assess
    from visionaudit.families.records import AuditRecord
    from visionaudit.report.assembly import assemble

    config = load_config(ROOT / "audit.toml")
    keep = [k for k, i in enumerate(ids) if shard is None or shard_of(i, shard.count) == shard.index]
    section = None if shard is None else {**shard.to_dict(), "whole": {"n": len(ids), "fingerprint": "f"}, "positions": keep}
    sample_set = SampleSet("labelled", "synthetic", tuple(ids[k] for k in keep), "f" if shard is None else f"f{shard}", None, 0,
                           shard=section)
    entries, samples = [], {}
    for name, family, params, context in (
            ("accuracy.clean_top1", "accuracy", {}, {"model": "m", "set_name": "synthetic", "preprocessing": "p"}),
            ("robustness.transform", "robustness", {"transform": "rotation"},
             {"model": "m", "model_classes": 1000, "transform": "rotation", "seed": 0}),
            ("robustness.transform", "robustness", {"transform": "zoom"},
             {"model": "m", "model_classes": 1000, "transform": "zoom", "seed": 0})):
        if family not in families:
            continue
        record = AuditRecord(audit=family, model="m", params=params)
        bounds = dict(config.thresholds(family, "m"))
        bounds["min_images"] = 200  # the whole run (400 images) is judged, no part (about 133) is
        outcome, message = "passed", None
        arrays = {k: np.asarray(v)[keep] for k, v in arrays_of(params.get("transform")).items()}
        try:
            assess(family, name.split(".")[1], record, PerImage(sample_set, arrays), Thresholds(family, "m", bounds), context,
                   keep_for_merge=shard is not None)
        except NotJudged as e:
            outcome, message = "not_judged", f"not judged: {e}"
        except AssertionError as e:
            outcome, message = "failed", f"AssertionError: {e}"
        d = record.to_dict()
        entry = {"nodeid": f"{name}[{params}]", "audit": family, "model": "m", "params": params, "outcome": outcome,
                 "duration": 0.0, "metrics": d["metrics"], "thresholds": d["thresholds"], "tables": d["tables"],
                 "message": message, "worker": None}
        entry.update({k: d[k] for k in ("outcomes", "shard_data") if d.get(k)})
        entries.append(entry)
        samples.update(d["samples"])  # as the collector gathers them
    run = {"seed": 0, "samples": None, "images": "synthetic", "versions": {}, "shard": shard.to_dict() if shard else None}
    return assemble(run, {"m": {"sha256": "0" * 64}}, entries, samples=samples)


def varied_runs(seed: int, families: tuple[str, ...] = ("accuracy", "robustness"),
                count: int = 2) -> tuple[dict, list[dict]]:
    """The whole run and its ``count`` parts, on random, varied per-image data: the whole run (300 images) judges every
    gate, no part (about 300 / ``count``, under synthetic_run's min_images of 200) does."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 300
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    labels, clean = rng.integers(0, 50, n), rng.random(n) < 0.9
    after = clean & (rng.random(n) < 0.97)

    def arrays_of(transform):
        if transform is None:
            return {"correct": clean, "top5": clean | (labels % 2 == 0)}
        return {"clean": clean, "labels": labels, "correct@1": after, "changed@1": after != clean}

    whole = synthetic_run(None, arrays_of, ids, families)
    parts = [synthetic_run(Shard(k, count), arrays_of, ids, families) for k in range(1, count + 1)]
    assert all(e["outcome"] in ("passed", "failed") for e in whole["audits"])
    assert all(e["outcome"] == "not_judged" for p in parts for e in p["audits"])
    return whole, parts


class GivenCorruptionBits:
    """A corruption run (the kernels' or a folder's) whose conditions are given bits and top-1 indices: the images
    ``keep`` of them (a shard's share), paired with the clean pass by :func:`paired` as the real runs pair them."""

    def __init__(self, keep, clean, bits, top1, unavailable):
        self.keep, self._clean, self.bits, self.top1, self.unavailable = keep, clean, bits, top1, unavailable
        self.n_images = len(keep)

    def condition(self, corruption, severity):
        from visionaudit.families.corruption.scoring import Unavailable, paired

        if corruption in self.unavailable:
            raise Unavailable(f"{corruption} is not here")
        key = (corruption, severity)
        return paired(corruption, severity, self.bits[key][self.keep], self._clean[self.keep], self.top1[key][self.keep])

    def clean(self):
        return self._clean[self.keep]

    def jpeg_only(self):
        return self._clean[self.keep][::-1].copy()

    def describe(self, jpeg):
        return {"jpeg_round_trip": jpeg}


def synthetic_corruption_run(shard, ids, clean, bits, imagenet, unavailable=(), top1=None):
    """A report of the corruption assessors judging per-image bits (``top1``: each condition's top-1 indices), measured
    by :class:`Corrupted` as a run measures them (a whole run when ``shard`` is None, else one part, which hands its
    assessors per-image arrays): each condition, and the mCE (or mean error) test over all of them."""
    from visionaudit.config import Thresholds, load_config
    from visionaudit.data.fingerprint import SampleSet
    from visionaudit.families.assessment import NotApplicable, NotJudged, assess
    from visionaudit.families.corruption.judging import Corrupted
    from visionaudit.families.records import AuditRecord
    from visionaudit.report.assembly import assemble

    config = load_config(ROOT / "audit.toml")
    keep = [k for k, i in enumerate(ids) if shard is None or shard_of(i, shard.count) == shard.index]
    section = None if shard is None else {**shard.to_dict(), "whole": {"n": len(ids), "fingerprint": "f"}, "positions": keep}
    sample_set = SampleSet("corruption", "synthetic", tuple(ids[k] for k in keep), "f" if shard is None else f"f{shard}", None, 0,
                           shard=section)
    top1 = top1 if top1 is not None else {k: (~v).astype(int) for k, v in bits.items()}
    run = GivenCorruptionBits(keep, clean, bits, top1, unavailable)
    corrupted = Corrupted(run, sample_set, "kernels", None, False, split=shard is not None)
    bounds = {**dict(config.thresholds("corruption", "m")), "min_images": 200, "bootstrap_resamples": 300,
              "severities": sorted({s for _, s in bits}), "corruptions": sorted({c for c, _ in bits} | set(unavailable))}
    tests = [({"corruption": c, "severity": s}, "condition", corrupted.condition_score(c, s, True)) for c, s in bits]
    tests += [({"corruption": c, "severity": s}, "condition", corrupted.condition_score(c, s, True))
              for c in unavailable for s in bounds["severities"]]
    corruptions = list(dict.fromkeys([c for c, _ in bits] + list(unavailable)))
    tests.append(({}, "mce", corrupted.mce_score(corruptions, bounds["severities"], True)))
    entries, samples = [], {}
    for params, test, measured in tests:
        record = AuditRecord(audit="corruption", model="m", params=params)
        outcome, message = "passed", None
        try:
            assess("corruption", test, record, measured, Thresholds("corruption", "m", bounds),
                   {"model": "m", "imagenet": imagenet, "seed": 0, **params}, keep_for_merge=shard is not None)
        except NotJudged as e:
            outcome, message = "not_judged", f"not judged: {e}"
        except NotApplicable as e:
            outcome, message = "skipped", str(e)
        except AssertionError as e:
            outcome, message = "failed", f"AssertionError: {e}"
        d = record.to_dict()
        entry = {"nodeid": f"corruption.{test}[{params}]", "audit": "corruption", "model": "m", "params": params,
                 "outcome": outcome,
                 "duration": 0.0, "metrics": d["metrics"], "thresholds": d["thresholds"], "tables": d["tables"],
                 "message": message, "worker": None}
        entry.update({k: d[k] for k in ("outcomes", "shard_data") if d.get(k)})
        entries.append(entry)
        samples.update(d["samples"])
    run = {"seed": 0, "samples": None, "images": "synthetic", "versions": {}, "shard": shard.to_dict() if shard else None}
    return assemble(run, {"m": {"sha256": "0" * 64}}, entries, samples=samples)


