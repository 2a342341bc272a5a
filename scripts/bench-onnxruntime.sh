#!/usr/bin/env bash
# ONNX Runtime beside the TorchSharp engine and PyTorch, in one run on this machine's CPU threads (run it on a quiet
# machine). The same networks with random weights (speed does not depend on the values):
#   1. lmnt's `base`, 6 steps over 5 s of audio in one pass: ONNX Runtime (fp32), PyTorch 1.13 (bench-pytorch.py's
#      weights, exported by export-onnx.py with the same seed), and `wavegrad bench` on the same weights (fp32, bf16).
#   2. slt-22k's shape (WaveGrad `small`), one 288-frame CPU piece (256 frames and 32 of context): ONNX Runtime against
#      `wavegrad bench --profile`'s evaluation of the same piece (fp32, bf16).
# Results: artifacts/onnx/onnxruntime.txt. Needs Debian's python3-torch and ONNX Runtime's NuGet package.
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/onnx; rm -rf "$out"; mkdir -p "$out"
dotnet build -c Release src/WaveGradSharp.Cli >/dev/null
dotnet build -c Release scripts/onnx-bench -o "$out/bench" >/dev/null
wg=(dotnet src/WaveGradSharp.Cli/bin/Release/net10.0/wavegrad.dll)
log="$out/onnxruntime.txt"
echo "== scripts/bench-onnxruntime.sh ($(date -u '+%F %H:%M'))" | tee "$log"
echo "== base, 6 steps, 5 s of audio" | tee -a "$log"
/usr/bin/python3 scripts/export-onnx.py base 367 "$out/base" 2>/dev/null | tee -a "$log"
dotnet "$out/bench/onnx-bench.dll" "$out/base" 6 "$(nproc)" | tee -a "$log"
/usr/bin/python3 scripts/bench-pytorch.py "$out/lmnt-base.pt" 5 | tee -a "$log"
"${wg[@]}" voice import "$out/lmnt-base.pt" --preset lmnt-22k -o "$out/lmnt-base" >/dev/null
"${wg[@]}" bench --voice "$out/lmnt-base" --start noise --post-filter 0 --steps 6 --precision both --seconds 5 --device cpu \
  | grep -E "^(precision|fp32|bf16) " | tee -a "$log"
echo "== small (slt-22k's shape), one evaluation of a 288-frame piece" | tee -a "$log"
/usr/bin/python3 scripts/export-onnx.py small 288 "$out/small" 2>/dev/null | tee -a "$log"
dotnet "$out/bench/onnx-bench.dll" "$out/small" 6 "$(nproc)" | tee -a "$log"
"${wg[@]}" bench --voice slt-22k --steps 6 --seconds 5 --precision both --profile --device cpu | grep -E "profile, one evaluation" | tee -a "$log"
