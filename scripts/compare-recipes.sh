#!/usr/bin/env bash
# Compares training recipes of the vocoder at equal steps, on speakers never trained on and on the seen speakers'
# validation clips: each recipe trains a fresh network on the same data with the same seed, then `wavegrad voice eval`
# scores it against Griffin-Lim (the network alone from noise, and as shipped). Results: OUT/RECIPE/{train.log,
# heldout.tsv, seen.tsv} and OUT/summary.md.
#
# usage: scripts/compare-recipes.sh [CORPUS_DIR] [STEPS] [OUT] [RECIPE ...]
#   CORPUS_DIR  speaker folders from scripts/build-multispeaker.sh (default corpus/multi; uses its train/ and heldout/)
#   STEPS       training steps per recipe (default 1200)
#   RECIPE      baseline | priorgrad | stft | priorgrad-stft (default: all four)
# Environment: SIZE (small), BATCH (8), CROP (24), LR (2e-4), CLIPS (3 per speaker), SECONDS_PER_CLIP (4), DEVICE (cpu), EXTRA (more flags).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-corpus/multi}; steps=${2:-1200}; out=${3:-artifacts/recipes}; shift $(( $# < 3 ? $# : 3 ))
recipes=("${@:-baseline priorgrad stft priorgrad-stft}"); read -r -a recipes <<< "${recipes[*]}"
size=${SIZE:-small}; batch=${BATCH:-8}; crop=${CROP:-24}; lr=${LR:-2e-4}; clips=${CLIPS:-3}; seconds=${SECONDS_PER_CLIP:-4}; device=${DEVICE:-cpu}
mkdir -p "$out"
# A private copy of the CLI, so that rebuilding the tree meanwhile cannot change the running program.
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
rm -rf "$out/cli"; cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$out/cli"
wg=(dotnet "$out/cli/wavegrad.dll")
for r in "${recipes[@]}"; do
  case "$r" in
    baseline) flags=() ;;
    priorgrad) flags=(--prior priorgrad) ;;
    stft) flags=(--stft-loss 0.1) ;;
    priorgrad-stft) flags=(--prior priorgrad --stft-loss 0.1) ;;
    *) echo "compare-recipes: unknown recipe $r" >&2; exit 2 ;;
  esac
  run="$out/$r"
  mkdir -p "$run"
  resume=(); [ -d "$run/voice/checkpoint" ] && resume=(--resume)
  echo "== $r: ${flags[*]:-(current recipe)}, $steps steps"
  "${wg[@]}" train vocoder --data "$corpus/train" -o "$run/voice" --size "$size" --steps "$steps" --batch "$batch" --crop-frames "$crop" \
    --lr "$lr" --validate-every 0 --log-every 100 --checkpoint-every 200 --device "$device" "${flags[@]}" "${resume[@]}" ${EXTRA:-} \
    >> "$run/train.log" 2>&1
  tail -n 2 "$run/train.log"
  "${wg[@]}" voice eval --voice "$run/voice" --data "$corpus/heldout" --held-out --clips "$clips" --seconds "$seconds" --steps 6 \
    --device "$device" -o "$run/heldout.tsv" 2>/dev/null | grep '^mean'
  "${wg[@]}" voice eval --voice "$run/voice" --data "$corpus/train" --clips 1 --seconds "$seconds" --steps 6 \
    --device "$device" -o "$run/seen.tsv" 2>/dev/null | grep '^mean'
done
{
  echo -n "| recipe | steps | held-out: raw SC | noise SC | shipped SC | Griffin-Lim SC | raw log-mel L1 | raw MR-STFT "
  echo "| seen: raw SC | shipped SC | Griffin-Lim SC |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for r in baseline priorgrad stft priorgrad-stft; do   # every recipe scored in OUT so far, also by earlier runs
    h="$out/$r/heldout.tsv"; s="$out/$r/seen.tsv"
    [ -f "$h" ] && [ -f "$s" ] || continue
    v() { awk -F'\t' -v set="$2" -v col="$3" '$1 == "mean" && $2 == set { print $col }' "$1"; }
    echo -n "| $r | $steps | $(v "$h" raw 5) | $(v "$h" noise 5) | $(v "$h" shipped 5) | $(v "$h" griffin-lim 5) | $(v "$h" raw 4) "
    echo "| $(v "$h" raw 7) | $(v "$s" raw 5) | $(v "$s" shipped 5) | $(v "$s" griffin-lim 5) |"
  done
} | tee "$out/summary.md"
