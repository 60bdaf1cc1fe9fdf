#!/usr/bin/env bash
# Benchmark (not a test): generate N reviews with matching order lines, audit them with the release
# build, print wall time and peak RSS per stage and for the whole run.
#   bench/run.sh 1m     # 1.07M order lines + 1.01M reviews
#   bench/run.sh 10m    # 10.73M order lines + 10.05M reviews: the issue's 10M + 10M, each at least
#                       # 10M (needs ~8 GB of disk in $BENCH_DIR)
# Inputs are generated once per size and kept; a folder made with other generator arguments (the
# sixteenth session and before: --scale 21|213 --review-rate 25, 12.29M + 10.67M at 10m) is made
# anew.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1m}
case "$size" in
  1m) scale=18.6 ;;
  10m) scale=186 ;;
  *) echo "usage: bench/run.sh 1m|10m" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/revaudit-target}"
export REVAUDIT_KEY_FILE="${REVAUDIT_KEY_FILE:-$(mktemp -d)/hash.key}"
dir="${BENCH_DIR:-/tmp/revaudit-bench}/$size"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/revaudit"
args="--seed 1 --products 2000 --scale $scale --review-rate 30"
if [ ! -f "$dir/labels.json" ] || [ "$(cat "$dir/generated-with" 2>/dev/null)" != "$args" ]; then
  rm -rf "$dir"
  echo "== generate ($size): 2000 products, 184 days, scale $scale, review rate 30"
  # shellcheck disable=SC2086 # the arguments are words
  /usr/bin/time -f "generate: %e s wall, %M KB peak RSS" "$bin" generate --out "$dir" $args
  echo "$args" > "$dir/generated-with"
fi
ls -la "$dir"
# The inputs are read once first, so that they are in the page cache as in any repeated run: the
# figures are the audit's, not the disk's (a cold read of 5 GB adds several seconds, and earlier
# report folders written to the same disk evict the inputs from the cache). Writes still pending
# from an earlier run (1.7 GB of report at 10M, flushed 30 s after it was written) are flushed
# first too, so that the kernel's writing them back does not share the two cores with this run.
cat "$dir/orders.tsv" "$dir/reviews_linked.csv" > /dev/null
sync
echo "== audit ($size)"
/usr/bin/time -f "audit total: %e s wall, %M KB peak RSS" \
  "$bin" audit --force --orders "$dir/orders.tsv" --reviews "$dir/reviews_linked.csv" --out "$dir/report"
