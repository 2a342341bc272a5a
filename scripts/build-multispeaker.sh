#!/usr/bin/env bash
# build-multispeaker.sh: the multi-speaker corpus of the default voice, from Debian main voices only.
#
# Usage: scripts/build-multispeaker.sh [OUT_DIR] [--minutes N] [--heldout-minutes M] [--jobs 1|2]
#   OUT_DIR            default: <repo>/corpus/multi
#   --minutes          minutes of audio per training speaker (default 15; 13 speakers: 3.25 h)
#   --heldout-minutes  minutes per held-out speaker (default 4)
#
# Output: OUT_DIR/train/<speaker>/ and OUT_DIR/heldout/<speaker>/, each in the LJSpeech layout of
# scripts/build-corpus.sh (metadata.csv, wavs/, train.txt, val.txt). `wavegrad train vocoder --data
# OUT_DIR/train` reads every speaker folder (validation: each speaker's val.txt); the held-out speakers
# are never trained on and are scored apart (scripts/eval-voice.sh). Speaker k reads the sentences from
# 1 + 1000·k on, so no two speakers read the same text. Idempotent and resumable like build-corpus.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=; minutes=15; heldout_minutes=4; jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --heldout-minutes) heldout_minutes=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-multispeaker: error: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
out=${out:-$here/../corpus/multi}

# Sex and language of each speaker are in scripts/CORPUS.md. Held out: one man, two women.
TRAIN=(slt kal ked ona lp pc krb machac ph fi-mv ru-nsh flite-rms flite-slt)
HELDOUT=(flite-awb dita fi-lj)

k=0
for spk in "${TRAIN[@]}" "${HELDOUT[@]}"; do
  split=train; m=$minutes
  for h in "${HELDOUT[@]}"; do [ "$h" = "$spk" ] && { split=heldout; m=$heldout_minutes; }; done
  echo "== $spk ($split, $m min, from sentence $((1 + 1000 * k)))"
  "$here/build-corpus.sh" "$out/$split/$spk" --speaker "$spk" --minutes "$m" --first $((1 + 1000 * k)) --jobs "$jobs" | tail -n 3
  k=$((k + 1))
done
du -sh "$out/train" "$out/heldout"
