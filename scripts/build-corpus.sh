#!/usr/bin/env bash
# build-corpus.sh: renders a synthetic English speech corpus, offline, from Debian packages only.
#
# Usage: scripts/build-corpus.sh [OUT_DIR] [--minutes N] [--speaker NAME] [--first K] [--jobs 1|2]
#   OUT_DIR    default: <repo>/corpus/<speaker> (git-ignored; the corpus is never committed)
#   --minutes  stop once the corpus holds N minutes of audio (default 60)
#   --speaker  slt (default; festival's HTS voice cmu_us_slt_arctic_hts, female US English) or any
#              speaker of the table below (scripts/build-multispeaker.sh builds them all)
#   --first    start at sentence K of the fixed order (default 1), so speakers read different text
#   --jobs     synthesis processes at once (default 2, at most 2)
#
# Output (LJSpeech layout):
#   OUT_DIR/wavs/NAME.wav   22050 Hz, mono, 16-bit PCM; leading/trailing silence trimmed to 0.1 s,
#                           peak normalised to -1 dBFS
#   OUT_DIR/metadata.csv    NAME|text|text, one line per utterance, in corpus order
#   OUT_DIR/train.txt       names for training
#   OUT_DIR/val.txt         names for validation: every 20th sentence of the fixed order (~5%)
#   OUT_DIR/SOURCE.txt      source, licences, checksum and figures of this build
#   OUT_DIR/.work/          sentence list and scratch files
#
# TEXT SOURCE AND LICENCE
#   Jane Austen's six completed novels (Sense and Sensibility, Pride and Prejudice, Mansfield Park,
#   Emma, Northanger Abbey, Persuasion; 1811-1817), as shipped in Debian's package r-cran-janeaustenr
#   (the CRAN package janeaustenr 1.0.0 by Julia Silge, which takes the texts from Project
#   Gutenberg). The novels are in the public domain (the author died in 1817); the package itself is
#   MIT-licensed (see /usr/share/doc/r-cran-janeaustenr/copyright). Installing that package would pull
#   in all of R, so the script only downloads its .deb with `apt-get download`, unpacks it with
#   `dpkg-deb -x` under OUT_DIR/.work/, and reads the R lazy-load database (data/Rdata.rdb and .rdx)
#   with the small R-serialization reader below. No R is needed. An installed copy is used if present.
#
# VOICES AND LICENCES
#   Every voice comes from Debian main (DFSG-free); scripts/CORPUS.md lists each package's licence.
#   Non-English voices read the same English text through their own letter-to-sound rules: the
#   vocoder needs their timbre, not their language.
#
# DETERMINISM
#   Sentences are extracted, normalised (ASCII only, 5-30 words, no digits or brackets, no quotation
#   marks, "--" read as a comma) and interleaved round-robin over the novels in publication order, so
#   sentence k is always the same; the script prints the SHA-256 of the sentence list. Utterance k is
#   named <speaker>_NNNNNN after k. Rendering runs in fixed batches; the corpus is the shortest prefix
#   of the sentence order whose audio reaches --minutes (utterances that fail to render are skipped
#   and counted). sox runs in repeatable mode (-R), so rebuilds give identical files.
#
# RESUMING
#   Existing wavs are kept and not rendered again: an interrupted build resumes where it stopped, and
#   a larger --minutes extends an existing corpus. metadata.csv, train.txt and val.txt are rewritten
#   at the end of every run. Wavs rendered past the cut-off of the last batch are kept but not listed.
#
# See scripts/CORPUS.md for the figures of the reference build.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

usage() { sed -n '4,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "build-corpus: error: $*" >&2; exit 1; }
log() { printf '[%s +%4ds] %s\n' "$(date +%H:%M:%S)" "$SECONDS" "$*"; }

OUT_DIR=
MINUTES=60
SPEAKER=slt
FIRST=1
JOBS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) [ $# -ge 2 ] || die "--minutes needs a value"; MINUTES=$2; shift 2 ;;
    --minutes=*) MINUTES=${1#*=}; shift ;;
    --speaker) [ $# -ge 2 ] || die "--speaker needs a value"; SPEAKER=$2; shift 2 ;;
    --speaker=*) SPEAKER=${1#*=}; shift ;;
    --first) [ $# -ge 2 ] || die "--first needs a value"; FIRST=$2; shift 2 ;;
    --first=*) FIRST=${1#*=}; shift ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a value"; JOBS=$2; shift 2 ;;
    --jobs=*) JOBS=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) [ -z "$OUT_DIR" ] || die "more than one OUT_DIR given"; OUT_DIR=$1; shift ;;
  esac
