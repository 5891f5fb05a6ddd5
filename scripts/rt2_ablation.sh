#!/usr/bin/env bash
# RT-2's co-fine-tuning ablation in miniature: pre-train a small VLM on the simulator's vision-language pairs,
# then fine-tune it on robot data alone and co-fine-tune it on robot + VL data from that same start, and
# measure both robot success (rt-eval) and vision-language accuracy (rt2-vl-eval) of each.
#
#   scripts/rt2_ablation.sh DATASET VL_TRAIN_JSONL VL_TEST_JSONL OUT
#
# Step counts, batch size, threads and evaluation size come from the environment (defaults below). Run it
# after `source scripts/env.sh`. Everything lands in OUT: the runs, the logs and OUT/summary.md. A stage whose
# run directory already holds a finished policy (an evaluation: its output) is not run again, so an interrupted
# ablation picks up where it stopped. VL pre-training draws no robot examples, so it may run before DATASET exists: give any dataset.
set -euo pipefail

if [ $# -ne 4 ]; then
    sed -n '2,11p' "$0" >&2
    exit 2
fi
dataset=$1 vl_train=$2 vl_test=$3 out=$4
pretrain_steps=${PRETRAIN_STEPS:-800}
finetune_steps=${FINETUNE_STEPS:-1200}
cofinetune_fraction=${ROBOT_FRACTION:-0.5}
batch=${BATCH_SIZE:-16}
threads=${NUM_THREADS:-1}
eval_episodes=${EVAL_EPISODES:-10}
vl_limit=${VL_LIMIT:-400}
tasks=${TASKS:-pick_cube drive_to_marker}
mkdir -p "$out"

train() {  # train NAME INIT ROBOT_FRACTION STEPS LR
    [ -f "$out/$1/config.json" ] && return 0
    rt-train --policy rt2 --init "$2" --data "$dataset" --vl-data "$vl_train" --robot-fraction "$3" \
        --steps "$4" --batch-size "$batch" --lr "$5" --warmup-steps 50 --num-threads "$threads" --num-workers 1 \
        --save-every 1000000 --log-every 25 --out "$out/$1" > "$out/$1.log" 2>&1
}

[ -f "$out/init/config.json" ] || rt2-init "$out/init" --preset sim
train vl_pretrain "$out/init" 0 "$pretrain_steps" 1e-3
train robot_only "$out/vl_pretrain" 1 "$finetune_steps" 5e-4
train cofinetune "$out/vl_pretrain" "$cofinetune_fraction" "$finetune_steps" 5e-4

{
    echo "| checkpoint | VL exact-match accuracy |$(for t in $tasks; do printf ' %s success |' "$t"; done)"
    echo "|---|---|$(for _ in $tasks; do printf -- '---|'; done)"
} > "$out/summary.md"
for run in vl_pretrain robot_only cofinetune; do
    [ -s "$out/$run.vl_eval.txt" ] || rt2-vl-eval --policy "$out/$run" --data "$vl_test" --limit "$vl_limit" \
        > "$out/$run.vl_eval.txt"
    row="| $run | $(head -n 1 "$out/$run.vl_eval.txt") |"
    if [ "$run" != vl_pretrain ]; then
        # shellcheck disable=SC2086  # $tasks is a list of task names
        [ -f "$out/$run.eval/results.json" ] || rt-eval --policy "$out/$run" --task $tasks \
            --episodes "$eval_episodes" --out "$out/$run.eval" > "$out/$run.eval.txt" 2>&1
        row+=$(python3 -c '
import json, sys
tasks = json.load(open(sys.argv[1]))["tasks"]
print("".join(" %d/%d |" % (tasks[name]["successes"], tasks[name]["episodes"]) for name in sys.argv[2:]))
' "$out/$run.eval/results.json" $tasks)
    else
        row+=$(for _ in $tasks; do printf ' - |'; done)
    fi
    echo "$row" >> "$out/summary.md"
done
cat "$out/summary.md"
