#!/usr/bin/env bash
# One GPU check, under 8 minutes on one GPU: a 26M-parameter GLoRe family trained with bf16 autocast on
# the synthetic task, then one table (training tokens/s, sampling tokens/s against model.generate,
# one-pass scoring, rollouts/s, the pipeline, peak GPU memory). See bench/gpu_check.py.
#
# Needs only torch, transformers and accelerate (and what they pull in: tokenizers, safetensors,
# numpy, pyyaml, tqdm); no install of this project, no network, no sqlalchemy, gradio, datasets or
# vLLM. Wheels an image lacks go in .whl/ beside this repository, fetched on a machine with network:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_17_x86_64 -d .whl NAME==VERSION
# and are installed here with: pip install --no-index --target /tmp/site .whl/*.whl
#
#   bash bench/gpu_check.sh                 # the check; figures also in $OUT/gpu_check.json when OUT is set
#   bash bench/gpu_check.sh --smoke         # tiny sizes, a few steps, any device (what CI runs on CPU)
#   bash bench/gpu_check.sh --train-seconds 120
set -euo pipefail
cd "$(dirname "$0")/.."

export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
report=()
if [ -n "${OUT:-}" ]; then report=(--report "$OUT/gpu_check.json"); fi
# 470 s: the check itself stays under 8 minutes with the interpreter's start-up
exec timeout 470 "$PYTHON" bench/gpu_check.py "${report[@]}" "$@"
