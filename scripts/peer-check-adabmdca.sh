#!/usr/bin/env bash
# Check taustar against adabmDCA (PyPI `adabmDCA` 1.0.0, CPU) on one Potts model in
# adabmDCA's params.dat format: the same energies, and the same mean energy at τ = 1/β.
#
#   scripts/peer-check-adabmdca.sh PARAMS.dat SEQUENCES.fasta [options]
#
#   PARAMS.dat       a model in adabmDCA's text format (written by adabmDCA, or by
#                    `taustar fit`)
#   SEQUENCES.fasta  aligned sequences of the model's length (e.g. a held-out split): the
#                    energies are compared on them
#
# Options (defaults in brackets):
#   --venv DIR       a Python venv with adabmDCA; created and filled from PyPI if missing
#                    [$TMPDIR/taustar-adabmdca-venv]. PyPI's torch brings its CUDA wheels
#                    (about 5.4 GB); they are not used, the check runs on the CPU.
#   --taustar BIN    the taustar binary [target/release/taustar]
#   --beta B         inverse temperature of both samplers [1]
#   --chains N       adabmDCA chains (independent sequences) [500]
#   --sweeps S       adabmDCA Gibbs sweeps per chain, from random [3000]
#   --out DIR        where the intermediate files go [a new temporary directory]
#
# What it prints and checks:
#   1. energies: `taustar energies` against `adabmDCA energies --dtype float64` on every
#      sequence; fails when the largest |ΔE| exceeds 1e-5 · (1 + |E|).
#   2. ⟨E⟩ at β: adabmDCA's Gibbs sampler (its Metropolis default does not equilibrate a
#      sharply ordering model in a few thousand sweeps: its own mixing check says so) gives
#      `chains` independent sequences, scored by `taustar energies`: mean ± s.e.; taustar
#      diagnose gives ⟨E⟩(τ = 1/β) ± s.e. from its tempering ladders; prints the z-score
#      of the difference and fails when |z| > 4 or diagnose flags its own run. A Gibbs run
#      too short to equilibrate shows as a large z: lengthen --sweeps before reading it as a
#      disagreement.
# Needs: python3 (with venv and pip), network access to PyPI the first time.
set -euo pipefail

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[[ $# -ge 1 && ( $1 == -h || $1 == --help ) ]] && usage 0
[[ $# -ge 2 ]] || { echo "error: PARAMS.dat and SEQUENCES.fasta are required" >&2; usage 2 >&2; }
PARAMS=$1 SEQS=$2
shift 2
VENV="${TMPDIR:-/tmp}/taustar-adabmdca-venv" TAUSTAR=target/release/taustar BETA=1 CHAINS=500 SWEEPS=3000 OUT=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --venv) VENV=$2; shift 2 ;;
    --taustar) TAUSTAR=$2; shift 2 ;;
    --beta) BETA=$2; shift 2 ;;
    --chains) CHAINS=$2; shift 2 ;;
    --sweeps) SWEEPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "error: unknown option '$1'" >&2; usage 2 >&2 ;;
  esac
