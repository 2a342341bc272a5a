#!/usr/bin/env bash
# One prepared run on a GPU machine that has PyTorch (with CUDA) in its Python but no .NET.
#   Here:  scripts/gpu-pack.sh           (packs .device/: the CLI without libtorch, a training subset of the corpus)
#   There: bash scripts/gpu-run.sh       (OUT=folder for results; MINUTES=training minutes; DEVICE=cuda)
# 1. TorchSharp, pointed at the machine's PyTorch libtorch (LD_LIBRARY_PATH=torch/lib), trains the default
#    voice's network on CUDA for MINUTES and renders a clip on the GPU.
# 2. If TorchSharp cannot load that libtorch, the reference trainer (scripts/gpu_train_reference.py, same network
#    and recipe in PyTorch) trains instead, so the GPU time still yields weights.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; MINUTES=${MINUTES:-7}; DEVICE=${DEVICE:-cuda}; BATCH=${BATCH:-64}; LR=${LR:-3e-4}
mkdir -p "$OUT" /tmp/wg-cli /tmp/wg-data
t0=$(date +%s)
tar xJf .device/cli.tar.xz -C /tmp/wg-cli && tar xJf .device/data.tar.xz -C /tmp/wg-data || { echo "unpack failed"; exit 3; }
tl=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
echo "python torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'); unpacked in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
echo "data: $(ls /tmp/wg-data/wavs | wc -l) clips"
export LD_LIBRARY_PATH="$tl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
wg=/tmp/wg-cli/wavegrad
val=$(head -n1 /tmp/wg-data/val.txt)
timeout $(( ${MINUTES%.*} * 60 + 150 )) "$wg" train vocoder --data /tmp/wg-data --output /tmp/wg-run --device "$DEVICE" --steps 1000000 \
  --max-minutes "$MINUTES" --batch "$BATCH" --lr "$LR" --log-every 200 --validate-every 0 --checkpoint-every 2000 --verbose 2>&1 | tee "$OUT/train-torchsharp.log"
if [ -f /tmp/wg-run/model.safetensors ]; then
  echo "TorchSharp training finished; rendering on $DEVICE"
  for s in 6 50; do "$wg" resynth "/tmp/wg-data/wavs/$val.wav" -o "$OUT/gpu-resynth-$s.wav" --voice /tmp/wg-run --device "$DEVICE" --steps $s 2>&1 | tee -a "$OUT/render.log"; done
  cp /tmp/wg-run/model.safetensors /tmp/wg-run/model-raw.safetensors /tmp/wg-run/voice.json "$OUT/"
else
  echo "TorchSharp could not train here; undefined symbols of libLibTorchSharp against this libtorch (first 10):"
  ldd -r /tmp/wg-cli/libLibTorchSharp.so 2>&1 | grep -i undefined | head -10 | tee "$OUT/undefined-symbols.txt"
  left=$(( ${BUDGET:-540} - ($(date +%s) - t0) - 45 ))
  echo "falling back to the PyTorch reference trainer for $left s"
  PYTHONUNBUFFERED=1 python3 scripts/gpu_train_reference.py /tmp/wg-data /tmp/wg-ref --minutes "$(python3 -c "print(max(0.5, min($MINUTES, $left / 60)))")" --batch "$BATCH" --lr "$LR" 2>&1 | tee "$OUT/train-reference.log"
  cp /tmp/wg-ref/model.safetensors /tmp/wg-ref/model-raw.safetensors /tmp/wg-ref/reference-train.json "$OUT/" 2>/dev/null
fi
echo "total $(( $(date +%s) - t0 )) s"
