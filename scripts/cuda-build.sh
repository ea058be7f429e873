#!/bin/bash
# Builds `encoderlab` with the `cuda` feature on a machine that has no CUDA toolkit (a login
# node, a laptop), from NVIDIA's PyPI wheels, for a GPU machine whose driver supports CUDA 13
# (driver 580+). With a CUDA 13 toolkit installed (nvcc on PATH), plain
# `CUDA_COMPUTE_CAP=90 cargo build --release --features cuda` does the same.
#
#   scripts/cuda-build.sh [COMPUTE_CAP] [FEATURES]   # default 90 (H100/H200; 80 for A100) and
#                                                    # cuda,nccl (NCCL for data-parallel GPU ranks);
#                                                    # add flash-attn for flash attention's forward
#
# Leaves target-cuda/release/encoderlab. SLIM=1: without the default features (polars, plots,
# notebooks; FEATURES must then name cli) into target-cuda-slim, what scripts/gpu-check.sh carries. At run time it needs libcuda (the driver) and
# libcublas/libcublasLt/libcurand/libcudart 13 (a PyTorch cu13 environment has them under
# site-packages/nvidia/cu13/lib: add that folder to LD_LIBRARY_PATH), and with `nccl` libnccl.so.2
# (site-packages/nvidia/nccl/lib; `pip install nvidia-nccl-cu13`).
# Measured here: a clean build took about an hour on 2 cores shared with other work (candle's
# CUDA kernels, compiled by nvcc, take most of it).
set -euo pipefail
cap=${1:-90}
features=${2:-cuda,nccl}
root=$(cd "$(dirname "$0")/.." && pwd)
kit=$root/target-cuda/toolkit
if [ ! -x "$kit/nvidia/cu13/bin/nvcc" ]; then
  mkdir -p "$kit/wheels"
  python3 -m pip download --no-deps -q -d "$kit/wheels" \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cublas==13.0.*" \
    "nvidia-curand==10.4.*" "nvidia-cuda-nvrtc==13.0.*"
  for w in "$kit"/wheels/*.whl; do python3 -m zipfile -e "$w" "$kit"; done
  chmod +x "$kit"/nvidia/cu13/bin/* "$kit"/nvidia/cu13/nvvm/bin/*
  rm -rf "$kit/wheels"
fi
if [[ ",$features," == *",nccl,"* ]] && [ ! -e "$kit/nvidia/nccl/lib/libnccl.so.2" ]; then
  mkdir -p "$kit/wheels"
  python3 -m pip download --no-deps -q -d "$kit/wheels" "nvidia-nccl-cu13"
  for w in "$kit"/wheels/*.whl; do python3 -m zipfile -e "$w" "$kit"; done
  rm -rf "$kit/wheels"
fi
# flash-attn: candle-flash-attn's build (cudaforge) clones CUTLASS from GitHub at a pinned commit
# into its cache ($CUDAFORGE_HOME/git/checkouts/cutlass-<commit>). Where GitHub cannot be reached
# that cache is filled from PyPI instead: CUTLASS 4.2's headers (nvidia-cutlass), at the name
# and commit cudaforge looks for. Its 53 kernels took 101 min of a 2-core build here
# (CUDAFORGE_THREADS: nvcc processes at once, default all cores).
if [[ ",$features," == *",flash-attn,"* ]]; then
  build_rs=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -path '*candle-flash-attn-0.11.*/build.rs' | head -1)
  if [ -z "$build_rs" ]; then (cd "$root" && cargo fetch -q); build_rs=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -path '*candle-flash-attn-0.11.*/build.rs' | head -1); fi
  commit=$(grep -oE 'CUTLASS_COMMIT: &str = "[0-9a-f]{40}"' "$build_rs" | grep -oE '[0-9a-f]{40}')
  export CUDAFORGE_HOME=$kit/cudaforge CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
  # the compiled kernels, shared by target-cuda and target-cuda-slim (cudaforge rebuilds only
  # what changed)
  export CANDLE_FLASH_ATTN_BUILD_DIR=${CANDLE_FLASH_ATTN_BUILD_DIR:-$kit/flash-attn}
  mkdir -p "$CANDLE_FLASH_ATTN_BUILD_DIR"
  cache=$CUDAFORGE_HOME/git/checkouts/cutlass-${commit:0:16}
  if [ ! -d "$cache/include" ] && ! timeout 20 git ls-remote https://github.com/NVIDIA/cutlass.git HEAD >/dev/null 2>&1; then
    echo "GitHub unreachable: CUTLASS headers from PyPI (nvidia-cutlass 4.2) into $cache"
    rm -rf "$cache" "$kit/wheels" && mkdir -p "$kit/wheels" "$cache/tools/util"
    python3 -m pip download --no-deps -q -d "$kit/wheels" "nvidia-cutlass==4.2.0.0"
    python3 -m zipfile -e "$kit"/wheels/nvidia_cutlass-*.whl "$kit/wheels/x"
    mv "$kit/wheels/x/cutlass_library/source/include" "$cache/include"
    mv "$kit/wheels/x/cutlass_library/source/tools/util/include" "$cache/tools/util/include"
    git -C "$cache" init -q && echo "$commit" > "$cache/.git/HEAD"
    rm -rf "$kit/wheels"
  fi
fi
cu=$kit/nvidia/cu13
# the linker wants unversioned names
for l in cublas cublasLt cudart nvrtc; do ln -sf "lib$l.so.13" "$cu/lib/lib$l.so"; done
ln -sf libcurand.so.10 "$cu/lib/libcurand.so"
if [ -e "$kit/nvidia/nccl/lib/libnccl.so.2" ]; then ln -sf "$kit/nvidia/nccl/lib/libnccl.so.2" "$cu/lib/libnccl.so"; fi
# libcuda comes with the driver, absent here: link against a stub exporting the driver API
# symbols cudarc declares; the GPU machine's real libcuda.so.1 is loaded at run time
stub=$kit/stub
mkdir -p "$stub"
src=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -path '*cudarc-*/src/driver/sys/mod.rs' | head -1)
if [ -z "$src" ]; then (cd "$root" && cargo fetch -q); src=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -path '*cudarc-*/src/driver/sys/mod.rs' | head -1); fi
grep -ohE '\bfn (cu[A-Z][A-Za-z0-9_]*)\(' "$src" | sed -E 's/fn (.*)\(/void \1(void){}/' | sort -u > "$stub/libcuda.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 "$stub/libcuda.c" -o "$stub/libcuda.so"
export PATH=$cu/bin:$PATH CUDA_ROOT=$cu CUDA_PATH=$cu CUDA_HOME=$cu CUDA_COMPUTE_CAP=$cap
export LIBRARY_PATH=$stub:$cu/lib RUSTFLAGS="-L $stub -L $cu/lib" CARGO_TARGET_DIR=$root/target-cuda
defaults=()
if [ "${SLIM:-0}" = 1 ]; then CARGO_TARGET_DIR=$root/target-cuda-slim defaults=(--no-default-features); fi
cd "$root" && cargo build --release "${defaults[@]}" --features "$features" --bin encoderlab
echo "built $CARGO_TARGET_DIR/release/encoderlab (sm_$cap, features $features)"
# BENCH=1: the pretraining bench too (benches/gpu_side_by_side.sh runs it)
if [ "${BENCH:-0}" = 1 ]; then
  cargo build --release "${defaults[@]}" --features "$features" --bench pretrain
  echo "built $(ls -t "$CARGO_TARGET_DIR"/release/deps/pretrain-* | grep -v '\.d$' | head -1)"
fi
