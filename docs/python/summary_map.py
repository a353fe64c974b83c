"""Load a taustar study's summary table with pandas and with polars, check they agree, and
redraw the mean τ*_rev phase diagram with matplotlib.

    python3 docs/python/summary_map.py OUT_DIR [--x samples --y gap --value tau_rev_mean]

OUT_DIR is a folder written by `taustar run` or `taustar export` (it holds summary.parquet).
Writes OUT_DIR/python_<value>.png and prints one line per check. Exits non-zero if pandas
and polars read different tables or the map does not cover every grid point.
"""

import argparse
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path, help="folder holding summary.parquet")
    ap.add_argument("--x", default="samples", help="column on the x axis (log scale)")
    ap.add_argument("--y", default="gap", help="column on the y axis")
    ap.add_argument("--value", default="tau_rev_mean", help="column drawn as colour")
    args = ap.parse_args()
    path = args.out / "summary.parquet"

    pdf = pd.read_parquet(path)  # pyarrow engine
    plf = pl.read_parquet(path)
    print(f"pandas: {len(pdf)} rows × {len(pdf.columns)} columns; polars: {plf.height} × {plf.width}")
    if list(pdf.columns) != plf.columns or len(pdf) != plf.height:
        print("FAIL: pandas and polars read different shapes", file=sys.stderr)
        return 1
    for col in (args.x, args.y, args.value):
        if col not in pdf.columns:
            print(f"FAIL: no column {col!r}; columns: {list(pdf.columns)}", file=sys.stderr)
            return 1
        a = pdf[col].to_numpy(dtype=float)
        b = plf[col].to_numpy().astype(float)
        if not np.array_equal(a, b, equal_nan=True):
            print(f"FAIL: column {col} differs between pandas and polars", file=sys.stderr)
            return 1
    print(f"pandas and polars agree on {args.x}, {args.y}, {args.value}")

    grid = pdf.pivot_table(index=args.y, columns=args.x, values=args.value, aggfunc="mean")
    if grid.isna().to_numpy().any():
        print(f"FAIL: {int(grid.isna().to_numpy().sum())} grid points have no {args.value}", file=sys.stderr)
        return 1
    xs, ys = grid.columns.to_numpy(dtype=float), grid.index.to_numpy(dtype=float)
    z = grid.to_numpy()
    fig, ax = plt.subplots(figsize=(7, 5))
    # Diverging around τ = 1: below cools the model, above heats it.
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    span = max(abs(1 - lo), abs(hi - 1), 1e-9)
    mesh = ax.pcolormesh(xs, ys, z, shading="nearest", cmap="RdBu_r", vmin=1 - span, vmax=1 + span)
    if len(xs) > 1 and xs.min() > 0 and xs.max() / xs.min() > 10:
        ax.set_xscale("log")
    if len(xs) > 1 and len(ys) > 1 and lo < 1 < hi:
        ax.contour(xs, ys, z, levels=[1.0], colors="k", linewidths=1.5)
    ax.set_xlabel(args.x)
    ax.set_ylabel(args.y)
    ax.set_title(f"{args.value} ({len(pdf)} grid points)")
    fig.colorbar(mesh, ax=ax, label=args.value)
    png = args.out / f"python_{args.value}.png"
    fig.savefig(png, dpi=100, bbox_inches="tight")
    print(f"map {len(ys)} × {len(xs)}, {args.value} in [{lo:.4g}, {hi:.4g}] → {png}")
    if not (math.isfinite(lo) and math.isfinite(hi)) or png.stat().st_size < 1000:
        print("FAIL: the map is empty", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