done
[[ "$MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v m="$MINUTES" 'BEGIN{exit !(m > 0)}' \
  || die "--minutes must be a positive number, got '$MINUTES'"
[[ "$JOBS" =~ ^[12]$ ]] || die "--jobs must be 1 or 2, got '$JOBS'"
[[ "$FIRST" =~ ^[1-9][0-9]*$ ]] || die "--first must be a positive integer, got '$FIRST'"
# Speaker table: NAME -> ENGINE VOICE PACKAGE VOICE_DIR. ENGINE festival runs text2wave with (voice_VOICE);
# flite runs flite's built-in voice VOICE. scripts/CORPUS.md gives each speaker's sex, language and licence.
FV=/usr/share/festival/voices
case "$SPEAKER" in
  slt)      set_voice() { ENGINE=festival; VOICE=cmu_us_slt_arctic_hts; VOICE_PKG=festvox-us-slt-hts; VOICE_DIR=$FV/us/$VOICE; } ;;
  kal)      set_voice() { ENGINE=festival; VOICE=kal_diphone; VOICE_PKG=festvox-kallpc16k; VOICE_DIR=$FV/english/$VOICE; } ;;
  ked)      set_voice() { ENGINE=festival; VOICE=ked_diphone; VOICE_PKG=festvox-kdlpc16k; VOICE_DIR=$FV/english/$VOICE; } ;;
  ona)      set_voice() { ENGINE=festival; VOICE=upc_ca_ona_hts; VOICE_PKG=festvox-ca-ona-hts; VOICE_DIR=$FV/catalan/$VOICE; } ;;
  lp)       set_voice() { ENGINE=festival; VOICE=lp_diphone; VOICE_PKG=festvox-italp16k; VOICE_DIR=$FV/italian/$VOICE; } ;;
  pc)       set_voice() { ENGINE=festival; VOICE=pc_diphone; VOICE_PKG=festvox-itapc16k; VOICE_DIR=$FV/italian/$VOICE; } ;;
  dita)     set_voice() { ENGINE=festival; VOICE=czech_dita; VOICE_PKG=festvox-czech-dita; VOICE_DIR=$FV/czech/$VOICE; } ;;
  krb)      set_voice() { ENGINE=festival; VOICE=czech_krb; VOICE_PKG=festvox-czech-krb; VOICE_DIR=$FV/czech/$VOICE; } ;;
  machac)   set_voice() { ENGINE=festival; VOICE=czech_machac; VOICE_PKG=festvox-czech-machac; VOICE_DIR=$FV/czech/$VOICE; } ;;
  ph)       set_voice() { ENGINE=festival; VOICE=czech_ph; VOICE_PKG=festvox-czech-ph; VOICE_DIR=$FV/czech/$VOICE; } ;;
  fi-lj)    set_voice() { ENGINE=festival; VOICE=suo_fi_lj_diphone; VOICE_PKG=festvox-suopuhe-lj; VOICE_DIR=$FV/finnish/$VOICE; } ;;
  fi-mv)    set_voice() { ENGINE=festival; VOICE=hy_fi_mv_diphone; VOICE_PKG=festvox-suopuhe-mv; VOICE_DIR=$FV/finnish/$VOICE; } ;;
  ru-nsh)   set_voice() { ENGINE=festival; VOICE=msu_ru_nsh_clunits; VOICE_PKG=festvox-ru; VOICE_DIR=$FV/russian/$VOICE; } ;;
  flite-awb|flite-rms|flite-slt)
            set_voice() { ENGINE=flite; VOICE=${SPEAKER#flite-}; VOICE_PKG=flite; VOICE_DIR=/usr/bin; } ;;
  *) die "--speaker: unknown speaker '$SPEAKER' (known: slt kal ked ona lp pc dita krb machac ph fi-lj fi-mv ru-nsh flite-awb flite-rms flite-slt)" ;;
esac
set_voice
[ -n "$OUT_DIR" ] || OUT_DIR="$REPO_ROOT/corpus/$SPEAKER"
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK="$OUT_DIR/.work"
mkdir -p "$OUT_DIR/wavs" "$WORK/tmp"

# One build per OUT_DIR at a time.
exec 9>"$WORK/lock"
flock -n 9 || die "another build-corpus.sh is running on $OUT_DIR"

# ---------------------------------------------------------------------------------------------------
# Tools and packages (Debian). Installs what is missing; apt-get update only when an install fails.
# ---------------------------------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
apt_install() {
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null \
    || { $SUDO apt-get update >/dev/null && \
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null; } \
    || die "could not install: $*"
}
missing=()
[ "$ENGINE" = flite ] || command -v text2wave >/dev/null || missing+=(festival)
[ "$ENGINE" = festival ] || command -v flite >/dev/null || missing+=(flite)
command -v sox >/dev/null || missing+=(sox)
command -v soxi >/dev/null || missing+=(sox)
command -v python3 >/dev/null || missing+=(python3)
command -v flock >/dev/null || missing+=(util-linux)
[ -d "$VOICE_DIR" ] || missing+=("$VOICE_PKG")
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
[ -d "$VOICE_DIR" ] || die "voice $VOICE not found in $VOICE_DIR after installing $VOICE_PKG"

TEXT_PKG=r-cran-janeaustenr
RDB_DIR=/usr/lib/R/site-library/janeaustenr/data
if [ ! -f "$RDB_DIR/Rdata.rdb" ]; then
  RDB_DIR="$WORK/src/usr/lib/R/site-library/janeaustenr/data"
  if [ ! -f "$RDB_DIR/Rdata.rdb" ]; then
    log "downloading $TEXT_PKG (the .deb only; R is not needed)"
    mkdir -p "$WORK/deb"
    rm -f "$WORK/deb/"*.deb
    ( cd "$WORK/deb" && { apt-get download "$TEXT_PKG" >/dev/null 2>&1 || \
        { $SUDO apt-get update >/dev/null && apt-get download "$TEXT_PKG" >/dev/null 2>&1; }; } ) \
      || die "apt-get download $TEXT_PKG failed"
    rm -rf "$WORK/src"
    dpkg-deb -x "$WORK/deb/"*.deb "$WORK/src"
    [ -f "$RDB_DIR/Rdata.rdb" ] || die "$TEXT_PKG has no data/Rdata.rdb"
  fi
fi
TEXT_PKG_VERSION=$(dpkg-query -W -f='${Version}' "$TEXT_PKG" 2>/dev/null || true)
if [ -z "$TEXT_PKG_VERSION" ]; then
  TEXT_PKG_VERSION=$(dpkg-deb -f "$WORK/deb/"*.deb Version 2>/dev/null || echo unknown)
fi

# ---------------------------------------------------------------------------------------------------
# Sentences: R lazy-load database -> novels -> paragraphs -> normalised sentences, one per line.
# ---------------------------------------------------------------------------------------------------
SENTENCES="$WORK/sentences.txt"
python3 - "$RDB_DIR" "$SENTENCES.tmp" <<'PY'
import bz2, gzip, lzma, re, struct, sys, unicodedata, zlib

rdb_dir, out_path = sys.argv[1], sys.argv[2]

class RReader:
    """Minimal reader for R's XDR serialization format (versions 2 and 3): the types found in
    a package's lazy-load data (vectors, pairlists, symbols, references)."""
    def __init__(self, data):
        self.d, self.p, self.refs = data, 0, []
        if self.take(2) != b"X\n":
            raise ValueError("not an XDR R serialization")
        version = self.int(); self.int(); self.int()
        if version == 3:
            self.take(self.int())  # native encoding name

    def take(self, n):
        b = self.d[self.p:self.p + n]
        if len(b) != n:
            raise ValueError("truncated R serialization")
        self.p += n
        return b

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if t in (254, 253, 252, 251, 247, 242, 241):  # NILVALUE, GLOBALENV, UNBOUND, MISSING, BASENS, EMPTYENV, BASEENV
            return None
        if t == 255:  # REFSXP
            i = flags >> 8
            return self.refs[(i if i else self.int()) - 1]
        if t == 1:  # SYMSXP
            s = self.item()
            self.refs.append(s)
            return s
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            raw = self.take(n)
            return raw.decode("latin-1" if flags & (1 << 14) else "utf-8", "replace")
        if t in (2, 6, 17):  # LISTSXP, LANGSXP, DOTSXP: pairlists -> list of (tag, value)
            out = []
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                flags = self.int()
                t = flags & 0xFF
                has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
                if t == 254:
                    return out
                if t not in (2, 6, 17):
                    raise ValueError("unsupported pairlist tail type %d" % t)
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length()
            v = list(struct.unpack(">%di" % n, self.take(4 * n)))
        elif t == 14:  # REALSXP
            n = self.length()
            v = list(struct.unpack(">%dd" % n, self.take(8 * n)))
        elif t in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            n = self.length()
            v = [self.item() for _ in range(n)]
        else:
            raise ValueError("unsupported R object type %d" % t)
        if has_attr:
            attrs = dict(self.item())
            names = attrs.get("names")
            if names is not None and t in (19, 20):
                return dict(zip(names, v))
        return v

def unpack_block(block, compressed):
    # Lazy-load blocks: 4-byte big-endian length, then (type 2/3) a type byte, then the payload.
    if compressed in (2, 3):
        kind, payload = block[4:5], block[5:]
        if kind == b"Z":
            return lzma.decompress(payload)
        if kind == b"2":
            return bz2.decompress(payload)
        if kind == b"1":
            return zlib.decompress(payload)
        if kind == b"0":
            return payload
        raise ValueError("unknown lazy-load compression %r" % kind)
    return zlib.decompress(block[4:])

index = RReader(gzip.decompress(open(rdb_dir + "/Rdata.rdx", "rb").read())).item()
compressed = index.get("compressed", [1])[0]
rdb = open(rdb_dir + "/Rdata.rdb", "rb").read()
novels = {}
for name, (offset, size) in index["variables"].items():
    novels[name] = RReader(unpack_block(rdb[int(offset):int(offset) + int(size)], compressed)).item()

# Publication order; sentences are interleaved round-robin over the novels in this order.
ORDER = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]
missing = [n for n in ORDER if n not in novels]
if missing:
    sys.exit("janeaustenr data lacks: %s (has %s)" % (missing, sorted(novels)))

