#!/usr/bin/env bash
# Seed the fuzz corpora from the real-format fixtures and the broken-input corpus.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/load_detect corpus/load_forced corpus/decode corpus/timestamp
for f in ../tests/fixtures/*.* ../tests/fixtures/bad/*; do
  [ -f "$f" ] || continue
  n=$(basename "$f" | tr -c 'A-Za-z0-9._-' '_')
  cp "$f" "corpus/load_detect/$n"
  cp "$f" "corpus/decode/$n"
  # load_forced: the first byte picks the format (format_names() order); try every format on it.
  for k in 0 1 2 3 4 5 6 7 8 9 10; do
    { printf "\\$(printf '%03o' "$k")"; cat "$f"; } > "corpus/load_forced/$k-$n"
  done
done
for t in 2024-03-01T23:30:00-05:00 1588687728923 "2025-03-02 10:12:00 UTC" "08 9, 2004" 02.01.2024 \
  "2024-01-05 10:22:13 -0500" 20240301 1.52309e+12 "January 15, 2024"; do
  printf '%s' "$t" > "corpus/timestamp/$(printf '%s' "$t" | md5sum | cut -c1-12)"
done
