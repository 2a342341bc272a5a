#!/usr/bin/env bash
# Installs what TorchSharp 0.107's native library needs: libstdc++ with GLIBCXX_3.4.32 (GCC 13.2 or newer)
# and glibc 2.34 or newer. A no-op where the system already has them; safe to rerun.
#
# On Debian 12 (bookworm) it installs Debian 13's (trixie) libstdc++6 through apt pinning. That package
# needs glibc 2.38+, so apt ALSO UPGRADES libc6 (and the gcc-14 runtime libraries) to trixie's versions.
# Every other package stays on bookworm (APT::Default-Release / pin priority 100 for trixie).
# Elsewhere it prints what to install and exits 1.
#
# --with-speech also installs the text frontend that `wavegrad speak` runs (festival and its slt HTS voice,
# from the distribution's packages) where it is missing.
set -euo pipefail

if [ "${1:-}" = "--with-speech" ]; then
  if command -v festival >/dev/null && [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]; then
    echo "prerequisites: festival with the slt voice present."
  elif command -v apt-get >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "prerequisites: installing festival and festvox-us-slt-hts (the text frontend of 'wavegrad speak')."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq festival festvox-us-slt-hts >/dev/null
  else
    echo "prerequisites: install festival (with a voice) or espeak-ng for 'wavegrad speak'." >&2
  fi
  shift
fi

has_glibcxx() {
  local lib
  lib=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 /{print $NF; exit}')
  [ -n "$lib" ] && grep -aq 'GLIBCXX_3\.4\.32' "$lib"
}
glibc_ok() {
  local v
  v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  [ -n "$v" ] && [ "$(printf '%s\n2.34\n' "$v" | sort -V | head -n1)" = "2.34" ]
}

if has_glibcxx && glibc_ok; then
  echo "prerequisites: libstdc++ (GLIBCXX_3.4.32) and glibc >= 2.34 present; nothing to do."
  exit 0
fi

. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" = "debian" ] && [ "${VERSION_ID:-}" = "12" ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "prerequisites: Debian 12 lacks GLIBCXX_3.4.32; installing libstdc++6 from Debian 13 (trixie)."
  echo "prerequisites: NOTE this also upgrades glibc (libc6) to trixie's version."
  $SUDO tee /etc/apt/sources.list.d/wavegradsharp-trixie.list >/dev/null <<'LIST'
deb http://deb.debian.org/debian trixie main
LIST
  $SUDO tee /etc/apt/preferences.d/wavegradsharp-trixie.pref >/dev/null <<'PREF'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PREF
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t trixie libstdc++6 >/dev/null
  if has_glibcxx && glibc_ok; then
    echo "prerequisites: done."
    exit 0
  fi
  echo "prerequisites: install finished but GLIBCXX_3.4.32 is still missing" >&2
  exit 1
fi

cat >&2 <<MSG
prerequisites: this system lacks libstdc++ with GLIBCXX_3.4.32 (GCC 13.2+) and/or glibc 2.34+,
which TorchSharp 0.107 needs. Install a newer libstdc++6 (GCC 13 or later runtime) from your
distribution, or use Ubuntu 24.04+, Debian 13+ or Fedora 39+.
MSG
exit 1
