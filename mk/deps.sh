#!/bin/sh
# Installs the Debian packages symbert needs when any is missing (apt-get, as
# root).  Called by `make`, `make test` and `make demo`; silent when all are there.
PKGS="gcc make libzstd-dev libcurl4-openssl-dev libpcre2-dev libutf8proc-dev libcjson-dev
      libarchive-dev libjson-c-dev libjansson-dev zstd curl time gnuplot-nox python3 python3-zstandard python3-numpy"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "deps: not root; install them with: sudo apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
  || { echo "deps: apt-get install$missing failed" >&2; exit 1; }
