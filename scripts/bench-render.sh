#!/usr/bin/env bash
# Render speed (real-time factor) of the `small` and `base` networks at 6 and 50 steps, from the default
# Griffin-Lim start and from noise, on this machine, and CPU training throughput of `small`. Speed does not
# depend on the weights, so `base` is a freshly initialised network (one training step on a tiny corpus).
# usage: scripts/bench-render.sh [CORPUS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-corpus/slt}
out=artifacts/bench; rm -rf "$out"; mkdir -p "$out/data"
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$out/cli"
wg=(dotnet "$out/cli/wavegrad.dll")
clip=$(head -n1 "$corpus/val.txt")
"${wg[@]}" mel "$corpus/wavs/$clip.wav" -o "$out/clip.npy" >/dev/null
head -n 40 "$corpus/train.txt" | while read -r id; do cp "$corpus/wavs/$id.wav" "$out/data/"; done
"${wg[@]}" train vocoder --data "$out/data" -o "$out/base" --size base --steps 1 --validate-every 0 >/dev/null
echo "== render (clip $clip)"
for v in voices/slt-22k "$out/base"; do
  for s in 6 50; do
    for start in griffin-lim noise; do
      echo -n "$(basename "$v") $s steps, $start start: "; "${wg[@]}" vocode "$out/clip.npy" -o "$out/out.wav" --voice "$v" --steps $s --device cpu --start $start
    done
  done
done
echo "== CPU training throughput, small, batch 8 x 24 frames"
"${wg[@]}" train vocoder --data "$out/data" -o "$out/train" --size small --steps 40 --log-every 20 --validate-every 0 --device cpu | tail -n 3
