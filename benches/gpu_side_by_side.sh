#!/bin/bash
# Issue 24's GPU goal: the `210m` model at the paper's shapes (sequences of 2,048 tokens), bf16
# compute with f32 weights and AdamW, ours (candle, `train.dtype = "bf16"`) against PyTorch (SDPA,
# bf16 autocast) on the same GPU, in alternating rounds; prints each round's tokens/s and the
# ratio of the medians. Needs a `cuda` build of the bench (BENCH=1 scripts/cuda-build.sh) and
# torch with CUDA.
#
#   benches/gpu_side_by_side.sh [BENCH_BINARY] [ROUNDS]      # BATCH=4 STEPS=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${1:-$(ls -t target-cuda/release/deps/pretrain-* 2>/dev/null | grep -v '\.d$' | head -1)}
rounds=${2:-3}
batch=${BATCH:-4}
steps=${STEPS:-10}
[ -x "$bench" ] || { echo "no bench binary: BENCH=1 scripts/cuda-build.sh first" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
date -u +"%Y-%m-%d %H:%M UTC"
log=$(mktemp -d)
for r in $(seq "$rounds"); do
  "$bench" 210m "$batch" 2048 "$steps" clm-bf16,mlm-bf16 --device cuda:0 | tee -a "$log/ours"
  python3 benches/torch_reference.py 210m "$batch" 2048 "$steps" --device cuda | tee -a "$log/torch"
done
python3 - "$log/ours" "$log/torch" <<'PY'
import re, statistics, sys
def rates(path, names):
    out = {n: [] for n in names}
    for line in open(path):
        m = re.match(r"\s+(\S+(?: \S+)*?): step .*?, ([0-9.]+) tokens/s", line)
        if m:
            for n in names:
                if m.group(1).startswith(n):
                    out[n].append(float(m.group(2)))
    return out
ours = rates(sys.argv[1], ["clm-bf16", "mlm-bf16"])
torch = rates(sys.argv[2], ["clm bf16", "mlm bf16"])
for a, b in [("clm-bf16", "clm bf16"), ("mlm-bf16", "mlm bf16")]:
    if ours[a] and torch[b]:
        o, t = statistics.median(ours[a]), statistics.median(torch[b])
        print(f"{a}: ours {o:.0f} tokens/s, PyTorch {t:.0f}: {o / t:.2f}x (medians of {len(ours[a])} rounds; goal >= 0.8x)")
PY
