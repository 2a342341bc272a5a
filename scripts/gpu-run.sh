#!/usr/bin/env bash
# One prepared run of the default voice's training on a GPU machine with PyTorch (CUDA) in its Python and no .NET,
# from the .device/ that scripts/gpu-pack.sh made (run through the device tool as: bash .device/gpu-run.sh):
#   1. unpacks the CLI and the Opus corpus, and points TorchSharp at the machine's libtorch (torch/lib)
#   2. measures training throughput (samples/s and loss) for each batch/precision in SWEEP, SWEEP_SECONDS each
#   3. trains the voice with the fastest for MINUTES (HiFi-GAN framing, RECIPE flags), checkpointing every 1,000 steps;
#      run again, it resumes; with .device/init it starts from those weights
#   4. scores it on the held-out speakers and the seen speakers' validation clips against Griffin-Lim, renders check clips
#   5. leaves in $OUT (8 files, the most that come back): voice/ (fp16 weights and card), run.log (with the throughput
#      table), train.log, heldout.tsv, seen.tsv, check-griffin-lim.wav, check-noise.wav
# env: OUT (/tmp/gpu-out), ARCH (the init voice's architecture, else stft), MINUTES (6), SIZE (small), LR (3e-4),
#      RECIPE ("--prior priorgrad --stft-loss 0.1" for wavegrad, "--bin-gains --phase-prior --stft-loss 1 --crop-frames 32" for stft, the default voice's),
#      SWEEP ("64:fp32 128:bf16 256:bf16"), SWEEP_SECONDS (20), DEVICE (cuda), WG (a CLI to use instead, for a dry run)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/gpu-out}; MINUTES=${MINUTES:-6}; SIZE=${SIZE:-small}; LR=${LR:-3e-4}; DEVICE=${DEVICE:-cuda}
ARCH=${ARCH:-$(sed -n 's/.*"architecture": *"\([a-z]*\)".*/\1/p' "$here/init/voice.json" 2>/dev/null | head -n 1)}; ARCH=${ARCH:-stft}
if [ "$ARCH" = wavegrad ]; then RECIPE=${RECIPE:---prior priorgrad --stft-loss 0.1}; else RECIPE=${RECIPE:---bin-gains --phase-prior --stft-loss 1 --crop-frames 32}; fi
RECIPE="--architecture $ARCH $RECIPE"; SWEEP=${SWEEP:-64:fp32 128:bf16 256:bf16}; SWEEP_SECONDS=${SWEEP_SECONDS:-20}
work=/tmp/wg; mkdir -p "$OUT" "$work"
t0=$(date +%s)
log() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/run.log"; }
if [ -z "${WG:-}" ]; then
  [ -x "$work/cli/wavegrad" ] || { mkdir -p "$work/cli" && tar xJf "$here/cli.tar.xz" -C "$work/cli"; } || { log "unpacking the CLI failed"; exit 3; }
  tl=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || { log "no PyTorch in python3"; exit 3; }
  export LD_LIBRARY_PATH="$tl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  log "python torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee -a "$OUT/run.log"
  WG="$work/cli/wavegrad"
fi
read -r -a wg <<< "$WG"
if ! "${wg[@]}" schedule show wg-6 > /dev/null 2>&1; then
  log "the CLI does not start here; undefined symbols of libLibTorchSharp against this libtorch (first 10):"
  ldd -r "$work/cli/libLibTorchSharp.so" 2>&1 | grep -i undefined | head -10 | tee -a "$OUT/run.log"
  exit 4
fi
# The Opus corpus is decoded to WAV once, on all cores, so that each training run loads it quickly.
if [ ! -d "$work/data/train" ]; then
  mkdir -p "$work/packed" && tar xJf "$here/data.tar.xz" -C "$work/packed" && "${wg[@]}" corpus unpack "$work/packed" -o "$work/data" | tee -a "$OUT/run.log" \
    || { log "unpacking the corpus failed"; exit 3; }
fi
log "corpus: $(find "$work/data/train" -name '*.wav' | wc -l) training files, $(find "$work/data/heldout" -name '*.wav' | wc -l) held-out"
read -r -a recipe <<< "$RECIPE"

