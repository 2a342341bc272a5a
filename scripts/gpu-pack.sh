#!/usr/bin/env bash
# Packs .device/ for scripts/gpu-run.sh: the CLI published self-contained without libtorch (the GPU machine's
# PyTorch provides it) and a training subset of the corpus (the machine's transfer limit is 64 MiB in all).
# usage: scripts/gpu-pack.sh [CORPUS_DIR] [MAX_MB_OF_WAV]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-corpus/slt}; max_mb=${2:-34}
pub=$(mktemp -d); trap 'rm -rf "$pub"' EXIT
dotnet publish src/WaveGradSharp.Cli -c Release -r linux-x64 --self-contained -p:WaveGradNoLibTorch=true -p:InvariantGlobalization=true -o "$pub/cli" >/dev/null
rm -f "$pub"/cli/{libmscordaccore.so,libmscordbi.so,createdump,libSkiaSharp.so,libHarfBuzzSharp.so} "$pub"/cli/*.pdb
mkdir -p .device "$pub/data/wavs"
tar cf - -C "$pub/cli" . | xz -T2 -6 > .device/cli.tar.xz
# Validation clips stay out of training; one comes along for the GPU render.
grep -vxFf "$corpus/val.txt" <(cut -d'|' -f1 "$corpus/metadata.csv") > "$pub/train-ids"
total=0
while read -r id; do
  sz=$(stat -c %s "$corpus/wavs/$id.wav"); [ $(( total + sz )) -gt $(( max_mb * 1048576 )) ] && break
  cp "$corpus/wavs/$id.wav" "$pub/data/wavs/"; total=$(( total + sz ))
done < "$pub/train-ids"
v=$(head -n1 "$corpus/val.txt"); cp "$corpus/wavs/$v.wav" "$pub/data/wavs/"; echo "$v" > "$pub/data/val.txt"
tar cf - -C "$pub/data" . | xz -T2 -6 > .device/data.tar.xz
ls -la .device; echo "training audio: $(( total / 44100 / 60 )) min"
