#!/usr/bin/env bash
# Packs the libraries and the wavegrad tool into a local feed, then uses them as someone without this repository would:
# the PackageConsumer sample (package references only) renders a mel with the default voice, and the tool, installed
# to a tool path, vocodes the same mel from an empty folder. CI runs this.
# usage: scripts/package-smoke.sh [FEED_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD; feed=$(realpath -m "${1:-artifacts/feed}"); work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mel="$root/tests/fixtures/audio/mel-hifigan-22k-word-22k.npy"
rm -rf "$feed"
dotnet pack WaveGradSharp.sln -c Release -o "$feed" > "$work/pack.log" 2>&1 || { cat "$work/pack.log"; exit 1; }
ls "$feed" | sed 's/^/  packed /'
# A package cache of its own: the same version number must not be served from an older build.
export NUGET_PACKAGES="$work/packages"
dotnet build samples/PackageConsumer -c Release -o "$work/consumer" -p:RestoreAdditionalProjectSources="$feed" > "$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
voice=$(sed -n 's|.*<DefaultVoice>\(.*\)</DefaultVoice>.*|\1|p' src/Directory.Build.props)
[ -f "$work/consumer/voices/$voice/voice.json" ] || { echo "the voice package did not put voices/$voice beside the program" >&2; exit 1; }
(cd "$work" && dotnet consumer/PackageConsumer.dll "$mel" consumer.wav)
dotnet tool install wavegrad --tool-path "$work/tool" --add-source "$feed" --version 0.5.0 > /dev/null
mkdir -p "$work/empty" && cd "$work/empty"
"$work/tool/wavegrad" vocode "$mel" -o out.wav
"$work/tool/wavegrad" voices | head -n 3
if command -v festival > /dev/null || command -v espeak-ng > /dev/null; then
  "$work/tool/wavegrad" speak "Hello from the installed tool." -o hello.wav
fi
# The installed tool serves from the empty folder: a mel vocoded over HTTP is a WAV, and SIGTERM stops it with exit code 0.
"$work/tool/wavegrad" serve --urls http://127.0.0.1:0 > serve.out 2> serve.err & pid=$!
url=
for _ in $(seq 1 240); do url=$(sed -n 's/^wavegrad serve: \(http:[^ ,]*\).*/\1/p' serve.out); [ -n "$url" ] && break; sleep 0.5; done
[ -n "$url" ] || { cat serve.err; kill "$pid"; exit 1; }
curl -sf --data-binary @"$mel" "$url/v1/vocode" -o served.wav
[ "$(head -c 4 served.wav)" = RIFF ] || { echo "wavegrad serve did not answer with a WAV" >&2; kill "$pid"; exit 1; }
kill -TERM "$pid"; wait "$pid"
echo "  served $(wc -c < served.wav) bytes of WAV from $url, then stopped on SIGTERM"
echo "package smoke test: ok"
