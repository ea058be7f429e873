#!/usr/bin/env bash
# Installs what the notebooks need and checks it: a minimal Jupyter (pip: jupyter_client,
# nbclient, nbconvert, nbformat, ipykernel) and the evcxr Rust kernel (cargo install, ≈ 7 min on
# 2 cores the first time), registered as the `rust` kernel with the environment that makes
# notebook code run at release speed (see notebooks/README.md). Idempotent: a second call
# only checks (≈ 2 s).
#   notebooks/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVCXR_VERSION=0.22.0
export PATH="$HOME/.cargo/bin:$PATH"

pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@" \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
if ! python3 -c 'import jupyter_client, nbclient, nbconvert, nbformat, ipykernel' 2>/dev/null; then
  echo "installing Jupyter (pip)"
  pip_install jupyter_client nbclient nbconvert nbformat ipykernel
fi
if ! cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; then
  echo "installing evcxr_jupyter $EVCXR_VERSION (cargo install --locked: a few minutes)"
  # --locked: evcxr's own lock file; a newer salsa breaks the build
  cargo install evcxr_jupyter --locked --version "$EVCXR_VERSION"
fi

# register the kernel, then give it the environment the notebooks need
evcxr_jupyter --install >/dev/null
python3 notebooks/kernel_env.py

# checks: Jupyter sees the kernel, nbconvert runs
kernels=$(python3 -m jupyter kernelspec list)
grep -q '^ *rust ' <<<"$kernels" || { echo "the rust kernel is not registered" >&2; exit 1; }
python3 -m jupyter nbconvert --version >/dev/null
echo "notebooks ready: evcxr_jupyter $EVCXR_VERSION, kernel 'rust'"
