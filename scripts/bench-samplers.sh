#!/usr/bin/env bash
# Tempering against the multicanonical sampler on whole 16×16 cells, in one run, as a table.
#
#   scripts/bench-samplers.sh            # seeds 1-3 of both cells
#   scripts/bench-samplers.sh --seeds 1  # one seed (quicker, noisier)
#
# Two cells, each run as a process (`taustar cell … --json`) with both samplers:
# - **flagged**: T = 2.5, M = 316, plm, λ = 0.01. Its fit orders abruptly below τ ≈ 1.3 and
#   tempering's diagnostics fail (τ_int, R̂, swap acceptance); the question is whether the
#   multicanonical sampler resolves τ*_rev (s.e. ≤ 0.02) in at most 3× tempering's time, and
#   whether its τ*_fwd agrees with tempering's trusted one (`tau_fwd_equilibrated`).
# - **passing**: T = 3.5, M = 3 162, where tempering passes. Here the question is the cost
#   at equal precision: efficiency = 1 / (wall time × s.e.²) of τ*_rev, as a ratio.
# Ratios, not absolute seconds, carry over between machines; both samplers run back to back
# on the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="1 2 3"
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) SEEDS="${2:?--seeds needs a list, e.g. \"1 2\"}"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "scripts/bench-samplers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v python3 >/dev/null || { echo "scripts/bench-samplers.sh needs python3" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "scripts/bench-samplers.sh needs /usr/bin/time (Debian: apt-get install time)" >&2; exit 2; }
cargo build --release -q -p taustar
BIN=${CARGO_TARGET_DIR:-target}/release/taustar
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for cell in "flagged 2.5 316" "passing 3.5 3162"; do
    # shellcheck disable=SC2086  # a cell is whitespace-separated fields, split on purpose
    set -- $cell
    for seed in $SEEDS; do
        for sampler in tempering multicanonical; do
            out="$WORK/$1-$seed-$sampler"
            /usr/bin/time -f '%e' -o "$out.time" "$BIN" cell --truth ising2d --lattice 16x16 \
                --temperature "$2" --samples "$3" --seed "$seed" --fit plm --l2 0.01 --eval mcmc \
                --sampler "$sampler" --json >"$out.json"
        done
    done
done

python3 - "$WORK" "$SEEDS" <<'EOF'
import json, math, sys
work, seeds = sys.argv[1], sys.argv[2].split()
def load(cell, seed, sampler):
    d = json.load(open(f"{work}/{cell}-{seed}-{sampler}.json"))
    d["wall"] = float(open(f"{work}/{cell}-{seed}-{sampler}.time").read())
    return d
print(f"{'cell':8} {'seed':>4} {'sampler':15} {'wall s':>7} {'ok':>5} {'tau_rev':>16} {'tau_fwd':>16} {'trusted tau_fwd':>16}")
for cell in ["flagged", "passing"]:
    ratios, eff = [], []
    for seed in seeds:
        t, m = load(cell, seed, "tempering"), load(cell, seed, "multicanonical")
        for name, d in [("tempering", t), ("multicanonical", m)]:
            trusted = d["tau_fwd"] if d["mcmc_ok"] else d.get("tau_fwd_equilibrated")
            tse = d["tau_fwd_se"] if d["mcmc_ok"] else d.get("tau_fwd_equilibrated_se")
            tr = f"{trusted:.4f}±{tse:.4f}" if trusted is not None else "-"
            print(f"{cell:8} {seed:>4} {name:15} {d['wall']:7.1f} {str(d['mcmc_ok']):>5} "
                  f"{d['tau_rev']:.4f}±{d['tau_rev_se']:.4f} {d['tau_fwd']:.4f}±{d['tau_fwd_se']:.4f} {tr:>16}")
        ratios.append(m["wall"] / t["wall"])
        eff.append((t["wall"] * t["tau_rev_se"] ** 2) / (m["wall"] * m["tau_rev_se"] ** 2))
        trusted_t = t["tau_fwd"] if t["mcmc_ok"] else t.get("tau_fwd_equilibrated")
        if trusted_t is not None and m["mcmc_ok"]:
            se_t = t["tau_fwd_se"] if t["mcmc_ok"] else t["tau_fwd_equilibrated_se"]
            z = (m["tau_fwd"] - trusted_t) / math.hypot(m["tau_fwd_se"], se_t)
            print(f"{'':8} {'':>4} τ*_fwd multicanonical − tempering (trusted): z = {z:+.2f}")
    mean = lambda v: sum(v) / len(v)
    print(f"{cell}: wall time multicanonical / tempering = {mean(ratios):.2f} "
          f"(per seed {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"τ*_rev efficiency multicanonical / tempering = {mean(eff):.2f}")
EOF
