#!/bin/bash
# Issue 24's GPU checks, in two steps, for a GPU machine that cannot build (or reach the network):
#
#   scripts/gpu-check.sh prepare [PACK]   # here: a slim `cli,cuda,nccl` build of encoderlab and of
#                                         # the pretraining bench (scripts/cuda-build.sh, SLIM=1;
#                                         # FEATURES=cli,cuda,nccl,flash-attn for flash attention),
#                                         # stripped and xz-compressed with a pack into gpu-check/
#                                         # (36 MB; 51 MB with flash-attn: the device tool carries 64)
#   scripts/gpu-check.sh run              # there, with gpu-check/ carried along: prints and writes
#                                         # to $OUT (or gpu-check/out) what the checks measured
#
# `run` needs the GPU's driver and CUDA 13's cuBLAS/cuRAND/cudart and NCCL: a PyTorch cu13
# environment has them (its site-packages/nvidia/*/lib folders are put on LD_LIBRARY_PATH). It
# runs, each in a few minutes:
#   1. `small` pretraining on cuda:0 in bf16, 40 steps, plain and through NCCL on one GPU
#      (ENCODERLAB_NCCL=1): the two must give the same losses; tokens/s of both;
#   2. with flash-attn in the build: the same run with the kernel off (ENCODERLAB_FLASH=0), the
#      losses side by side; the bench's `attention-paths` (flash and composed attention of `210m`
#      at 2,048 tokens, times and distances from f32);
#   3. benches/gpu_side_by_side.sh: `210m` at 2,048 tokens, ours against PyTorch (SDPA, bf16).
# ENC=…, BENCH=… and DEVICE=cpu run the same steps with other binaries (how it is checked here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/gpu-check
case "${1:-}" in
prepare)
  pack=${2:-$root/runs/study/pretrain_data}
  [ -f "$pack/meta.json" ] || { echo "no pack at $pack (run the demo study, or give one)" >&2; exit 2; }
  features=${FEATURES:-cli,cuda,nccl}
  SLIM=1 BENCH=1 "$root/scripts/cuda-build.sh" "${CAP:-90}" "$features"
  CARGO_TARGET_DIR=$root/target-cuda-slim
  bench=$(ls -t "$CARGO_TARGET_DIR"/release/deps/pretrain-* | grep -v '\.d$' | head -1)
  rm -rf "$dir" && mkdir -p "$dir"
  strip -o "$dir/encoderlab" "$CARGO_TARGET_DIR/release/encoderlab"
  strip -o "$dir/bench" "$bench"
  # xz, not gzip: flash attention's kernels make each binary 326 MB, 80 MB gzipped, 23 MB in xz
  xz -9 -T0 "$dir/encoderlab" "$dir/bench"
  tar -C "$(dirname "$pack")" -czf "$dir/pack.tar.gz" "$(basename "$pack")"
  echo "$(cd "$root" && git rev-parse HEAD) (features $features)" > "$dir/commit"
  du -sh "$dir"
  ;;
run)
  out=${OUT:-$dir/out}
  mkdir -p "$out"
  work=$(mktemp -d)
  enc=${ENC:-} bench=${BENCH:-}
  # xz's command, or Python's lzma where the machine lacks it
  unxz() { xz -dc "$1" 2>/dev/null || python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; }
  if [ -z "$enc" ]; then unxz "$dir/encoderlab.xz" > "$work/encoderlab" && chmod +x "$work/encoderlab" && enc=$work/encoderlab; fi
  if [ -z "$bench" ]; then unxz "$dir/bench.xz" > "$work/bench" && chmod +x "$work/bench" && bench=$work/bench; fi
  tar -C "$work" -xzf "$dir/pack.tar.gz"
  pack=$(ls -d "$work"/*/ | head -1)
  device=${DEVICE:-cuda:0}
  # CUDA 13 and NCCL libraries of a PyTorch environment
  libs=$(python3 -c "import nvidia, os; print(':'.join(os.path.join(p, d, 'lib') for p in nvidia.__path__ for d in sorted(os.listdir(p)) if os.path.isdir(os.path.join(p, d, 'lib'))))" 2>/dev/null || true)
  export LD_LIBRARY_PATH=${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  {
    echo "commit $(cat "$dir/commit" 2>/dev/null || echo unknown), $(date -u +'%Y-%m-%d %H:%M UTC'), device $device"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    cat > "$work/small.toml" <<EOF
name = "small"
[model]
preset = "small"
[data]
pack = "$pack"
batch_size = 32
eval_blocks = 16
[train]
phases = [{ objective = "mlm", ratio = 0.4, steps = 40 }]
eval_every_steps = 40
checkpoint_every_steps = 40
device = "$device"
dtype = "$([ "$device" = cpu ] && echo f32 || echo bf16)"
tensorboard = false
[lr]
peak = 1e-3
warmup_steps = 4
schedule = { kind = "constant" }
EOF
    flash=0
    if grep -q flash-attn "$dir/commit" 2>/dev/null; then flash=1; fi
    # runs0: as built; runs1: NCCL on one GPU; runsF: flash attention off
    for run in 0 1 $([ $flash = 1 ] && echo F); do
      nccl=$([ "$run" = 1 ] && echo 1 || echo 0) off=$([ "$run" = F ] && echo 0 || echo 1)
      ENCODERLAB_NCCL=$nccl ENCODERLAB_FLASH=$off "$enc" pretrain --config "$work/small.toml" --set "train.out_dir=\"$work/runs$run\"" > "$work/summary$run.json"
      python3 - "$work/runs$run/small" "ENCODERLAB_NCCL=$nccl ENCODERLAB_FLASH=$off" <<'PY'
import json, statistics, sys
m = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
print(f"small MLM-40 % ({sys.argv[2]}): loss at step 40 {m[-1]['loss']:.6f}, held-out MLM {m[-1]['eval_mlm_loss']:.6f}, "
      f"median {statistics.median(x['tokens_per_s'] for x in m[2:]):.0f} tokens/s")
PY
    done
    if [ $flash = 1 ]; then
      python3 - "$work/runs0/small" "$work/runsF/small" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p + "/metrics.jsonl")] for p in sys.argv[1:])
d = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
print(f"flash attention against the composed ops, 40 steps: largest |training loss difference| {d:.2e}, "
      f"held-out MLM {a[-1]['eval_mlm_loss']:.4f} against {b[-1]['eval_mlm_loss']:.4f}")
PY
      [ "$device" = cpu ] || "$bench" 210m 4 2048 3 attention-paths --device "$device"
    fi
    if cmp -s <(grep -o '"loss":[^,]*' "$work/runs0/small/metrics.jsonl") <(grep -o '"loss":[^,]*' "$work/runs1/small/metrics.jsonl"); then
      echo "NCCL on one GPU: the same losses as without it at every step"
    else
      echo "NCCL on one GPU: THE LOSSES DIFFER from the run without it"
    fi
    if [ "$device" != cpu ]; then
      BATCH=${GPU_BATCH:-4} STEPS=${GPU_STEPS:-6} bash "$root/benches/gpu_side_by_side.sh" "$bench" "${ROUNDS:-2}"
    fi
  } 2>&1 | tee "$out/gpu-check.txt"
  ;;
*)
  sed -n 2,18p "$0"
  exit 2
  ;;
esac
