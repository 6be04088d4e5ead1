#!/usr/bin/env bash
# The GPU benchmark of docs/PERFORMANCE.md in one command, for a machine that has torch, transformers, accelerate
# and peft but neither Hydra nor datasets and no network (the lent GPU machine of the device README).
#
#   scripts/gpu_bench.sh fetch          # here, with network: the missing pure-Python wheels into .whl/
#   scripts/gpu_bench.sh run [OUT]      # there, with .whl carried: install them into /tmp/site, run the harness
#
# `run` measures RoBERTa-large (random init, same shapes) in bf16 with SDPA at sequence length 128: batch 32 and a
# small batch of 4, then batch 32 with the compiled variant; tables go to stdout, JSON records to OUT
# (default outputs/bench). Each step's samples/s, model TFLOP/s and MFU against the card's dense bf16 peak are in
# the training table (scripts/bench/flops.py).
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions CI pins (requirements-ci.txt); Hydra's parser runtime ships no wheel and is built here (pure Python).
pinned() { grep -E "^($1)==" requirements-ci.txt; }
WHEELS=($(pinned 'hydra-core|omegaconf|datasets|dill|multiprocess'))
SDIST_ONLY=($(pinned 'antlr4-python3-runtime'))

fetch() {
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    python3 -m pip wheel -q --no-deps -w .whl "${SDIST_ONLY[@]}"
    ls .whl
}

run() {
    local out="${1:-outputs/bench}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    # the package itself: adamix_runner.conf exists only as an install's mapping of conf/ (no src/ on the path)
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target /tmp/site .
    export PYTHONPATH="/tmp/site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
    local common=(--backbone roberta-large --device cuda --dtype bf16 --seq-len 128 --out "$out")
    python3 scripts/bench.py "${common[@]}" --batch 32 --reps 10 --warmup 3 --infer-batch 32 --skip data
    python3 scripts/bench.py "${common[@]}" --batch 4 --reps 10 --warmup 3 --skip data infer
    python3 scripts/bench.py "${common[@]}" --batch 32 --reps 5 --warmup 2 --skip data infer --compile
}

case "${1:-}" in
    fetch) fetch ;;
    run) run "${2:-}" ;;
    *) echo "usage: $0 fetch | run [OUT]" >&2; exit 2 ;;
esac
