#!/bin/sh
# mk/deps.sh PURPOSE - the Debian 12 packages that PURPOSE needs; installs the
# missing ones with apt-get when run as root, else names them in one line and
# fails.  Silent when all are there.  Each PURPOSE's set is what the code really
# links or calls (checked against the sources; keep it so):
#
#   build  `make`: the compiler and the libraries the tools link (zstd, curl,
#          PCRE2, utf8proc, libarchive), and Open MPI (mpicc, the trainer's
#          data parallelism)
#   test   `make test`: build, plus cJSON (tests/fuzz_filter.c compares with
#          it), the zstd command, Python 3 with zstandard and numpy (test
#          servers, generators, references) and gnuplot (bench/plot's test)
#   demo   `make demo`: build, plus Python 3 and numpy (data/demo.sh)
#   bench  `make bench`: test's tools, plus json-c and jansson (filter_bench.sh
#          compiles a JSON parser comparison with them and cJSON), curl (the
#          fetch anchor) and time (/usr/bin/time: CPU and peak RSS figures)
#
# `make DEPS=0 ...` skips this check (a machine that is not Debian).
BUILD="gcc make libzstd-dev libcurl4-openssl-dev libpcre2-dev libutf8proc-dev libarchive-dev openmpi-bin libopenmpi-dev"
TEST="$BUILD libcjson-dev zstd python3 python3-zstandard python3-numpy gnuplot-nox"
case "${1:-}" in
  build) PKGS=$BUILD ;;
  test)  PKGS="$TEST" ;;
  demo)  PKGS="$BUILD python3 python3-numpy" ;;
  bench) PKGS="$TEST libjson-c-dev libjansson-dev curl time" ;;
  *) echo "usage: sh mk/deps.sh build|test|demo|bench" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  what="make $1"; [ "$1" = build ] && what=make
  echo "deps: \`$what\` needs Debian packages that are missing; as root: apt-get install$missing" >&2
  exit 1
fi
echo "deps: installing missing Debian packages for $1:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
  || { echo "deps: apt-get install$missing failed" >&2; exit 1; }
