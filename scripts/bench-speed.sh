#!/usr/bin/env bash
# Render speed on this machine, as ratios: to the machine's own matmul peak (`wavegrad bench`) and to PyTorch running
# the same network on the same CPU threads in the same run. Run it on a quiet machine: a parallel load doubles every
# timing. Results: artifacts/bench/{dotnet,pytorch,base,speak}.txt.
#   1. `wavegrad bench` on the default voice with its own sampler, fp32 and bf16: first chunk, a 5 s render, the steady
#      real-time factor, achieved GFLOP/s and its share of the matmul peak, and a per-part breakdown.
#   2. lmnt-com/wavegrad's `base` network in PyTorch (scripts/bench-pytorch.py: whole mel in one pass, 6 steps, 5 s of
#      audio), its random weights imported as a voice, and the same 5 s render through `wavegrad bench` from noise
#      without the post-filter (the .NET side renders in overlapping pieces, so it computes a little more).
#   3. `wavegrad speak "Hello from WaveGradSharp"` eleven times each (needs festival or espeak-ng), runs interleaved, from
#      a ReadyToRun publish (README: "A faster start") and from the plain Release build: time to first
#      audio after the process starts, median and range.
# usage: scripts/bench-speed.sh [SECONDS]   (steady-state render length, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
out=artifacts/bench; rm -rf "$out"; mkdir -p "$out"
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
cp -r src/WaveGradSharp.Cli/bin/Release/net10.0 "$out/cli"
wg=(dotnet "$out/cli/wavegrad.dll")
echo "== default voice (scripts/bench-speed.sh; $(date -u +%F))" | tee "$out/dotnet.txt"
"${wg[@]}" bench --seconds "$seconds" --device cpu | tee -a "$out/dotnet.txt"
echo "== PyTorch, lmnt base" | tee "$out/pytorch.txt"
/usr/bin/python3 scripts/bench-pytorch.py "$out/lmnt-base.pt" 5 | tee -a "$out/pytorch.txt"
"${wg[@]}" voice import "$out/lmnt-base.pt" --preset lmnt-22k -o "$out/lmnt-base" >/dev/null
echo "== WaveGradSharp, the same lmnt base weights" | tee "$out/base.txt"
"${wg[@]}" bench --voice "$out/lmnt-base" --start noise --post-filter 0 --steps 6 --precision both --seconds 5 --device cpu \
  | tee -a "$out/base.txt"
echo "== speak: first audio after the process starts, 11 runs each, interleaved" | tee "$out/speak.txt"
if command -v festival >/dev/null || command -v espeak-ng >/dev/null; then
  rid=$(dotnet --info | awk '/ RID:/ {print $2; exit}')
  dotnet publish src/WaveGradSharp.Cli -c Release -r "$rid" --self-contained false -o "$out/published" >/dev/null
  for i in $(seq 11); do
    for build in published cli; do
      echo "$build $(dotnet "$out/$build/wavegrad.dll" speak "Hello from WaveGradSharp" -o "$out/hello.wav" 2>/dev/null)"
    done
  done | tee -a "$out/speak.txt" | awk '{for (i = 1; i < NF; i++) if ($i == "audio") t[$1] = t[$1] " " $(i + 1)} END {for (b in t) print b, t[b]}' \
    | sort | while read -r build times; do
      echo "$times" | tr ' ' '\n' | sort -n | awk -v b="$build" '{a[NR] = $1}
        END {printf "%-9s first audio: median %s s, range %s-%s s\n", b, a[int((NR + 1) / 2)], a[1], a[NR]}'
    done | tee -a "$out/speak.txt"
else
  echo "skipped: no festival or espeak-ng" | tee -a "$out/speak.txt"
fi
