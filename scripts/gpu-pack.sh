#!/usr/bin/env bash
# Packs .device/ for scripts/gpu-run.sh, within the GPU machine's upload limit of 64 MiB:
#   cli.tar.xz   the CLI published self-contained without libtorch (the machine's PyTorch provides it), ~28 MB
#   data.tar     the multi-speaker corpus with Opus-compressed audio (wavegrad corpus pack): MINUTES of each training
#                speaker at BITRATE, and 2 minutes of each held-out speaker for the check at the end
#   init/        (INIT=voice folder) fp16 weights to start from, when a voice already exists
# usage: scripts/gpu-pack.sh [CORPUS_DIR]     env: MINUTES (10), BITRATE (32000), INIT (none), LIMIT_MB (63)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-corpus/multi}; minutes=${MINUTES:-10}; bitrate=${BITRATE:-32000}; limit=${LIMIT_MB:-63}
[ -d "$corpus/train" ] && [ -d "$corpus/heldout" ] || { echo "gpu-pack: $corpus needs train/ and heldout/ (scripts/build-multispeaker.sh)" >&2; exit 2; }
pub=$(mktemp -d); trap 'rm -rf "$pub"' EXIT
rm -rf .device; mkdir -p .device
dotnet publish src/WaveGradSharp.Cli -c Release -r linux-x64 --self-contained -p:WaveGradNoLibTorch=true -p:InvariantGlobalization=true \
  -o "$pub/cli" > "$pub/publish.log" 2>&1 || { cat "$pub/publish.log"; exit 1; }
rm -rf "$pub"/cli/{libmscordaccore.so,libmscordbi.so,createdump,libSkiaSharp.so,libHarfBuzzSharp.so,voices,models} "$pub"/cli/*.pdb
tar cf - -C "$pub/cli" . | xz -T2 -6 > .device/cli.tar.xz
# A private copy of the CLI, so that rebuilding the tree meanwhile cannot change the running program.
dotnet build -c Release src/WaveGradSharp.Cli > /dev/null
cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$pub/wg"
wg=(dotnet "$pub/wg/wavegrad.dll")
"${wg[@]}" corpus pack "$corpus/train" -o "$pub/data/train" --bitrate "$bitrate" --minutes-per-speaker "$minutes" | tee .device/pack.txt
"${wg[@]}" corpus pack "$corpus/heldout" -o "$pub/data/heldout" --bitrate "$bitrate" --minutes-per-speaker 2 | tee -a .device/pack.txt
tar cf .device/data.tar -C "$pub/data" .
if [ -n "${INIT:-}" ]; then "${wg[@]}" voice export "$INIT" -o .device/init > /dev/null; fi
cp scripts/gpu-run.sh .device/
mb=$(du -sm .device | cut -f1)
ls -la .device; echo "packed: $mb MiB (limit $limit)"
[ "$mb" -le "$limit" ] || { echo "gpu-pack: .device is $mb MiB, over $limit; lower MINUTES or BITRATE" >&2; exit 1; }
