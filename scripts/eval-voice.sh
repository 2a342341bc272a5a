#!/usr/bin/env bash
# Measures a voice on a corpus's validation clips (never trained on) against Griffin-Lim on the same mels:
# resynthesis at 6 and 50 steps, as rendered by default (Griffin-Lim start, mel post-filter), from noise
# (--start noise, WaveGrad's start, with the post-filter) and raw (from noise, --post-filter 0: the network alone),
# and Griffin-Lim (64 iterations), each scored by `wavegrad eval` (log-mel L1, multi-resolution spectral
# convergence and log-magnitude distance, MCD, SNR).
# usage: scripts/eval-voice.sh [VOICE] [CORPUS_DIR] [N_CLIPS] [N_CLIPS_AT_50_STEPS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
voice=${1:-slt-22k}; corpus=${2:-corpus/slt}; n=${3:-10}; n50=${4:-4}; out=${5:-artifacts/eval-$voice}
# A private copy of the CLI, so that rebuilding the tree meanwhile cannot change the running program.
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
rm -rf "$out/cli"; mkdir -p "$out"; cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$out/cli"
wg=(dotnet "$out/cli/wavegrad.dll")
rm -rf "$out"/{wg6,wg6noise,wg6raw,wg6glraw,wg50,wg50noise,wg50raw}
mkdir -p "$out"/{ref,mel,gl,wg6,wg6noise,wg6raw,wg6glraw,wg50,wg50noise,wg50raw}
head -n "$n" "$corpus/val.txt" | while read -r id; do
  cp "$corpus/wavs/$id.wav" "$out/ref/"
  "${wg[@]}" mel "$out/ref/$id.wav" -o "$out/mel/$id.npy" >/dev/null
  "${wg[@]}" griffinlim "$out/mel/$id.npy" -o "$out/gl/$id.wav" --iters 64 >/dev/null
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg6/$id.wav" --voice "$voice" --steps 6 --device cpu | sed "s/^/[6 steps] /"
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg6noise/$id.wav" --voice "$voice" --steps 6 --device cpu --start noise | sed "s/^/[6 steps, from noise] /"
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg6raw/$id.wav" --voice "$voice" --steps 6 --device cpu --start noise --post-filter 0 \
    | sed "s/^/[6 steps, raw] /"
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg6glraw/$id.wav" --voice "$voice" --steps 6 --device cpu --post-filter 0 \
    | sed "s/^/[6 steps, Griffin-Lim start, no post-filter] /"
done
head -n "$n50" "$corpus/val.txt" | while read -r id; do
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg50/$id.wav" --voice "$voice" --steps 50 --device cpu | sed "s/^/[50 steps] /"
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg50noise/$id.wav" --voice "$voice" --steps 50 --device cpu --start noise | sed "s/^/[50 steps, from noise] /"
  "${wg[@]}" vocode "$out/mel/$id.npy" -o "$out/wg50raw/$id.wav" --voice "$voice" --steps 50 --device cpu --start noise --post-filter 0 \
    | sed "s/^/[50 steps, raw] /"
done
# Griffin-Lim and 6 steps over all N clips; 50 steps and the others again over the first N_CLIPS_AT_50_STEPS.
mkdir -p "$out/ref50"; head -n "$n50" "$corpus/val.txt" | while read -r id; do cp "$out/ref/$id.wav" "$out/ref50/"; done
{
  "${wg[@]}" eval --ref "$out/ref" --test "$out/gl" | head -n 1
  for sys in gl wg6 wg6noise wg6raw wg6glraw; do echo "== $sys, $n clips"; "${wg[@]}" eval --ref "$out/ref" --test "$out/$sys" | grep '^mean'; done
  for sys in gl wg6 wg6noise wg6raw wg50 wg50noise wg50raw; do
    echo "== $sys, $n50 clips"; "${wg[@]}" eval --ref "$out/ref50" --test "$out/$sys" | grep '^mean'
  done
} | tee "$out/summary.txt"
