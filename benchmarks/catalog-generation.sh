#!/bin/sh
# Time and peak memory of generating a full-size synthetic catalog (about
# 136,000 updates), the size of Microsoft's wsusscn2.cab. Run by hand or with
# `make bench-catalog`; the figures to watch are "Elapsed (wall clock) time"
# and "Maximum resident set size".
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$repo/.build/bench/catalog"}
rm -rf "$out"
/usr/bin/time -v "$repo/.venv/bin/python" -m wuacache_lab.catalog --out "$out" --updates "${UPDATES:-136000}" 2>&1 \
    | grep -E "Elapsed|Maximum resident|Exit status|updates|cab"
du -sh "$out"
