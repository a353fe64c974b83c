"""Compare the large-lattice studies (studies/ising-{4x4,8x8,16x16}.toml) point by point.

Reads each study's summary.csv (docs/figures/ising-<L>/summary.csv, written by `taustar
export`) and the truth entropies S(p) (entropy.csv, from `cargo run --release -p
taustar-common --example truth_entropy -- 4x4,8x8,16x16 1.5,2,2.27,2.5,3,3.5`), and writes:

- compare.csv: per (lattice, T, M) the mean τ*_rev and τ*_fwd with their standard errors,
  the fraction of replicates below 1, mean κ(1) − C(1), Monte Carlo cells flagged, and the
  two candidate scaling variables μ = ln M − S(p) and M / P (P = N(N−1)/2 couplings fitted);
- tau_vs_size.png: mean τ*_rev ± 1 s.e. against M / P, one panel per temperature, one line
  per lattice size.

Where a study's cells.csv is there too, compare.csv also holds the mean τ*_rev and its s.e.
over the replicates whose Monte Carlo evaluation passed its own diagnostics (`mcmc_ok`), and
how many did: a flagged cell's τ* is not a result (README, large lattices).

Usage (repository root): python3 docs/figures/ising-sizes/compare.py
"""

import csv
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = ["4x4", "8x8", "16x16"]


def main():
    entropy = {}
    with open(os.path.join(HERE, "entropy.csv")) as f:
        for r in csv.DictReader(f):
            entropy[(r["lattice"], float(r["temperature"]))] = float(r["entropy"])
    out = []
    ok_only = {}
    for size in SIZES:
        cells = os.path.join(ROOT, f"ising-{size}", "cells.csv")
        if os.path.exists(cells):
            with open(cells) as f:
                groups = {}
                for r in csv.DictReader(f):
                    if r.get("mcmc_ok") in ("false", "0", "False"):
                        continue
                    key = (float(r["temperature"]), int(float(r["samples"])))
                    groups.setdefault(key, []).append(float(r["tau_rev"]))
            for key, v in groups.items():
                mean = sum(v) / len(v)
                sem = (sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v)) ** 0.5 if len(v) > 1 else float("nan")
                ok_only[(size,) + key] = (mean, sem, len(v))
    for size in SIZES:
        path = os.path.join(ROOT, f"ising-{size}", "summary.csv")
        if not os.path.exists(path):
            print(f"skipping {size}: {path} not found", file=sys.stderr)
            continue
        rows_, cols_ = (int(v) for v in size.split("x"))
        n = rows_ * cols_
        params = n * (n - 1) // 2
        with open(path) as f:
            for r in csv.DictReader(f):
                t, m = float(r["temperature"]), int(float(r["samples"]))
                s = entropy[(size, t)]

                def num(key):
                    v = r.get(key, "")
                    return float(v) if v not in ("", None) else float("nan")

                out.append({
                    "lattice": size,
                    "temperature": t,
                    "samples": m,
                    "mu": math.log(m) - s,
                    "samples_per_coupling": m / params,
                    "replicates": int(num("replicates")),
                    "tau_rev_mean": num("tau_rev_mean"),
                    "tau_rev_sem": num("tau_rev_sem"),
                    "tau_fwd_mean": num("tau_fwd_mean"),
                    "tau_fwd_sem": num("tau_fwd_sem"),
                    "frac_tau_rev_below_1": num("frac_tau_rev_below_1"),
                    "kappa_minus_c_mean": num("kappa_minus_c_mean"),
                    "tau_rev_at_bound": int(num("tau_rev_at_bound")),
                    "tau_fwd_at_bound": int(num("tau_fwd_at_bound")),
                    "mcmc_not_ok": int(num("mcmc_not_ok")) if r.get("mcmc_not_ok") else 0,
                })
                ok = ok_only.get((size, t, m))
                out[-1]["tau_rev_ok_mean"] = ok[0] if ok else float("nan")
                out[-1]["tau_rev_ok_sem"] = ok[1] if ok else float("nan")
                out[-1]["replicates_ok"] = ok[2] if ok else (out[-1]["replicates"] if size == "4x4" else 0)
    out.sort(key=lambda r: (SIZES.index(r["lattice"]), r["temperature"], r["samples"]))
    with open(os.path.join(HERE, "compare.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0].keys()))
        w.writeheader()
        for r in out:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = sorted({r["temperature"] for r in out})
    fig, axes = plt.subplots(2, len(temps), figsize=(3.2 * len(temps), 6.4), sharex=True)
    colours = {"4x4": "#0072b2", "8x8": "#d55e00", "16x16": "#009e73"}
    for j, t in enumerate(temps):
        for i, (key, label) in enumerate([("tau_rev", "τ*_rev"), ("tau_fwd", "τ*_fwd")]):
            ax = axes[i][j]
            for size in SIZES:
                pts = [r for r in out if r["lattice"] == size and r["temperature"] == t]
                if not pts:
                    continue
                ax.errorbar([r["samples_per_coupling"] for r in pts], [r[f"{key}_mean"] for r in pts],
                            yerr=[r[f"{key}_sem"] for r in pts], color=colours[size], marker="o", ms=3,
                            capsize=2, label=size)
            ax.axhline(1.0, color="k", ls="--", lw=0.8)
            ax.set_xscale("log")
            if i == 0:
                ax.set_title(f"T = {t:g}")
            else:
                ax.set_xlabel("M / P (samples per fitted coupling)")
            if j == 0:
                ax.set_ylabel(f"mean {label} ± 1 s.e.")
    axes[0][0].legend(title="lattice", fontsize=8)
    fig.suptitle("Ising truth, plm fit (λ = 0.01): τ* against samples per coupling, three lattice sizes")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "tau_vs_size.png"), dpi=110)
    print(f"wrote compare.csv ({len(out)} rows) and tau_vs_size.png")


if __name__ == "__main__":
    main()
