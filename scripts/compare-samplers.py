#!/usr/bin/env python3
"""Compare the same cells run by the two Monte Carlo samplers: tempering and multicanonical.

Two studies that differ only in `[mcmc] sampler` have the same cell keys (same seed, grid and
replicates: the same data and fits), so their `cells.csv` exports (`taustar export`) pair up
by key. Printed, as Markdown:

- per grid point (truth temperature or none, M): cells passed by each sampler's own checks,
  the median τ*_rev of each over its passed cells, and, on the cells both passed, the
  z-scores of the difference, (τ_muca − τ_temp) / √(se_muca² + se_temp²);
- with --cells, one row per cell: both τ*_rev with their standard errors and verdicts, the
  z-score, and the fewest round trips of a multicanonical walker.

The two must agree within error where both pass; where only the multicanonical cell passes,
its τ*_rev is the first trusted value.

Usage: scripts/compare-samplers.py TEMPERING_CELLS.csv MULTICANONICAL_CELLS.csv [--cells]
Python 3 standard library only.
"""
import csv
import math
import statistics
import sys


def load(path):
    try:
        with open(path, newline="") as f:
            return {row["key"]: row for row in csv.DictReader(f)}
    except FileNotFoundError:
        sys.exit(f"error: cells table not found: {path} (make it with `taustar export`)")


def num(row, field):
    v = row.get(field, "")
    return float(v) if v not in ("", None) else None


def passed(row):
    return row.get("mcmc_ok", "").lower() == "true"


def point_of(row):
    t = row.get("temperature", "")
    return (float(t) if t else math.nan, int(row["samples"]))


def verdict(row):
    if passed(row):
        return "passed"
    note = (row.get("mcmc_note") or "").split(";")[0].strip()
    return f"flagged ({note[:60]})" if note else "flagged"


def fmt(v, se):
    if v is None:
        return "–"
    return f"{v:.4f} ± {se:.4f}" if se is not None else f"{v:.4f}"


def z_of(a, b):
    va, sa, vb, sb = num(a, "tau_rev"), num(a, "tau_rev_se"), num(b, "tau_rev"), num(b, "tau_rev_se")
    if None in (va, sa, vb, sb) or sa * sa + sb * sb == 0:
        return None
    return (vb - va) / math.sqrt(sa * sa + sb * sb)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2 or "-h" in sys.argv or "--help" in sys.argv:
        sys.exit(__doc__)
    temp, muca = load(args[0]), load(args[1])
    keys = sorted(set(temp) & set(muca), key=lambda k: (point_of(muca[k]), int(muca[k]["replicate"])))
    if not keys:
        sys.exit("error: the two tables share no cell key (not the same study grid?)")
    missing = len(muca) - len(keys)
    points = {}
    for k in keys:
        points.setdefault(point_of(muca[k]), []).append(k)

    print("| T | M | cells | tempering passed | multicanonical passed | median τ*_rev, tempering (passed) "
          "| median τ*_rev, multicanonical (passed) | both passed: mean z, largest abs z |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    all_z = []
    for (t, m), ks in sorted(points.items()):
        tp = [num(temp[k], "tau_rev") for k in ks if passed(temp[k])]
        mp = [num(muca[k], "tau_rev") for k in ks if passed(muca[k])]
        zs = [z for k in ks if passed(temp[k]) and passed(muca[k]) for z in [z_of(temp[k], muca[k])] if z is not None]
        all_z += zs
        med = lambda xs: f"{statistics.median(xs):.3f}" if xs else "–"
        zcol = f"{statistics.mean(zs):+.2f}, {max(abs(z) for z in zs):.2f} ({len(zs)})" if zs else "–"
        tcol = "–" if math.isnan(t) else f"{t:g}"
        print(f"| {tcol} | {m} | {len(ks)} | {len(tp)} | {len(mp)} | {med(tp)} | {med(mp)} | {zcol} |")
    if all_z:
        rms = math.sqrt(sum(z * z for z in all_z) / len(all_z))
        print(f"\nBoth passed: {len(all_z)} cells, z mean {statistics.mean(all_z):+.2f}, rms {rms:.2f}, "
              f"largest |z| {max(abs(z) for z in all_z):.2f}.")
    if missing:
        print(f"\n{missing} multicanonical cells have no tempering counterpart (not compared).")

    if "--cells" in sys.argv:
        print("\n| T | M | replicate | tempering τ*_rev | multicanonical τ*_rev | z | fewest round trips |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for k in keys:
            a, b = temp[k], muca[k]
            t, m = point_of(b)
            z = z_of(a, b)
            trips = b.get("walker_round_trips_min", "") or "–"
            print(
                f"| {'–' if math.isnan(t) else f'{t:g}'} | {m} | {b['replicate']} "
                f"| {fmt(num(a, 'tau_rev'), num(a, 'tau_rev_se'))}, {verdict(a)} "
                f"| {fmt(num(b, 'tau_rev'), num(b, 'tau_rev_se'))}, {verdict(b)} "
                f"| {'–' if z is None else f'{z:+.1f}'} | {trips} |"
            )


if __name__ == "__main__":
    main()
