#!/usr/bin/env bash
# The serve load test at the issue's size: 16 clients for 60 s against `wavegrad serve` (a separate process on a free
# 127.0.0.1 port, default limits), mixing speech, vocode, malformed and oversized bodies, slow uploads and clients that
# hang up mid-stream. It fails on any 5xx or crash, a render answered other than 200/429, a hostile request answered other
# than a one-line 4xx, memory 200 MB past its warm level, or threads above theirs. The suite runs the same test with 4
# clients for 15 s. Prints the figures (time to first byte, audio seconds per wall second, memory, threads) as JSON.
# usage: scripts/load-test.sh [CLIENTS] [SECONDS] [REPORT.json]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-16}; seconds=${2:-60}; report=$(realpath -m "${3:-artifacts/load-test.json}")
mkdir -p "$(dirname "$report")"
WAVEGRAD_LOAD_CLIENTS=$clients WAVEGRAD_LOAD_SECONDS=$seconds WAVEGRAD_LOAD_REPORT=$report \
  nice -n 10 dotnet test tests/WaveGradSharp.Server.Tests --filter 'FullyQualifiedName~LoadTests' --logger 'console;verbosity=normal'
cat "$report"
