#!/bin/bash
# The fine-tuning sanity table of docs/measurements.md: the `small` CLM, MLM-40 % and random-init
# backbones on one dataset per family, one learning rate (2e-4), seed 0, a reduced budget.
# Needs target/release/encoderlab and the example pretraining runs (configs/pretrain/small_clm.toml,
# small_mlm40.toml); records go to runs/finetune-sanity/. About 30 minutes on 2 cores.
set -u
cd "$(dirname "$0")/.."
B=./target/release/encoderlab
for bb in clm mlm40 random; do
  case $bb in
    clm) ck=runs/pretrain/small_clm/checkpoints/step-0000400; extra="";;
    mlm40) ck=runs/pretrain/small_mlm40/checkpoints/step-0000400; extra="";;
    random) ck=runs/pretrain/small_mlm40/checkpoints/step-0000400; extra="--set model.init=\"random\"";;
  esac
  for task in sst2 conll2003 squad squad_retrieval; do
    case $task in
      sst2) t="--set train.max_steps=200 --set task.max_eval_examples=1000";;
      conll2003) t="--set task.max_train_examples=3200 --set task.max_eval_examples=1000";;
      squad) t="--set train.max_steps=100 --set task.max_eval_examples=500";;
      squad_retrieval) t="--set train.max_steps=100 --set task.max_eval_examples=500";;
    esac
    cfg=configs/finetune/${task}_small.toml
    [ $task = squad_retrieval ] && cfg=configs/finetune/squad_retrieval_small.toml
    [ $task = squad ] && cfg=configs/finetune/squad_small.toml
    echo "=== $bb $task"
    eval $B finetune --config $cfg --set "model.checkpoint=\"$ck\"" $extra $t --set train.learning_rate=2e-4 --set train.out_dir=\"runs/finetune-sanity\" 2>/dev/null | grep -E '"(metric|validation|test|status|train_examples_per_s|eval_examples_per_s|wall_seconds|steps)"'
  done
done
echo DONE
