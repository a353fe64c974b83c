#!/usr/bin/env bash
# The speed and footprint of the main path, in one run, as a table.
#
#   scripts/bench.sh                  # this checkout
#   scripts/bench.sh --against REF    # and the same measurements of git REF, side by side
#   scripts/bench.sh --quick          # shorter criterion runs (noisier)
#
# Measures:
# 1. `taustar run studies/paper-fig2.toml` on a fresh store, tables and figures included:
#    wall time, peak RSS, database and output sizes. Without --against, the baseline row is
#    the same study with `[tau] curves = "all"` (every curve stored, as before `recompute`).
# 2. The criterion groups of `cargo bench -p taustar-common --bench science` (exact pass,
#    4x4 Ising cells, two-level cells and their parts), each as a mean; with --against, REF's
#    means from the same machine and session and the ratio.
# Ratios, not absolute seconds, are what carries over between machines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
AGAINST=""
CRITERION_ARGS=(--warm-up-time 2 --measurement-time 5)
while [ $# -gt 0 ]; do
    case "$1" in
        --against) AGAINST="${2:?--against needs a git ref}"; shift 2 ;;
        --quick) CRITERION_ARGS=(--warm-up-time 1 --measurement-time 2); shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "scripts/bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v python3 >/dev/null || { echo "scripts/bench.sh needs python3 (reading criterion's JSON)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "scripts/bench.sh needs /usr/bin/time (Debian: apt-get install time)" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; [ -n "$AGAINST" ] && git -C "$ROOT" worktree remove --force "$WORK/against-src" 2>/dev/null || true' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# fig2 LABEL BINARY STUDY: run the study on a fresh store; append a TSV row to $WORK/fig2.tsv.
fig2() {
    local label=$1 bin=$2 study=$3 dir="$WORK/fig2-$1"
    mkdir -p "$dir"
    /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" run "$study" --db "$dir/study.db" >"$dir/log" 2>&1 \
        || { cat "$dir/log" >&2; exit 1; }
    read -r wall rss_kb <"$dir/time"
    local db out
    db=$(stat -c %s "$dir/study.db")
    out=$(du -sb "$dir/study-out" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$wall" "$rss_kb" "$db" "$out" >>"$WORK/fig2.tsv"
    rm -rf "$dir"
}

if [ -n "$AGAINST" ]; then
    echo "== building $AGAINST (git worktree)" >&2
    git worktree add --detach "$WORK/against-src" "$AGAINST" >/dev/null
    (cd "$WORK/against-src" && cargo build --release -q --bin taustar)
    cp "$CARGO_TARGET_DIR/release/taustar" "$WORK/taustar-against"
    echo "== criterion groups of $AGAINST" >&2
    (cd "$WORK/against-src" && cargo bench -q -p taustar-common --bench science -- \
        --save-baseline against "${CRITERION_ARGS[@]}" >/dev/null)
fi

echo "== building this checkout" >&2
cargo build --release -q --bin taustar
BIN="$CARGO_TARGET_DIR/release/taustar"

echo "== Fig. 2 end to end" >&2
: >"$WORK/fig2.tsv"
fig2 now "$BIN" studies/paper-fig2.toml
if [ -n "$AGAINST" ]; then
    fig2 "$AGAINST" "$WORK/taustar-against" studies/paper-fig2.toml
else
    sed 's/^\[tau\]$/[tau]\ncurves = "all"/' studies/paper-fig2.toml >"$WORK/paper-fig2-all.toml"
    grep -q '^curves = "all"' "$WORK/paper-fig2-all.toml" || { echo "no [tau] table in paper-fig2.toml" >&2; exit 1; }
    fig2 'curves="all"' "$BIN" "$WORK/paper-fig2-all.toml"
fi

echo "== criterion groups of this checkout" >&2
BASELINE_ARGS=()
[ -n "$AGAINST" ] && BASELINE_ARGS=(--baseline against)
cargo bench -q -p taustar-common --bench science -- "${BASELINE_ARGS[@]}" "${CRITERION_ARGS[@]}" >/dev/null

python3 - "$WORK/fig2.tsv" "$CARGO_TARGET_DIR/criterion" "$AGAINST" "$(nproc)" <<'PY'
import json, os, sys
tsv, crit, against, cores = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [l.rstrip("\n").split("\t") for l in open(tsv)]
print(f"\n## taustar bench ({cores} cores)\n")
print("### Fig. 2 end to end (`taustar run studies/paper-fig2.toml`, tables and figures included)\n")
print("| build | wall s | peak RSS MB | database MB | outputs MB |")
print("| --- | ---: | ---: | ---: | ---: |")
for label, wall, rss, db, out in rows:
    print(f"| {label} | {float(wall):.2f} | {int(rss)/1024:.0f} | {int(db)/1e6:.0f} | {int(out)/1e6:.0f} |")
if len(rows) == 2:
    (a, b) = rows
    print(f"\nratios ({a[0]} / {b[0]}): wall {float(a[1])/float(b[1]):.2f}, RSS {int(a[2])/int(b[2]):.2f}, "
          f"database {int(a[3])/int(b[3]):.3f}")
print("\n### Kernels (criterion means)\n")
print("| benchmark | now |" + (f" {against} | now / {against} |" if against else ""))
print("| --- | ---: |" + (" ---: | ---: |" if against else ""))
def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns/scale:.3g} {unit}"
    return f"{ns:.3g} ns"
def mean(path):
    try:
        return json.load(open(path))["mean"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None
for group in sorted(os.listdir(crit)):
    gdir = os.path.join(crit, group)
    if not os.path.isdir(gdir) or group == "report":
        continue
    benches = [gdir] if os.path.isdir(os.path.join(gdir, "new")) else \
        [os.path.join(gdir, b) for b in sorted(os.listdir(gdir)) if os.path.isdir(os.path.join(gdir, b, "new"))]
    for b in benches:
        name = os.path.relpath(b, crit)
        now = mean(os.path.join(b, "new", "estimates.json"))
        if now is None:
            continue
        line = f"| {name} | {fmt(now)} |"
        if against:
            old = mean(os.path.join(b, "against", "estimates.json"))
            line += f" {fmt(old)} | {now/old:.2f} |" if old else " – | – |"
        print(line)
# criterion writes the group "exact_pass_2^16" as the directory exact_pass_2_16.
naive = mean(os.path.join(crit, "exact_pass_2_16", "naive", "new", "estimates.json"))
wht = mean(os.path.join(crit, "exact_pass_2_16", "walsh_hadamard", "new", "estimates.json"))
if naive and wht:
    print(f"\nexact pass, Walsh–Hadamard against the naive sum over pairs (same run): {naive/wht:.0f}× faster")
PY