ABBREV = ["Mr", "Mrs", "Messrs", "Dr", "St", "Col", "Capt", "Gen", "Adm", "Esq", "Sir", "Rev", "No", "Mt"]
abbrev_re = re.compile(r"\b(%s|[A-Z])\." % "|".join(ABBREV))
split_re = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
ok_re = re.compile(r"^[A-Z][A-Za-z ,.;:!?'-]*[.!?]$")
caps_re = re.compile(r"\b[A-Z]{2,}\b")
stray_quote_re = re.compile(r"(?<![A-Za-z])'|'(?![A-Za-z])")

def paragraphs(lines):
    para = []
    for line in list(lines) + [""]:
        line = (line or "").strip()
        if line:
            para.append(line)
        elif para:
            yield " ".join(para)
            para = []

def sentences(paragraph):
    p = unicodedata.normalize("NFKC", paragraph)
    p = p.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    p = p.replace("\u2014", "--").replace("\u2013", "-")
    if p.upper() == p:  # headings: CHAPTER 1, VOLUME I, titles
        return
    p = p.replace("_", "").replace('"', " ")
    p = re.sub(r"\s*-{2,}\s*", ", ", p)
    p = abbrev_re.sub(lambda m: m.group(1) + "\x00", p)
    for s in split_re.split(p):
        s = s.replace("\x00", ".")
        s = re.sub(r"\s+", " ", s)
        s = re.sub(r"\s+([,.;:!?])", r"\1", s)
        s = re.sub(r"([,;:])[,;:]+", r"\1", s)
        s = re.sub(r"[,;:]+([.!?])", r"\1", s)
        s = s.strip(" ,;:")
        if not s.isascii() or not ok_re.match(s) or stray_quote_re.search(s):
            continue
        s = caps_re.sub(lambda m: m.group(0).lower(), s)  # emphasis in capitals: HIM -> him
        s = s[0].upper() + s[1:]
        if "..." in s or "Esq" in s or not 5 <= len(s.split()) <= 30:
            continue
        yield s

