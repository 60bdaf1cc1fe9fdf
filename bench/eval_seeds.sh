#!/usr/bin/env bash
# Quality over several generator seeds (not a test): generate, audit, eval. Prints one table row per
# seed and input variant. Usage: bench/eval_seeds.sh [seeds...]   (default 1 2 3 4 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/revaudit-target}"
export REVAUDIT_KEY_FILE="${REVAUDIT_KEY_FILE:-$(mktemp -d)/hash.key}"
cargo build --quiet
bin="$CARGO_TARGET_DIR/debug/revaudit"
work=$(mktemp -d)
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4 5)
row() { # seed variant report labels
  "$bin" eval --json --labels "$4" --report "$3" | python3 -c '
import json, sys
m = json.load(sys.stdin)
s, v = sys.argv[1], sys.argv[2]
cells = [
    "%s (%s)" % (s, v),
    "%.3f" % m["review_roc_auc"],
    "%.3f" % m["review_average_precision"],
    "%.0f%%" % (m["attacked_recall_fail"] * 100),
    "%.0f%%" % (m["attacked_recall_warn_or_fail"] * 100),
    "%.1f%%" % (m["clean_fail_rate"] * 100),
    m["promotion_verdict"],
]
print("| " + " | ".join(cells) + " |")' "$1" "$2"
}
for s in "${seeds[@]}"; do
  g="$work/g$s"
  "$bin" generate --out "$g" --seed "$s" 2>/dev/null
  "$bin" audit -q --orders "$g/orders.tsv" --reviews "$g/reviews_linked.csv" --out "$work/linked$s"
  row "$s" "linked" "$work/linked$s" "$g/labels.json"
  "$bin" audit -q --orders "$g/orders.tsv" --reviews "$g/reviews.jsonl" --out "$work/jsonl$s"
  row "$s" "unlinked" "$work/jsonl$s" "$g/labels.json"
  python3 - "$g" <<'PY'
import csv, sys
g = sys.argv[1]
with open(f"{g}/reviews_linked.csv") as f, open(f"{g}/dayonly.csv", "w", newline="") as o:
    w = csv.writer(o)
    w.writerow(["review_id", "reviewer_id", "product_id", "rating", "created_at"])
    for x in csv.DictReader(f):
        w.writerow([x["review_id"], x["reviewer_id"], x["product_id"], x["rating"], x["created_at"][:10]])
PY
  "$bin" audit -q --reviews "$g/dayonly.csv" --out "$work/day$s"
  row "$s" "reviews only, day, no text" "$work/day$s" "$g/labels.json"
done
rm -rf "$work"
