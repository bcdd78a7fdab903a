"""The suite's version: one home, importable without the package's other modules (logit-cache keys, reports)."""

__version__ = "0.1.0"

# The report's schema, bumped when a metric's name or the report's shape changes (CHANGELOG.md).
# 2: canonical model specs (with the spelling as given), the deployment family, `families`,
#    null for every non-finite number, an entry for every collected test with its true outcome
#    (interrupted, crashed, timeout, not_judged, not_run too), `verdict` and `error`.
# 3: per-image outcomes (entries' `outcomes`, the image sets' sample ids and fingerprints in `samples`),
#    transforms drawn per sample id (protocol 2), the baseline family, `directions` in `families`.
# 4: `verdict_reason` (a pass is never on nothing: a model or a baseline gate that judged nothing, a baseline
#    that is not a pass), `run.baseline`; not_judged entries keep what was measured; the model entry's `classes` (its
#    label space: class names in output order, their source, WNIDs for ImageNet-1k), `run.notes` (what the run said once
#    about its input);
#    `incomplete.stopped_by` (the test that -x/--maxfail stopped after). Schema 3 is still read.
# 5: the model entry's `preprocessing.keep_aspect` (false: the whole image warped to the resize size, as a Hugging
#    Face ViT processor does) and `preprocessing.floor_crop` (true: the centre crop's offset rounded down), each
#    present only when not the usual rule; `sha256_of` may name several files hashed together (hf: models).
#    Also in 5: the shape-bias entry's error consistency with the human observers (`human_error_consistency`, its `_ci`,
#    `observers_error_consistency`, `error_consistency_detail`; tables `error_consistency`,
#    `observers_error_consistency`). Schemas 3 and 4 are still read.
#    Also in 5: the clean accuracy entry's `outcomes.labels` (each image's class), the baseline family's
#    `balanced_accuracy` and `per_class_accuracy` comparisons (`per_class` in their metrics). Schemas 3 and 4
#    are still read (without per-image classes: those two comparisons are not compared, and say why).
# 6: (issue 26) the corruption family's per-image outcomes with a downloaded ImageNet-C folder (`samples.imagenet-c`,
#    `outcomes` on its condition entries); in a partial report (--audit-shard) the corruption entries carry `shard_data`
#    and `samples.corruption` / `samples.imagenet-c` their `shard` section. Also in 6: the baseline family's corruption
#    comparisons (`corruption_<corruption>_<severity>`, `mce` / `mean_error`) and each paired right/wrong comparison's
#    `error_consistency` (observed, expected, kappa, kappa_ci, n, below).
#    Also in 6: `outcomes.top1` on the labelled sets' entries (clean accuracy, each transform, each corruption condition: the
#    top-1 output index per image, packed like `outcomes.labels`, named by the model entry's `classes`); the baseline
#    comparisons' `lost_examples` (up to 24 images that went right -> wrong, with each side's top-1 class name).
#    Schemas 3, 4 and 5 are still read (without top-1: the lost images' classes are None).
# 7: (stop 34) the robustness aggregate's `across_models.<transform>` gains `classes_tested` (classes with a p-value)
#    and `alpha`; `compare --format json` gains `not_loaded` (NEW's models that did not load, with their error),
#    `not_selected` (configured models no selected test audited) and `new_verdict` (NEW's own verdict);
#    `aggregates.corruption.models[M].summary_scope` (present only when the summary's corruptions are not the mCE
#    test's) and `thresholds.min_images` on every baseline entry; a named model's (`?name=`) entry `name`, the models
#    section keyed by the model's id (its name, else its canonical spec, as before); (stop 38) `run.unselected_models_note`
#    (which of `run.notes` names the configured models no selected test audited, null when none: merge finds it so, not
#    by its wording). Added keys only: schemas 3 to 6 are still read.
# 8: (stop 41) `run.selection` (selected, deselected, by, last_failed, by_path: a run of a subset, by -k, -m, --lf,
#    --deselect, --sw or paths inside audits/, says so beside every verdict; null when not known); `compare --format
#    json` gains `baseline_selection` and `new_selection` (each report's). Added keys only: schemas 3 to 7 are still read.
# 9: (stop 42) a robustness `across_models` result's `alphas` (its models' levels, where they differ); `alpha` on every
#    transform entry and corruption condition entry (the level its Holm `significant` and the per-class count were
#    judged at: before 9 only a judged horizontal flip recorded it, and 0.05 was read); a merge's `run.phases` holds every
#    part's timings, each worker named by its part. Added keys only: schemas 3 to 8 are still read. Also in 9 (stop 44,
#    an added key that older reports lack): a model's `preprocessing.alpha_on_white` (true: transparent images composited
#    onto white, as a Hugging Face processor with do_convert_rgb does; absent: the alpha dropped). Also in 9 (stop 45,
#    added keys that older reports lack): a model's `dtype` (what it ran in: its weights', an ONNX graph's input's),
#    `saved_dtype` (a Hugging Face folder's weights saved in another dtype, audited in float32) and `outputs` (logits, or
#    probabilities: a softmax's, read as their logarithms); an entry's
#    `metrics.bounds_not_applied` (a configured bound that held the model to nothing, with why: min_top5 on five classes
#    or fewer). Also: a not_judged entry's `thresholds` hold the bounds it would have been judged against, as a
#    judged entry's (before, empty for every family but accuracy; such entries are read as before: "none (not judged)").
SCHEMA_VERSION = 9
OLDEST_READABLE = 3  # the oldest schema still read as a baseline or a merge part