per_novel = []
for name in ORDER:
    per_novel.append([s for para in paragraphs(novels[name]) for s in sentences(para)])

seen, ordered = set(), []
for i in range(max(len(x) for x in per_novel)):
    for lst in per_novel:
        if i < len(lst) and lst[i] not in seen:
            seen.add(lst[i])
            ordered.append(lst[i])
with open(out_path, "w", encoding="ascii", newline="\n") as f:
    for s in ordered:
        f.write(s + "\n")
print("sentences: %d (%s)" % (len(ordered), ", ".join("%s %d" % (n, len(x)) for n, x in zip(ORDER, per_novel))))
PY
SENT_SHA=$(sha256sum "$SENTENCES.tmp" | cut -d' ' -f1)
# Wav k belongs to sentence k: refuse to resume a corpus that was rendered from another sentence list.
if [ -f "$WORK/sentences.sha256" ] && [ "$(cat "$WORK/sentences.sha256")" != "$SENT_SHA" ] \
   && [ -n "$(find "$OUT_DIR/wavs" -name "${SPEAKER}_*.wav" -print -quit)" ]; then
  die "$OUT_DIR was rendered from another sentence list (sha256 $(cat "$WORK/sentences.sha256")); use a new OUT_DIR"
fi
mv "$SENTENCES.tmp" "$SENTENCES"
echo "$SENT_SHA" > "$WORK/sentences.sha256"
N_SENT=$(wc -l < "$SENTENCES")
log "text: Jane Austen, six novels ($TEXT_PKG $TEXT_PKG_VERSION); $N_SENT sentences, sha256 $SENT_SHA"

