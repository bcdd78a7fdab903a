"""Every command-line option of the audit suite, registered here and nowhere else (plugins/settings.py
resolves them with audit.toml).

Options that mean the same in ``python -m visionaudit`` commands come from the builders in
visionaudit/cli/options.py, with the ``audit-`` prefix: one declaration, one help text for both.
Numbers are taken as text and checked there, so that a bad value (``--audit-batch-size abc``) is one of
our usage errors, said once and written into the report, rather than argparse's exit before any plugin runs.
"""

from __future__ import annotations

import pytest

from visionaudit.cli.options import (
    PYTEST_PREFIX,
    add_accept_incomplete_baseline_option,
    add_baseline_options,
    add_classes_option,
    add_config_option,
    add_data_options,
    add_model_options,
    add_shape_bias_reference_option,
)
from visionaudit.models.specs import SPEC_OPTIONS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("visionaudit", "visionaudit: model audits")
    group.addoption("--model", action="append", default=None, metavar="SPEC",
                    help="model to audit (repeatable): efficientnet_lite0, torchvision:NAME[:WEIGHTS|none], "
                         "timm:NAME[.TAG] (pretrained) or timm:NAME:CHECKPOINT|none, hf:FOLDER or hf:ORG/NAME[@REV] "
                         "(Hugging Face), FILE.pt (TorchScript), FILE.pth|.safetensors with --arch, FILE.onnx, "
                         f"package.module:factory; any of them may end in ?key=value&... ({', '.join(SPEC_OPTIONS)}: "
                         "docs/models.md). "
                         "Default: [run] models in audit.toml, else efficientnet_lite0")
    add_model_options(group.addoption, PYTEST_PREFIX)
    add_classes_option(group.addoption, PYTEST_PREFIX)
    add_data_options(group.addoption, PYTEST_PREFIX)
    group.addoption("--audit-offline", action="store_true", default=False,
                    help="never download: data missing from the user cache (or Imagenette), or a hub model (hf:ORG/NAME, "
                         "timm:NAME.TAG) missing from the Hugging Face cache, is an error naming how to get it (also "
                         "VISIONAUDIT_OFFLINE=1)")
    group.addoption("--audit-samples", default=None, metavar="N",
                    help="audit a fixed, seeded, class-stratified subset of N images per image set (quick runs)")
    group.addoption("--audit-shard", default=None, metavar="I/N",
                    help="run shard I of N: the images whose sample id hashes to I (audits that do not split by image "
                         "run whole in shard 1); python -m visionaudit merge joins the N partial reports")
    group.addoption("--audit-seed", default=None, metavar="SEED", help="seed for subsets and transforms (default 0)")
    add_config_option(group.addoption, PYTEST_PREFIX)
    group.addoption("--audit-batch-size", default=None, metavar="N",
                    help="images per forward pass (default: 8 on CPU, 128 on accelerators)")
    group.addoption("--audit-decode-memory", default=None, metavar="SIZE",
                    help="decoded images each process keeps, such as 2GiB or 512MiB; a larger image set is decoded in "
                         "batches as the model reads it (default: $VISIONAUDIT_DECODE_MEMORY, else 2 GiB or a quarter "
                         "of the available memory shared by the workers, whichever is less)")
    group.addoption("--audit-max-image-pixels", default=None, metavar="N",
                    help="refuse images of more than N pixels, a guard against decompression bombs (default 178956970, "
                         "where PIL refuses; also [run] max_image_pixels)")
    group.addoption("--audit-cache", default=None, metavar="DIR",
                    help="keep clean logits in DIR, keyed by model weights, images and preprocessing, so the next run "
                         "skips the clean forward pass (default: $VISIONAUDIT_LOGIT_CACHE, else off)")
    group.addoption("--audit-json", default=None, metavar="PATH",
                    help="write the audit report (JSON) to PATH; while the run goes on, PATH.journal.jsonl keeps every "
                         "finished test (python -m visionaudit report --from-journal rebuilds a report from it) and "
                         "PATH.lock keeps a second run off PATH (it stops at startup, exit 4)")
    group.addoption("--audit-timeout", default=None, metavar="SECONDS",
                    help="time limit per test (default 1800); a test past it ends as timeout (pytest-timeout)")
    group.addoption("--audit-imagenet-c", default=None, metavar="DIR",
                    help="score a downloaded ImageNet-C folder (<corruption>/<severity>/<wnid>/*.JPEG) as it is, instead "
                         "of corrupting the labelled images with the kernels (the corruption family)")
    add_baseline_options(group.addoption, PYTEST_PREFIX)
    add_accept_incomplete_baseline_option(group.addoption, PYTEST_PREFIX)
    group.addoption("--audit-html", default=None, metavar="PATH",
                    help="also write the report as one self-contained HTML file (figures inline, no network access)")
    add_shape_bias_reference_option(group.addoption, PYTEST_PREFIX)
