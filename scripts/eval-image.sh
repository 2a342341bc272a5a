#!/usr/bin/env bash
# Measures an image model on MNIST with the project's own judge (a clean-digit classifier trained on the training
# split): for each sampler setting, the judge's accuracy on the digits asked for, the Fréchet distance between the
# samples and the 997 held-out digits in the judge's 128-feature space, and the share of speckled samples (stray
# bright pixels in the background); first the floor (as many real training digits vs the held-out digits).
# Needs scripts/fetch-mnist.sh.
# usage: scripts/eval-image.sh [MODEL] [N] [N_DDPM] [OUT_DIR] [SET]
#   N samples per setting (compare Fréchet distances at equal N); N_DDPM for DDPM-1000 (2,000 network evaluations
#   per guided sample; 0 skips it). SET: "all" (every sampler and the sweep of guidance, steps, clipping, η and
#   classifier-guidance scale) or "core" (the default sampler, respaced, the ODE, DDIM 50 without guidance).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-mnist-ddpm}; n=${2:-200}; nd=${3:-0}; out=${4:-artifacts/eval-$(basename "$model")}; set=${5:-all}
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
rm -rf "$out/cli"; mkdir -p "$out"; cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$out/cli"   # a private copy
wg=(dotnet "$out/cli/wavegrad.dll" image eval --model "$model" --device cpu)
e() { "${wg[@]}" --n "$n" "$@"; }
{
  e --floor
  e --sampler ddim --steps 50 --guidance 3                  # the default
  e --sampler respaced --steps 50 --guidance 3
  e --sampler ode --steps 25 --guidance 3
  e --sampler ddim --steps 50 --guidance 1
  if [[ $set == all ]]; then
    for eta in 0 0.5 1; do e --sampler ddim --steps 50 --guidance 3 --eta "$eta"; done
    for w in 2 5; do e --sampler ddim --steps 50 --guidance "$w"; done
    for k in 25 100; do e --sampler ddim --steps "$k" --guidance 3; done
    e --sampler ddim --steps 50 --guidance 3 --no-clip
    e --sampler ode --steps 25 --guidance 3 --no-clip
    e --sampler ode --steps 25 --guidance 2
    e --sampler langevin --steps 100 --guidance 3
    e --sampler pc --steps 100 --guidance 3
    e --sampler ddim --steps 50 --unconditional
    for s in 3 10 30; do e --sampler ddim --steps 50 --guidance 0 --classifier-guidance "$s"; done
  fi
  if [[ $nd -gt 0 ]]; then "${wg[@]}" --n "$nd" --sampler ddpm --guidance 3; fi
} 2>&1 | tee "$out/summary.txt"