# 2. Throughput: the last progress line of a short run of each setting.
run="$work/run"
if [ ! -d "$run/checkpoint" ]; then
  echo -e "batch\tprecision\tsamples_per_s\tsteps_per_s\tloss" | tee -a "$OUT/run.log"
  best=""; best_rate=0
  for s in $SWEEP; do
    b=${s%%:*}; p=${s##*:}; bf=(); [ "$p" = bf16 ] && bf=(--bf16)
    rm -rf "$work/sweep"
    "${wg[@]}" train vocoder --data "$work/data/train" -o "$work/sweep" --size "$SIZE" --steps 1000000 --batch "$b" --lr "$LR" \
      --device "$DEVICE" --log-every 5 --validate-every 0 --checkpoint-every 1000000 --max-minutes "$(awk -v s="$SWEEP_SECONDS" 'BEGIN { print s / 60 }')" \
      "${recipe[@]}" "${bf[@]}" > "$work/sweep.log" 2>&1
    line=$(grep '^step' "$work/sweep.log" | tail -n 1)
    rate=$(echo "$line" | sed -n 's/.* \([0-9]*\) samples\/s.*/\1/p'); sps=$(echo "$line" | sed -n 's/.* \([0-9.]*\) steps\/s.*/\1/p')
    loss=$(echo "$line" | sed -n 's/.*loss \([0-9.]*\).*/\1/p')
    echo -e "$b\t$p\t${rate:-0}\t${sps:-0}\t${loss:-nan}" | tee -a "$OUT/run.log"
    if [ "${rate:-0}" -gt "$best_rate" ]; then best_rate=$rate; best=$s; fi
  done
  [ -n "$best" ] || { log "no setting trained; the last sweep's log:"; tail -n 20 "$work/sweep.log" | tee -a "$OUT/run.log"; exit 5; }
  log "fastest: $best ($best_rate samples/s)"
  echo "$best" > "$work/best"
fi
best=$(cat "$work/best"); b=${best%%:*}; bf=(); [ "${best##*:}" = bf16 ] && bf=(--bf16)

# 3. Training, resumable; from .device/init when there is one.
start=(); [ -d "$run/checkpoint" ] && start=(--resume)
[ ${#start[@]} -eq 0 ] && [ -f "$here/init/voice.json" ] && start=(--init-from "$here/init")
log "training: batch $b ${bf[*]} ${recipe[*]} ${start[*]}, $MINUTES min"
"${wg[@]}" train vocoder --data "$work/data/train" -o "$run" --size "$SIZE" --steps 10000000 --batch "$b" --lr "$LR" --device "$DEVICE" \
  --log-every 200 --validate-every 2000 --checkpoint-every 1000 --max-minutes "$MINUTES" "${recipe[@]}" "${bf[@]}" "${start[@]}" \
  >> "$OUT/train.log" 2>&1
tail -n 3 "$OUT/train.log" | tee -a "$OUT/run.log"

# 4. Held-out speakers and seen speakers' validation clips, against Griffin-Lim; check clips.
"${wg[@]}" voice eval --voice "$run" --data "$work/data/heldout" --held-out --clips 3 --seconds 4 --device "$DEVICE" -o "$OUT/heldout.tsv" \
  2>/dev/null | tee -a "$OUT/run.log"
"${wg[@]}" voice eval --voice "$run" --data "$work/data/train" --clips 1 --seconds 4 --device "$DEVICE" -o "$OUT/seen.tsv" 2>/dev/null \
  | grep '^mean' | tee -a "$OUT/run.log"
clip=$(find "$work/data/heldout" -name '*.wav' | sort | head -n 1)
for start in griffin-lim noise; do
  "${wg[@]}" resynth "$clip" -o "$OUT/check-$start.wav" --voice "$run" --device "$DEVICE" --start "$start" 2>&1 | tail -n 1 | tee -a "$OUT/run.log"
done

# 5. The voice to ship (fp16) and its card.
"${wg[@]}" voice export "$run" -o "$OUT/voice" | tee -a "$OUT/run.log"
log "done"
