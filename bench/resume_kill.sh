#!/usr/bin/env bash
# What a resume after `kill -9` guarantees, checked with the real CLI on a tiny random family (CPU,
# about 3 minutes on a quiet 2-core machine). Prints one line per check; exits 1 if one fails.
#
#   1. SORM labelling killed after its third shard (k=4, 16 solutions a shard), resumed with k=2 and
#      32 a shard: refused, exit 1, one line naming the differing keys, the folder unchanged.
#   2. The same kill, resumed with the same settings: labels and manifest cost (rollouts, generated
#      tokens) equal to an uninterrupted run's.
#   3. SFT killed after its step-60 checkpoint: a resume with --max-steps 30 is refused; a resume
#      with the same 120 steps reports the uninterrupted run's final loss (model card).
#
#   bash bench/resume_kill.sh            # in a temporary folder, removed afterwards
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
GLORE=${GLORE:-.venv/bin/glore-train}
PYTHON=${PYTHON:-.venv/bin/python}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export GLORE_HOME="$TMP/home"
failed=0
check() { if [ "$1" = ok ]; then echo "ok    $2"; else echo "FAIL  $2"; failed=1; fi; }

# run_killed WAIT_FOR_FILE ARGS...: start glore-train, kill -9 it once WAIT_FOR_FILE exists
run_killed() {
    local wait_for=$1
    shift
    "$GLORE" "$@" > "$TMP/killed.log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2> /dev/null && [ ! -f "$wait_for" ]; do sleep 0.05; done
    kill -9 "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    [ -f "$wait_for" ] || { echo "FAIL  the run ended before $wait_for existed"; exit 1; }
}
snapshot() { (cd "$1" && find . -type f -exec sha256sum {} + | sort); }
stat_of() { "$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['stats'][sys.argv[2]])" "$@"; }

"$PYTHON" -c "from glore_engine.testing import make_tiny_family; make_tiny_family('$TMP/family')" 2> /dev/null
DB="sqlite:///$TMP/glore.db"
SORM=(--db "$DB" sorm --base "$TMP/family/student" --sample-n-questions 24 --sample-n 4
    --sample-max-new-tokens 60 --label-max-new-tokens 48 --max-steps 2 --batch-size 2 --warmup-steps 1)

# 1. another config
OUT=$TMP/mixed
run_killed "$OUT/sorm-labels/shards/shard-00002.jsonl" "${SORM[@]}" --label-k 4 --label-shard-size 16 --out "$OUT"
before=$(snapshot "$OUT")
"$GLORE" "${SORM[@]}" --label-k 2 --label-shard-size 32 --out "$OUT" --resume > "$TMP/refused.log" 2>&1
code=$?
line=$(grep '^error:' "$TMP/refused.log" | head -1)
[ "$code" = 1 ] && [[ "$line" == *"k 4 -> 2; shard_size 16 -> 32"* ]] && ok=ok || ok=no
check "$ok" "another label config refused (exit $code): ${line:0:160}..."
[ "$before" = "$(snapshot "$OUT")" ] && ok=ok || ok=no
check "$ok" "the refused resume changed no file under --out"

# 2. the same config
SAME=(--label-k 4 --label-shard-size 16)
"$GLORE" "${SORM[@]}" "${SAME[@]}" --out "$TMP/straight" > /dev/null 2>&1
run_killed "$TMP/resumed/sorm-labels/shards/shard-00002.jsonl" "${SORM[@]}" "${SAME[@]}" --out "$TMP/resumed"
"$GLORE" "${SORM[@]}" "${SAME[@]}" --out "$TMP/resumed" --resume > /dev/null 2>&1
cmp -s "$TMP/straight/sorm-labels/sorm-labels.jsonl" "$TMP/resumed/sorm-labels/sorm-labels.jsonl" && ok=ok || ok=no
check "$ok" "resumed labels byte-identical to an uninterrupted run's"
for key in rollouts rollouts/samples rollouts/generated_tokens; do
    a=$(stat_of "$TMP/straight/sorm-labels/manifest.json" "$key")
    b=$(stat_of "$TMP/resumed/sorm-labels/manifest.json" "$key")
    [ "$a" = "$b" ] && ok=ok || ok=no
    check "$ok" "manifest $key: uninterrupted $a, resumed $b"
done

# 3. training
SFT=(--db "$DB" sft --base tiny --n-train 400 --batch-size 8 --warmup-steps 5 --save-every 60 --log-every 10)
"$GLORE" "${SFT[@]}" --max-steps 120 --out "$TMP/sft-straight" > /dev/null 2>&1
run_killed "$TMP/sft-resumed/train_state/step.json" "${SFT[@]}" --max-steps 120 --out "$TMP/sft-resumed"
cp -r "$TMP/sft-resumed" "$TMP/sft-shorter"  # the same killed run, for the refusal
"$GLORE" "${SFT[@]}" --max-steps 30 --out "$TMP/sft-shorter" --resume > "$TMP/refused.log" 2>&1
code=$?
line=$(grep '^error:' "$TMP/refused.log" | head -1)
loss() { "$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['metrics']['train_loss'])" "$1/model/glore_card.json"; }
if [ -e "$TMP/sft-shorter/model" ]; then line="a model was saved, card train_loss $(loss "$TMP/sft-shorter")"; fi
[ "$code" = 1 ] && [[ "$line" == *"past max_steps 30"* ]] && ok=ok || ok=no
check "$ok" "--max-steps below the saved step refused (exit $code): ${line:0:160}..."
"$GLORE" "${SFT[@]}" --max-steps 120 --out "$TMP/sft-resumed" --resume > /dev/null 2>&1
a=$(loss "$TMP/sft-straight")
b=$(loss "$TMP/sft-resumed")
"$PYTHON" -c "import math,sys; sys.exit(not math.isclose(float(sys.argv[1]), float(sys.argv[2]), rel_tol=1e-5))" "$a" "$b" \
    && ok=ok || ok=no
check "$ok" "final loss in the model card: uninterrupted $a, resumed $b"
exit $failed