# ---------------------------------------------------------------------------------------------------
# Rendering: one utterance -> wavs/NAME.wav (festival text2wave, then sox). Failures are recorded.
# ---------------------------------------------------------------------------------------------------
export OUT_DIR WORK VOICE SPEAKER SENTENCES ENGINE
FAILED="$WORK/failed.txt"
: > "$FAILED"
export FAILED

render_one() {
  local idx=$1 name text tmp
  name=$(printf '%s_%06d' "$SPEAKER" "$idx")
  [ -s "$OUT_DIR/wavs/$name.wav" ] && return 0
  text=$(sed -n "${idx}p" "$SENTENCES")
  tmp="$WORK/tmp/$name"
  printf '%s\n' "$text" > "$tmp.txt"
  local synth=(text2wave -eval "(voice_$VOICE)" "$tmp.txt" -o "$tmp.raw.wav")
  [ "$ENGINE" = flite ] && synth=(flite -voice "$VOICE" -f "$tmp.txt" -o "$tmp.raw.wav")
  if nice -n 10 timeout 300 "${synth[@]}" > "$tmp.log" 2>&1 \
     && [ -s "$tmp.raw.wav" ] \
     && nice -n 10 sox -R "$tmp.raw.wav" -b 16 -c 1 -e signed-integer "$tmp.out.wav" \
          silence 1 0.01 -50d reverse silence 1 0.01 -50d reverse \
          rate -v 22050 pad 0.1 0.1 norm -1 >> "$tmp.log" 2>&1 \
     && awk -v d="$(soxi -D "$tmp.out.wav" 2>/dev/null || echo 0)" 'BEGIN{exit !(d >= 0.5)}'; then
    mv "$tmp.out.wav" "$OUT_DIR/wavs/$name.wav"
    rm -f "$tmp.txt" "$tmp.raw.wav" "$tmp.log"
  else
    echo "$idx" >> "$FAILED"
    echo "build-corpus: failed to render $name: $text" >&2
    sed 's/^/    /' "$tmp.log" >&2 || true
    rm -f "$tmp.txt" "$tmp.raw.wav" "$tmp.out.wav" "$tmp.log"
  fi
  return 0
}
export -f render_one

TARGET_S=$(awk -v m="$MINUTES" 'BEGIN{printf "%.3f", m * 60}')
BATCH=16
log "rendering with $ENGINE $VOICE, $JOBS synthesis processes, target $MINUTES min, into $OUT_DIR"

