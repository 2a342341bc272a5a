#!/usr/bin/env bash
# Measures an image model on MNIST with the project's own judge (a clean-digit classifier trained on the training
# split): for each sampler setting, the judge's accuracy on the digits asked for, and the Fréchet distance between
# the samples and the 997 held-out digits in the judge's 128-feature space; first the floor (as many training digits
# vs the held-out digits). Needs scripts/fetch-mnist.sh.
# usage: scripts/eval-image.sh [MODEL] [N] [N_SCORE] [N_DDPM] [OUT_DIR]
#   N samples for the cheap settings (DDIM/respaced/ODE), N_SCORE for Langevin and PC, N_DDPM for DDPM-1000
#   (2,000 network evaluations per guided sample: about 6 s each on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-mnist-ddpm}; n=${2:-1000}; nx=${3:-200}; nd=${4:-100}; out=${5:-artifacts/eval-$model}
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
rm -rf "$out/cli"; mkdir -p "$out"; cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$out/cli"   # a private copy
wg=(dotnet "$out/cli/wavegrad.dll" image eval --model "$model" --device cpu)
{
  for k in "$n" "$nx" "$nd"; do "${wg[@]}" --floor --n "$k"; done
  "${wg[@]}" --n "$n" --sampler ddim --steps 50 --guidance 3
  "${wg[@]}" --n "$n" --sampler ddim --steps 50 --guidance 1
  "${wg[@]}" --n "$n" --sampler ddim --steps 50 --unconditional
  "${wg[@]}" --n "$n" --sampler respaced --steps 50 --guidance 3
  "${wg[@]}" --n "$nd" --sampler ddpm --guidance 3
  "${wg[@]}" --n "$nx" --sampler langevin --steps 100 --guidance 3
  "${wg[@]}" --n "$nx" --sampler pc --steps 100 --guidance 3
  "${wg[@]}" --n "$n" --sampler ode --steps 25 --guidance 3
  "${wg[@]}" --n "$n" --sampler ddim --steps 50 --guidance 0 --classifier-guidance 3
} 2>&1 | tee "$out/summary.txt"
