#!/usr/bin/env bash
# Executes every notebook headless with the evcxr kernel (after notebooks/setup.sh), writes the
# executed copies to runs/notebooks/executed/ and fails on any cell error (nbconvert alone does
# not: see check_outputs.py). --inplace also replaces the committed notebooks with the executed
# ones (how their outputs are refreshed). Prints each notebook's wall time.
#   notebooks/run.sh [--inplace] [NOTEBOOK…]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
inplace=0
if [ "${1:-}" = "--inplace" ]; then inplace=1; shift; fi
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/[0-9]*.ipynb)
out=runs/notebooks/executed
mkdir -p "$out"
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb")
  start=$(date +%s)
  python3 -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.kernel_name=rust --ExecutePreprocessor.timeout=3600 \
    --output-dir "$out" --output "$name" "$nb"
  python3 notebooks/check_outputs.py "$out/$name"
  echo "$name: $(( $(date +%s) - start )) s"
  if [ "$inplace" = 1 ]; then cp "$out/$name" "$nb"; fi
done