total=0        # seconds of audio in the selected prefix
selected=()    # sentence indices of the corpus, in order
failed=0
reused=0
next=$FIRST
done_=0
while [ "$done_" -eq 0 ] && [ "$next" -le "$N_SENT" ]; do
  last=$(( next + BATCH - 1 )); [ "$last" -le "$N_SENT" ] || last=$N_SENT
  todo=()
  for ((i = next; i <= last; i++)); do
    if [ -s "$OUT_DIR/wavs/$(printf '%s_%06d' "$SPEAKER" "$i").wav" ]; then
      reused=$((reused + 1))
    else
      todo+=("$i")
    fi
  done
  if [ ${#todo[@]} -gt 0 ]; then
    printf '%s\n' "${todo[@]}" | xargs -P "$JOBS" -n 1 bash -c 'render_one "$1"' render_one
  fi
  for ((i = next; i <= last; i++)); do
    wav="$OUT_DIR/wavs/$(printf '%s_%06d' "$SPEAKER" "$i").wav"
    if [ -s "$wav" ]; then
      selected+=("$i")
      total=$(awk -v t="$total" -v d="$(soxi -D "$wav")" 'BEGIN{printf "%.6f", t + d}')
      if awk -v t="$total" -v g="$TARGET_S" 'BEGIN{exit !(t >= g)}'; then done_=1; break; fi
    else
      failed=$((failed + 1))
    fi
  done
  log "$(printf 'sentence %6d/%d: %4d utterances, %7.2f min of audio, %d failed' \
        "$last" "$N_SENT" "${#selected[@]}" "$(awk -v t="$total" 'BEGIN{print t / 60}')" "$failed")"
  next=$(( last + 1 ))
  if [ "$failed" -ge 20 ] && [ "$failed" -gt "${#selected[@]}" ]; then
    die "$failed of $((failed + ${#selected[@]})) utterances failed to render; is festival working? (see the errors above)"
  fi
done
[ "$done_" -eq 1 ] || log "warning: sentences ran out before $MINUTES min of audio"

# ---------------------------------------------------------------------------------------------------
# metadata.csv, train.txt, val.txt (written whole, then moved into place)
# ---------------------------------------------------------------------------------------------------
: > "$WORK/metadata.csv.tmp"; : > "$WORK/train.txt.tmp"; : > "$WORK/val.txt.tmp"
for i in "${selected[@]}"; do
  name=$(printf '%s_%06d' "$SPEAKER" "$i")
  text=$(sed -n "${i}p" "$SENTENCES")
  printf '%s|%s|%s\n' "$name" "$text" "$text" >> "$WORK/metadata.csv.tmp"
  if [ $((i % 20)) -eq 0 ]; then echo "$name" >> "$WORK/val.txt.tmp"; else echo "$name" >> "$WORK/train.txt.tmp"; fi
done
mv "$WORK/metadata.csv.tmp" "$OUT_DIR/metadata.csv"
mv "$WORK/train.txt.tmp" "$OUT_DIR/train.txt"
mv "$WORK/val.txt.tmp" "$OUT_DIR/val.txt"

n_utt=${#selected[@]}
n_val=$(wc -l < "$OUT_DIR/val.txt")
n_train=$(wc -l < "$OUT_DIR/train.txt")
minutes=$(awk -v t="$total" 'BEGIN{printf "%.2f", t / 60}')
hours=$(awk -v t="$total" 'BEGIN{printf "%.3f", t / 3600}')
n_wavs=$(find "$OUT_DIR/wavs" -name '*.wav' | wc -l)
cat > "$OUT_DIR/SOURCE.txt" <<EOF
Synthetic speech corpus built by scripts/build-corpus.sh (WaveGradSharp); see scripts/CORPUS.md.
Text:     Jane Austen's six novels (public domain), from Debian package $TEXT_PKG $TEXT_PKG_VERSION
          (MIT-licensed packaging of the Project Gutenberg texts).
          $N_SENT normalised sentences, sha256 of the sentence list: $SENT_SHA
Voice:    $ENGINE $VOICE (Debian package $VOICE_PKG $(dpkg-query -W -f='${Version}' "$VOICE_PKG" 2>/dev/null || echo unknown))
Audio:    22050 Hz mono 16-bit PCM WAV, silence trimmed to 0.1 s, peak -1 dBFS
Corpus:   $n_utt utterances ($n_train train, $n_val validation), $minutes min ($hours h) of audio
Skipped:  $failed sentences failed to render
EOF
log "done: $n_utt utterances ($n_train train, $n_val val), $minutes min = $hours h of audio," \
    "$failed failed, $reused reused wavs, wall time ${SECONDS}s"
[ "$n_wavs" -eq "$n_utt" ] || log "note: wavs/ holds $n_wavs files; $((n_wavs - n_utt)) past the cut-off are kept but not listed"
log "corpus: $OUT_DIR (metadata.csv, train.txt, val.txt, wavs/)"
