#!/usr/bin/env bash
# Packs .device/ for scripts/gpu-run.sh. What travels to the GPU machine is the whole working tree (tracked files and
# .device/ together) within 64 MiB, so .device/ gets what the tracked files leave:
#   cli.tar.xz    the CLI published self-contained without libtorch (the machine's PyTorch provides it), the framework
#                 trimmed (TrimMode=partial: our assemblies and TorchSharp stay whole), ~9 MB
#   data.tar.xz   the multi-speaker corpus with Opus-compressed audio (wavegrad corpus pack): MINUTES of each training
#                 speaker at BITRATE, and 2 minutes of each held-out speaker for the check at the end
#   init/         (INIT=voice folder) fp16 weights to start from, when a voice already exists
# usage: scripts/gpu-pack.sh [CORPUS_DIR]     env: MINUTES (10), BITRATE (32000), INIT (none)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-corpus/multi}; minutes=${MINUTES:-10}; bitrate=${BITRATE:-32000}
[ -d "$corpus/train" ] && [ -d "$corpus/heldout" ] || { echo "gpu-pack: $corpus needs train/ and heldout/ (scripts/build-multispeaker.sh)" >&2; exit 2; }
pub=$(mktemp -d); trap 'rm -rf "$pub"' EXIT
rm -rf .device; mkdir -p .device
rm -rf src/WaveGradSharp.Cli/obj/Release/net10.0/linux-x64   # the trimmer does not notice changed switches
dotnet publish src/WaveGradSharp.Cli -c Release -r linux-x64 --self-contained -p:WaveGradNoLibTorch=true -p:InvariantGlobalization=true \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:JsonSerializerIsReflectionEnabledByDefault=true -p:SuppressTrimAnalysisWarnings=true \
  -p:EnableTrimAnalyzer=false -p:TreatWarningsAsErrors=false -o "$pub/cli" > "$pub/publish.log" 2>&1 || { cat "$pub/publish.log"; exit 1; }
rm -rf "$pub"/cli/{libmscordaccore.so,libmscordbi.so,createdump,libSkiaSharp.so,libHarfBuzzSharp.so,voices,models} "$pub"/cli/*.pdb
tar cf - -C "$pub/cli" . | xz -T2 -6 > .device/cli.tar.xz
# A private copy of the CLI, so that rebuilding the tree meanwhile cannot change the running program.
dotnet build -c Release src/WaveGradSharp.Cli > /dev/null
cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$pub/wg"
wg=(dotnet "$pub/wg/wavegrad.dll")
"${wg[@]}" corpus pack "$corpus/train" -o "$pub/data/train" --bitrate "$bitrate" --minutes-per-speaker "$minutes" | tee .device/pack.txt
"${wg[@]}" corpus pack "$corpus/heldout" -o "$pub/data/heldout" --bitrate "$bitrate" --minutes-per-speaker 2 | tee -a .device/pack.txt
tar cf - -C "$pub/data" . | xz -T2 -1 > .device/data.tar.xz   # Opus does not shrink, tar's headers and padding do
if [ -n "${INIT:-}" ]; then "${wg[@]}" voice export "$INIT" -o .device/init > /dev/null; fi
cp scripts/gpu-run.sh .device/
tracked=$(git ls-files -z | xargs -0 du -cb | tail -n 1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb | tail -n 1 | cut -f1)
device=$(du -sb .device | cut -f1); limit=$(( 64 * 1048576 - 524288 ))
ls -la .device
echo "packed: .device $(( device / 1048576 )) MiB + tracked files $(( tracked / 1048576 )) MiB + untracked ${untracked:-0} bytes; limit 64 MiB"
[ $(( device + tracked + ${untracked:-0} )) -le "$limit" ] || { echo "gpu-pack: over the 64 MiB the GPU machine takes; lower MINUTES or BITRATE" >&2; exit 1; }