done
for f in "$PARAMS" "$SEQS"; do [[ -f $f ]] || { echo "error: no file '$f'" >&2; exit 2; }; done
[[ -x $TAUSTAR ]] || { echo "error: --taustar '$TAUSTAR' is not an executable (cargo build --release -p taustar)" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export WANDB_MODE=disabled   # adabmDCA imports wandb unconditionally; nothing is logged

if [[ ! -x $VENV/bin/adabmDCA ]]; then
  echo "== installing adabmDCA 1.0.0 and torch into $VENV (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check torch numpy tqdm pandas biopython wandb
  # Its pinned requirements pull more than the CLI needs; the CLI runs with the above.
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps adabmDCA==1.0.0
fi
ADA="$VENV/bin/adabmDCA"

echo "== 1. energies of $(grep -c '^>' "$SEQS") sequences"
"$TAUSTAR" energies --model "$PARAMS" --msa "$SEQS" > "$OUT/taustar-energies.tsv"
"$ADA" energies -d "$SEQS" -p "$PARAMS" -o "$OUT/ada-energies" --dtype float64 --device cpu > "$OUT/ada-energies.log" 2>&1
python3 - "$OUT/taustar-energies.tsv" "$OUT/ada-energies" <<'EOF'
import csv, glob, sys
ours = {}
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        name, e = line.rstrip("\n").rsplit("\t", 1)
        ours.setdefault(name, float(e))
files = glob.glob(sys.argv[2] + "/*.csv")  # name,sequence,energy at full precision
if not files:
    sys.exit("adabmDCA wrote no energies table (*.csv) in " + sys.argv[2])
theirs = {}
with open(files[0], newline="") as f:
    for row in csv.DictReader(f):
        theirs.setdefault(row["name"].strip(), float(row["energy"]))
common = [n for n in theirs if n in ours]
if not common:
    sys.exit("no sequence name in common between the two tools' outputs")
worst = max(common, key=lambda n: abs(ours[n] - theirs[n]) / (1 + abs(ours[n])))
d = abs(ours[worst] - theirs[worst])
print(f"{len(common)} sequences compared (adabmDCA drops duplicates); largest |ΔE| {d:.3g} "
      f"({worst}: taustar {ours[worst]:.6f}, adabmDCA {theirs[worst]:.6f})")
if d > 1e-5 * (1 + abs(ours[worst])):
    sys.exit("FAIL: energies differ beyond 1e-5 relative")
print("energies: agree")
EOF

echo "== 2. mean energy at beta = $BETA: adabmDCA Gibbs ($CHAINS chains x $SWEEPS sweeps) against taustar diagnose"
"$ADA" sample -p "$PARAMS" -o "$OUT/ada-sample" --ngen "$CHAINS" --max_nsweeps "$SWEEPS" \
  --sampler gibbs --beta "$BETA" --dtype float64 --device cpu --seed 1 > "$OUT/ada-sample.log" 2>&1
SAMPLES=$(find "$OUT/ada-sample" -maxdepth 1 -name "*.fasta" 2>/dev/null | sort | head -1)
[[ -n $SAMPLES ]] || { echo "error: adabmDCA wrote no samples; see $OUT/ada-sample.log" >&2; exit 1; }
"$TAUSTAR" energies --model "$PARAMS" --msa "$SAMPLES" > "$OUT/sample-energies.tsv"
TAU=$(python3 -c "print(1 / float('$BETA'))")
"$TAUSTAR" diagnose --model "$PARAMS" --msa "$SEQS" --tau "$TAU" --json > "$OUT/diagnose.json" 2> "$OUT/diagnose.log"
python3 - "$OUT/sample-energies.tsv" "$OUT/diagnose.json" "$TAU" <<'EOF'
import json, math, sys
with open(sys.argv[1]) as f:
    next(f)
    es = [float(line.rsplit("\t", 1)[1]) for line in f if line.strip()]
n = len(es)
m = sum(es) / n
se = math.sqrt(sum((e - m) ** 2 for e in es) / (n - 1) / n)
d = json.load(open(sys.argv[2]))
tau = float(sys.argv[3])
point = min(d["curve"], key=lambda p: abs(p["tau"] - tau))
ours, ours_se = point["mean_energy"], point["mean_energy_se"]
z = (m - ours) / math.sqrt(se * se + ours_se * ours_se)
print(f"adabmDCA Gibbs: <E> = {m:.3f} ± {se:.3f} over {n} chains")
print(f"taustar diagnose (tau {point['tau']:.4g}): <E> = {ours:.3f} ± {ours_se:.3f}, "
      f"mcmc_ok {d['mcmc_ok']}{'' if d['mcmc_ok'] else ' (' + str(d['mcmc_note']) + ')'}")
print(f"z = {z:+.2f}")
if not d["mcmc_ok"]:
    sys.exit("FAIL: taustar diagnose flagged its own run")
if abs(z) > 4:
    sys.exit("FAIL: the two mean energies differ by more than 4 combined standard errors")
print("mean energy: agree")
EOF
echo "== passed (files in $OUT)"
