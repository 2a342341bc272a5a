#!/usr/bin/env bash
# Regenerates samples/outputs/: renders of slt-22k (the WaveGrad voice) and of the default voice on a speaker it never
# heard, with their spectrograms, beside festival's own rendering and Griffin-Lim, and image grids from the MNIST model,
# for the README. usage: scripts/make-samples.sh [CORPUS_DIR [HELD_OUT_CLIP]]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-corpus/slt}
out=samples/outputs; mkdir -p "$out"
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$tmp/cli"
wg=(dotnet "$tmp/cli/wavegrad.dll")
slt=(--voice slt-22k)
text="Hello from WaveGradSharp."
"${wg[@]}" speak "$text" -o "$out/hello-wavegrad-6.wav" "${slt[@]}"
"${wg[@]}" speak "$text" -o "$out/hello-wavegrad-50.wav" --steps 50 "${slt[@]}"
echo "$text" > "$tmp/t.txt"; text2wave -eval '(voice_cmu_us_slt_arctic_hts)' "$tmp/t.txt" -o "$tmp/f.wav"
sox "$tmp/f.wav" -r 22050 -b 16 "$out/hello-festival.wav"
clip=$(sed -n 3p "$corpus/val.txt")       # a validation sentence the voice never saw
cp "$corpus/wavs/$clip.wav" "$out/val-reference.wav"
"${wg[@]}" mel "$out/val-reference.wav" -o "$tmp/val.npy"
"${wg[@]}" vocode "$tmp/val.npy" -o "$out/val-wavegrad-6.wav" --steps 6 "${slt[@]}"
# The network alone: from noise, no consistency steps, no post-filter.
"${wg[@]}" vocode "$tmp/val.npy" -o "$out/val-wavegrad-6-raw.wav" --steps 6 --start noise --consistency none --post-filter 0 "${slt[@]}"
"${wg[@]}" vocode "$tmp/val.npy" -o "$out/val-wavegrad-50.wav" --steps 50 "${slt[@]}"
"${wg[@]}" griffinlim "$tmp/val.npy" -o "$out/val-griffinlim.wav" --iters 64
# The default voice on a speaker it never heard (scripts/build-multispeaker.sh holds flite-awb out): as shipped, its
# network alone (the card's sampler from noise, no post-filter), and Griffin-Lim on the same mel.
held=${2:-corpus/multi/heldout/flite-awb/wavs/flite-awb_013001.wav}
if [ -f "$held" ]; then
  sox "$held" -r 22050 -b 16 "$out/heldout-reference.wav"
  "${wg[@]}" mel "$out/heldout-reference.wav" -o "$tmp/held.npy"
  "${wg[@]}" vocode "$tmp/held.npy" -o "$out/heldout-default.wav"
  "${wg[@]}" vocode "$tmp/held.npy" -o "$out/heldout-default-raw.wav" --start noise --consistency none --post-filter 0
  "${wg[@]}" griffinlim "$tmp/held.npy" -o "$out/heldout-griffinlim.wav" --iters 64
fi
# Image grids from the shipped MNIST model: digits 0–9 (eight of each) through the library sample, an 8×8
# unconditional grid, and one sample's trajectory from noise to digit.
dotnet run -c Release --project samples/ImageSampling -- -o "$out/mnist-digits.png" --per-class 8
"${wg[@]}" image sample --n 64 --guidance 0 -o "$out/mnist-unconditional.png"
"${wg[@]}" image sample --class 2 --n 1 --sampler respaced --steps 100 --seed 7 -o "$tmp/traj.png" --trajectory
cp "$tmp/traj-trajectory.png" "$out/mnist-trajectory.png"
for f in "$out"/*.wav; do "${wg[@]}" mel "$f" -o "$tmp/x.npy" --png "${f%.wav}.png" >/dev/null; done
ls -la "$out"
