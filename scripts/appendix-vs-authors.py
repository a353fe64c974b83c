#!/usr/bin/env python3
"""Compare our appendix toy study with the authors' own κ/C panel data, per gap Δ.

What: the κ/C panel of arXiv:2512.09152's appendix (two-level truth, N_s = 100, n_g = 20,
M = 80, 200 replicates, Δ = 2:0.125:9). For κ(1) − C(1), κ(1) and C(1) it prints, per Δ,
the authors' replicate mean and standard error (sd/√n, sd with divisor n − 1), ours
(from the summary CSV), and z = (ours − theirs)/√(se_ours² + se_theirs²); then the rms,
mean and largest |z|, and for κ(1) − C(1) the Δ where each side's mean crosses zero
(linear interpolation between grid points).

Inputs:
  authors  kappa_C_plot_dict.jld2 from the authors' repository, github.com/peter-fields/temp-tune,
           path notebooks/supplemental/kappa_C_plot_dict.jld2. JLD2 is HDF5: `res` is a
           Julia NamedTuple (kappa, C) of two object references to (nΔ × nrep) Float64
           matrices (h5py sees them transposed, nrep × nΔ), one value per replicate;
           `Delta_grid` is a StepRangeLen (ref, step as TwicePrecision hi/lo, len, offset);
           scalars M, nground, nexcited, nrep.
  ours     docs/figures/paper-appendix/toy-summary.csv (studies/paper-appendix-toy.toml).

Usage: scripts/appendix-vs-authors.py AUTHORS.jld2 [OURS.csv]
Needs python3, numpy, h5py. Downloads nothing.
"""
import csv
import math
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OURS = os.path.join(REPO, "docs/figures/paper-appendix/toy-summary.csv")


def need(path, what):
    if not os.path.isfile(path):
        sys.exit(f"error: {what} not found: {path}\n"
                 "(authors' file: github.com/peter-fields/temp-tune, "
                 "notebooks/supplemental/kappa_C_plot_dict.jld2)")


def read_authors(path):
    import h5py
    with h5py.File(path, "r") as f:
        g = f["Delta_grid"][()]
        ref = g["ref"]["hi"] + g["ref"]["lo"]
        step = g["step"]["hi"] + g["step"]["lo"]
        n, off = int(g["len"]), int(g["offset"])
        deltas = np.array([ref + (i - off) * step for i in range(1, n + 1)])
        res = f["res"][()]
        kappa, heat = (np.asarray(f[res[name]][()], dtype=float) for name in ("kappa", "C"))
        meta = {k: int(f[k][()]) for k in ("M", "nground", "nexcited", "nrep")}
    if kappa.shape[0] == n and kappa.shape[1] != n:  # already (nΔ × nrep)
        kappa, heat = kappa.T, heat.T
    assert kappa.shape == heat.shape and kappa.shape[1] == n, kappa.shape
    return deltas, {"kmc": kappa - heat, "kappa": kappa, "C": heat}, meta


def stats(x):  # columns = Δ; replicates along axis 0; non-finite values left out
    out = []
    for col in x.T:
        col = col[np.isfinite(col)]
        out.append((col.mean(), col.std(ddof=1) / math.sqrt(len(col)), len(col)))
    return out


def read_ours(path):
    cols = {"kmc": "kappa_minus_c", "kappa": "kappa_at_1", "C": "heat_capacity_at_1"}
    rows = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            gap = round(float(r["gap"]), 9)
            if gap in rows:
                sys.exit(f"error: two rows for gap {gap} in {path}")
            rows[gap] = {k: (float(r[c + "_mean"]), float(r[c + "_sem"]), int(r["replicates"]))
                         for k, c in cols.items()}
    return rows


def crossings(x, y):
    return [x[i] - y[i] * (x[i + 1] - x[i]) / (y[i + 1] - y[i])
            for i in range(len(x) - 1) if y[i] == 0 or y[i] * y[i + 1] < 0]


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    authors = sys.argv[1]
    ours_path = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OURS
    need(authors, "authors' JLD2 file")
    need(ours_path, "our summary CSV")
    deltas, reps, meta = read_authors(authors)
    ours = read_ours(ours_path)
    print(f"authors: {meta}, {len(deltas)} gaps {deltas[0]:g}..{deltas[-1]:g}; "
          f"ours: {len(ours)} gaps from {os.path.relpath(ours_path, REPO)}")
    missing = [d for d in deltas if round(d, 9) not in ours]
    if missing:
        print(f"note: {len(missing)} authors' gaps absent from ours: {missing}")
    for key, label in (("kmc", "kappa(1) - C(1)"), ("kappa", "kappa(1)"), ("C", "C(1)")):
        theirs = stats(reps[key])
        print(f"\n== {label}: theirs = mean ± se over replicates (sd/sqrt n); ours = CSV mean ± sem")
        print(f"{'Delta':>6} {'theirs':>10} {'se':>8} {'n':>4} {'ours':>10} {'se':>8} {'n':>4} {'z':>7}")
        xs, zs, tm, om = [], [], [], []
        for d, (m, s, n) in zip(deltas, theirs):
            o = ours.get(round(d, 9))
            if o is None:
                continue
            om_, os_, on = o[key]
            z = (om_ - m) / math.hypot(os_, s)
            xs.append(d); zs.append(z); tm.append(m); om.append(om_)
            print(f"{d:6.3f} {m:10.5f} {s:8.5f} {n:4d} {om_:10.5f} {os_:8.5f} {on:4d} {z:7.2f}")
        z = np.array(zs)
        i = int(np.argmax(np.abs(z)))
        print(f"summary {label}: {len(z)} gaps, rms z = {math.sqrt(np.mean(z**2)):.3f}, "
              f"mean z = {z.mean():+.3f} ± {1 / math.sqrt(len(z)):.3f}, max |z| = {abs(z[i]):.2f} (z = {z[i]:+.2f} at Delta = {xs[i]:g}), "
              f"|z|>2: {int(np.sum(np.abs(z) > 2))}, |z|>3: {int(np.sum(np.abs(z) > 3))}, "
              f"sum z^2 = {np.sum(z**2):.1f} on {len(z)} dof")
        if key == "kmc":
            fmt = lambda c: ", ".join(f"{v:.3f}" for v in c) or "none"
            print(f"zero crossing of mean kappa-C: theirs at Delta = {fmt(crossings(xs, tm))}; "
                  f"ours at Delta = {fmt(crossings(xs, om))}")


if __name__ == "__main__":
    main()
