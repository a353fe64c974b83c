#!/usr/bin/env bash
# The real-family recipe end to end for one alignment: split by identity cluster, plm fits at
# several training-set sizes M, and diagnose of each fit against the held-out sequences.
#
#   scripts/families-run.sh MSA OUTDIR [M ...]        # M values, `all` for every training sequence
#
# Environment (all optional):
#   TAUSTAR          the binary            [target/release/taustar]
#   SEED             split, subsample and diagnose seed [1]
#   IDENTITY         identity threshold of split, weights and held-out weights [0.8]
#   DIAGNOSE_ARGS    extra diagnose flags  ["--steps 2000 --tau-bounds 0.3:3"]
#
# Writes OUTDIR/split/{train,heldout}.fasta, OUTDIR/M<M>/{params.dat,fit.json,diagnose.json}
# and OUTDIR/summary.csv: M, M_eff, fit seconds, energy-match τ ± s.e., C-peak τ ± s.e.,
# diagnose seconds and its Monte Carlo diagnostics. A step whose output exists is skipped,
# so rerunning resumes. Needs python3 for the summary.
set -euo pipefail
case "${1:-}" in -h|--help|"") sed -n '2,16p' "$0"; exit 0 ;; esac
MSA=$1 OUT=$2
shift 2
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 300 1000 all)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TAUSTAR:-$ROOT/target/release/taustar}
SEED=${SEED:-1}
IDENTITY=${IDENTITY:-0.8}
read -r -a DIAG <<<"${DIAGNOSE_ARGS:---steps 2000 --tau-bounds 0.3:3}"
mkdir -p "$OUT"
[ -f "$OUT/split/heldout.fasta" ] ||
    "$BIN" split --msa "$MSA" --identity "$IDENTITY" --heldout 0.2 --seed "$SEED" --out "$OUT/split" --json \
        >"$OUT/split.json"
for M in "${SIZES[@]}"; do
    dir=$OUT/M$M
    mkdir -p "$dir"
    samples=()
    [ "$M" = all ] || samples=(--samples "$M")
    [ -s "$dir/fit.json" ] ||
        "$BIN" fit --msa "$OUT/split/train.fasta" "${samples[@]}" --seed "$SEED" --identity "$IDENTITY" \
            --out "$dir/params.dat" --json >"$dir/fit.json"
    [ -s "$dir/diagnose.json" ] ||
        "$BIN" diagnose --model "$dir/params.dat" --msa "$OUT/split/heldout.fasta" \
            --heldout-identity "$IDENTITY" --seed "$SEED" "${DIAG[@]}" --json >"$dir/diagnose.json"
    echo "$(date -u +%H:%M:%S) $OUT M=$M done" >&2
done
python3 - "$OUT" "${SIZES[@]}" <<'EOF'
import csv, json, sys
out, sizes = sys.argv[1], sys.argv[2:]
cols = ["M", "meff", "fit_seconds", "fit_stop", "energy_match_tau", "energy_match_tau_se",
        "heat_peak_tau", "heat_peak_tau_se", "heldout_meff", "diagnose_seconds", "steps",
        "tau_bounds", "mcmc_ok", "ladder_rungs", "round_trips", "r_hat", "equilibrated_tau_lo"]
with open(f"{out}/summary.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(cols)
    for m in sizes:
        fit = json.load(open(f"{out}/M{m}/fit.json"))
        d = json.load(open(f"{out}/M{m}/diagnose.json"))
        w.writerow([fit["samples"], f'{fit["meff"]:.1f}', f'{fit["seconds"]:.1f}', fit["stop"],
                    f'{d["energy_match_tau"]["value"]:.4f}', f'{d["energy_match_tau"]["se"]:.4f}',
                    f'{d["heat_peak_tau"]["value"]:.4f}', f'{d["heat_peak_tau"]["se"]:.4f}',
                    f'{d["heldout_meff"]:.1f}', f'{d["seconds"]:.1f}', d["steps"],
                    f'{d["tau_bounds"][0]}:{d["tau_bounds"][1]}', d["mcmc_ok"], d["ladder_rungs"],
                    d["round_trips"], f'{d["r_hat"]:.3f}', d["equilibrated_tau_lo"]])
print(open(f"{out}/summary.csv").read(), end="")
EOF
