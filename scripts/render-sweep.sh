#!/usr/bin/env bash
# Scores a voice's render settings on the validation clips of the speakers it trained on (one 4 s clip each), so that
# choosing its card's default_render never looks at the held-out speakers: the Griffin-Lim start's noise level,
# iterations and phase, DDIM's level count, and Griffin-Lim consistency after the start. One TSV per setting in OUT_DIR.
# usage: scripts/render-sweep.sh [VOICE [OUT_DIR [SEEN_CORPUS]]]
set -euo pipefail
cd "$(dirname "$0")/.."
voice=${1:-voices/stft-multi-cpu}
out=${2:-samples/outputs/render-sweep}
seen=${3:-corpus/multi/train}
mkdir -p "$out"
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$tmp/cli"
score() {   # NAME FLAGS...: one row, "shipped" with the flags laid over the card's settings
  local name=$1; shift
  dotnet "$tmp/cli/wavegrad.dll" voice eval --voice "$voice" --data "$seen" --clips 1 --seconds 4 --settings shipped "$@" \
    -o "$out/$name.tsv" 2>/dev/null | tail -1 | sed "s/^mean *shipped/$name/"
}
dotnet "$tmp/cli/wavegrad.dll" voice eval --voice "$voice" --data "$seen" --clips 1 --seconds 4 --settings griffin-lim \
  -o "$out/griffin-lim.tsv" 2>/dev/null | tail -1
score card
for s in 0.3 0.8; do score "start-noise-$s" --start-noise "$s"; done
for n in 4 16 32; do score "start-iterations-$n" --start-iterations "$n"; done
score random-phase-64 --start-phase random --start-iterations 64
for n in 8 11; do score "ddim-$n" --steps "$n"; done
score project-1-64 --consistency project:1:64
score project-2-64 --consistency project:2:64
score noise-start-project-6-64 --start noise --consistency project:6:64
