#!/usr/bin/env bash
# The container image (deploy/container/Dockerfile), built and run for real with podman, with no
# container registry: the base is a minimal Debian 12 root filesystem made here by mmdebstrap
# (from the Debian mirror) and imported as a local image, and the binaries are the host's release
# build (Dockerfile build argument BINARIES=prebuilt). Then:
#   a. `taustar run studies/quick.toml` in one container, database and tables on a volume owned by
#      UID 10001; the tables must be bit-identical to the same binary's run on the host;
#   b. `taustar serve` (token file) in one container and `taustar-worker` in another on a
#      user-defined podman network, dialing http://coord:50051: a worker with a wrong token is
#      refused, the right one finishes the study, `taustar status --json` in the coordinator
#      reports it complete, the coordinator stops with 0 on SIGTERM, and the exported tables are
#      bit-identical to the host's.
# Usage (from the repository root, as root, after `cargo build --release -p taustar -p
# taustar-worker`): bash tests/container/container-test.sh
# Needs: apt (podman, runc, netavark, aardvark-dns, iptables, mmdebstrap), a Debian mirror,
# python3. Environment: TAUSTAR_BIN_DIR (default target/release), DEBIAN_MIRROR,
# DEBIAN_SECURITY_MIRROR. Containers, images and the network live in a private podman store under
# $TMPDIR and are all removed at exit (and at start, should a killed run have left any).
set -euo pipefail

cd "$(dirname "$0")/../.."
[ -f deploy/container/Dockerfile ] || { echo "run from the taustar repository" >&2; exit 2; }
T0=$SECONDS

BIN_DIR=$(realpath -m "${TAUSTAR_BIN_DIR:-target/release}")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BASE=localhost/debian-bookworm-min:latest
IMAGE=localhost/taustar:container-test
NET=taustar-ct-net
COORD=taustar-ct-coord
WORKER=taustar-ct-worker
# A fixed place, so a rerun cleans up whatever a killed run left behind.
STATE=${TMPDIR:-/tmp}/taustar-container-test

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
die() { echo "container-test: FATAL: $*" >&2; exit 1; }
step() { echo "== $* ($((SECONDS - T0)) s)"; }

[ "$(id -u)" -eq 0 ] || die "needs root (apt, rootful podman)"
if [ ! -x "$BIN_DIR/taustar" ] || [ ! -x "$BIN_DIR/taustar-worker" ]; then
  die "no release binaries in $BIN_DIR: cargo build --release -p taustar -p taustar-worker"
fi

# ---- tools --------------------------------------------------------------------------------------
step "tools"
# runc, not crun: Debian 12's crun refuses hybrid cgroup hierarchies. Rootful podman needs neither
# uidmap nor slirp4netns nor fuse-overlayfs; netavark + aardvark-dns give the user-defined
# network its DNS (the worker dials the coordinator by name), iptables its bridge rules.
missing=()
for p in podman runc netavark aardvark-dns iptables mmdebstrap python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing with apt: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
podman --version

# Container ulimits at or below this machine's hard limits (raising them fails without
# CAP_SYS_RESOURCE, and podman's defaults are higher).
at_most() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
NOFILE=$(at_most "$(ulimit -Hn)" 65536)
NPROC=$(at_most "$(ulimit -Hu)" 32768)
LIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")

# Podman with its own store under $STATE: nothing else on the machine is touched, and removing
# $STATE frees everything. The network's definition is global (/etc/containers/networks).
PM=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file --network-backend netavark
  --root "$STATE/storage" --runroot "$STATE/runroot" --tmpdir "$STATE/libpod")
pm() { "${PM[@]}" "$@"; }

remove_state() {
  [ -d "$STATE" ] || { podman --network-backend netavark network rm -f "$NET" >/dev/null 2>&1 || true; return 0; }
  pm rm -a -f -t 0 >/dev/null 2>&1 || true
  pm network rm -f "$NET" >/dev/null 2>&1 || true
  pm rmi -a -f >/dev/null 2>&1 || true
  # Whatever is still mounted below $STATE (a killed run's overlay layers), deepest first.
  awk -v s="$STATE" '$5 == s || index($5, s "/") == 1 { print $5 }' /proc/self/mountinfo \
    | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$STATE"
}

show_logs() {
  for f in "$STATE"/logs/*.log; do
    [ -s "$f" ] || continue
    echo "---- ${f##*/} (last 25 lines)"
    tail -n 25 "$f"
  done
}

on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || show_logs || true
  remove_state
  echo "container-test: cleaned up (exit $rc, $((SECONDS - T0)) s)"
  exit "$rc"
}

remove_state
mkdir -p "$STATE"/{storage,runroot,libpod,logs,context/bin,study,secrets,ref,run-a,run-b}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Polls a command until it succeeds, at most $1 seconds.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# One snapshot of the binaries for the image and the host's reference run: a concurrent cargo
# build may replace target/release meanwhile. The build context is only this bin/ directory.
BIN=$STATE/context/bin
cp "$BIN_DIR/taustar" "$BIN_DIR/taustar-worker" "$BIN/"

# ---- base image: Debian 12 minbase + ca-certificates, from the mirror ---------------------------
step "base image $BASE (mmdebstrap)"
# The merged-usr hook makes /usr merged without installing usrmerge (which pulls in perl).
# mmdebstrap unpacks into $TMPDIR: a tmpfs when there is room halves its time on a busy disk.
mm_tmp=${TMPDIR:-/tmp}
if [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')" -gt 1048576 ] 2>/dev/null; then
  mm_tmp=/dev/shm
fi
if ! TMPDIR=$mm_tmp mmdebstrap --variant=minbase --include=ca-certificates \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  bookworm "$STATE/base.tar" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
  "deb $SECURITY_MIRROR bookworm-security main" >"$STATE/logs/mmdebstrap.log" 2>&1; then
  die "mmdebstrap failed (see mmdebstrap.log above)"
fi
pm import --quiet "$STATE/base.tar" "$BASE" >/dev/null
rm -f "$STATE/base.tar"

# ---- the taustar image: host binaries, no network during the build -----------------------------
step "image $IMAGE (Dockerfile, BINARIES=prebuilt)"
if ! pm build --pull=never --network=none "${LIMITS[@]}" \
  -f deploy/container/Dockerfile --build-arg BINARIES=prebuilt --build-arg RUNTIME_IMAGE="$BASE" \
  -t "$IMAGE" "$STATE/context" >"$STATE/logs/build.log" 2>&1; then
  die "podman build failed (see build.log above)"
fi
SIZE=$(pm image inspect --format '{{.Size}}' "$IMAGE")
BASE_SIZE=$(pm image inspect --format '{{.Size}}' "$BASE")
echo "image size: $IMAGE $((SIZE / 1000000)) MB ($SIZE bytes; base $BASE $((BASE_SIZE / 1000000)) MB)"
pm images

cfg=$(pm image inspect --format \
  '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}' "$IMAGE")
case $cfg in
  '10001:10001|["taustar"]|{"50051/tcp":{}}|{"/data":{}}') ok "image config: user 10001:10001, entrypoint taustar, port 50051, volume /data" ;;
  *) bad "image config: $cfg" ;;
esac
RUN=(pm run --rm "${LIMITS[@]}" -e NO_COLOR=1)
if v=$("${RUN[@]}" --network none "$IMAGE" --version) && w=$("${RUN[@]}" --network none \
  --entrypoint taustar-worker "$IMAGE" --version) && [ "$v" = "$("$BIN/taustar" --version)" ]; then
  ok "both binaries run in the image: $v, $w"
else
  bad "the binaries do not run in the image"
fi
uid=$("${RUN[@]}" --network none --entrypoint id "$IMAGE" -u) || true
if [ "$uid" = 10001 ]; then ok "the container runs as UID 10001"; else bad "the container runs as UID '$uid'"; fi

# ---- reference: the same binary on the host -----------------------------------------------------
step "reference run on the host"
cp studies/quick.toml "$STATE/study/quick.toml"
chmod 0755 "$STATE/study"
chmod 0644 "$STATE/study/quick.toml"
NO_COLOR=1 "$BIN/taustar" run "$STATE/study/quick.toml" --db "$STATE/ref/quick.db" \
  --out "$STATE/ref/quick-out" >"$STATE/logs/reference.log" 2>&1 || die "taustar run on the host failed"

# Sanity of a study's tables: quick.toml is 4 gaps x 5 data sizes = 20 grid points x 5 replicates.
tables_sane() {
  python3 - "$1" <<'PY'
import csv, math, sys
d = sys.argv[1]
summary = list(csv.DictReader(open(f"{d}/summary.csv")))
cells = list(csv.DictReader(open(f"{d}/cells.csv")))
fails = []
if len(summary) != 20:
    fails.append(f"summary.csv has {len(summary)} rows, not 20")
if len(cells) != 100:
    fails.append(f"cells.csv has {len(cells)} rows, not 100")
if {float(r["gap"]) for r in summary} != {3.0, 5.0, 7.0, 9.0}:
    fails.append(f"gaps {sorted({r['gap'] for r in summary})}")
if {int(r["samples"]) for r in summary} != {10, 56, 316, 1778, 10000}:
    fails.append(f"data sizes {sorted({r['samples'] for r in summary})}")
if any(r["replicates"] != "5" for r in summary):
    fails.append("a grid point without 5 replicates")
taus = [float(r["tau_rev_mean"]) for r in summary]
if not all(math.isfinite(t) and 0 < t < 100 for t in taus):
    fails.append(f"tau_rev_mean out of range: {taus}")
if len({r["key"] for r in cells}) != 100:
    fails.append("cell keys are not unique")
print("; ".join(fails) if fails else
      f"20 grid points x 5 replicates, tau_rev_mean {min(taus):.3f}..{max(taus):.3f}")
sys.exit(1 if fails else 0)
PY
}
tables_sane "$STATE/ref/quick-out" >/dev/null || die "the host's reference tables are not sane"

# ---- a. taustar run in one container ------------------------------------------------------------
step "a. taustar run studies/quick.toml in a container"
chown 10001:10001 "$STATE/run-a"
chmod 0750 "$STATE/run-a"
t=$SECONDS
if "${RUN[@]}" --network none -v "$STATE/study:/etc/taustar:ro" -v "$STATE/run-a:/data" "$IMAGE" \
  run /etc/taustar/quick.toml --db /data/quick.db --out /data/quick-out \
  >"$STATE/logs/run-a.log" 2>&1; then
  ok "taustar run in the container exits 0 ($((SECONDS - t)) s): $(tail -n 1 "$STATE/logs/run-a.log")"
else
  bad "taustar run in the container failed"
fi
# The tables in $2 are sane and bit-identical to the host's run of the same binaries.
check_tables() {
  local what=$1 dir=$2 msg f
  if msg=$(tables_sane "$dir" 2>&1); then ok "$what tables: $msg"; else bad "$what tables: $msg"; fi
  for f in summary.csv cells.csv; do
    if cmp -s "$dir/$f" "$STATE/ref/quick-out/$f"; then
      ok "$what $f is bit-identical to the host's run"
    else
      bad "$what $f differs from the host's run"
    fi
  done
}

OUT=$STATE/run-a/quick-out
check_tables "a." "$OUT"
n_png=$(find "$OUT" -name '*.png' -size +1k | wc -l)
n_pq=$(find "$OUT" -name '*.parquet' -size +1k | wc -l)
if [ "$n_png" -ge 8 ] && [ "$n_pq" -eq 2 ]; then
  ok "a. $n_png PNG figures and $n_pq Parquet tables written"
else
  bad "a. $n_png PNG figures, $n_pq Parquet tables"
fi
owners=$(find "$STATE/run-a" -mindepth 1 -printf '%U\n' | sort -u | tr '\n' ' ')
if [ "$owners" = "10001 " ]; then
  ok "a. everything on the volume belongs to UID 10001"
else
  bad "a. owners on the volume: $owners"
fi

# ---- b. coordinator + worker containers on a user-defined network -------------------------------
step "b. taustar serve + taustar-worker on the podman network $NET"
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$STATE/secrets/token")
chown -R 10001:10001 "$STATE/secrets" "$STATE/run-b"
chmod 0750 "$STATE/run-b"
pm network create "$NET" >"$STATE/logs/network.log" 2>&1 || die "podman network create failed"
SECRET=(-v "$STATE/secrets:/var/run/secrets/taustar:ro" -e TAUSTAR_TOKEN_FILE=/var/run/secrets/taustar/token)
pm run -d --name "$COORD" --network "$NET" --network-alias coord "${LIMITS[@]}" -e NO_COLOR=1 \
  "${SECRET[@]}" -v "$STATE/study:/etc/taustar:ro" -v "$STATE/run-b:/data" "$IMAGE" \
  serve /etc/taustar/quick.toml --db /data/study.db --listen 0.0.0.0:50051 >>"$STATE/logs/network.log" 2>&1 \
  || die "the coordinator container did not start"
coord_logs() { pm logs "$COORD" >"$STATE/logs/coordinator.log" 2>&1 || true; }
listening() {
  coord_logs
  grep -q 'coordinator listening' "$STATE/logs/coordinator.log" && return 0
  [ "$(pm inspect -f '{{.State.Running}}' "$COORD")" = true ] || die "the coordinator container exited"
  return 1
}
poll 60 listening || die "the coordinator did not listen within 60 s"
ok "b. coordinator listening on 0.0.0.0:50051 with the token ($((SECONDS - T0)) s)"

WORKER_RUN=("${PM[@]}" run "${LIMITS[@]}" --network "$NET" -e NO_COLOR=1 --entrypoint taustar-worker)
rc=0
timeout 60 "${WORKER_RUN[@]}" --rm -e TAUSTAR_TOKEN=not-the-token "$IMAGE" \
  --coordinator http://coord:50051 --give-up-after 30 --max-backoff 1 \
  >"$STATE/logs/wrong-token-worker.log" 2>&1 || rc=$?
if [ "$rc" -eq 1 ] && grep -qi 'token' "$STATE/logs/wrong-token-worker.log"; then
  ok "b. a worker with a wrong token is refused (exit 1): $(grep -i -m1 token "$STATE/logs/wrong-token-worker.log" | cut -c1-160)"
else
  bad "b. a worker with a wrong token: exit $rc (want 1 and a message about the token)"
fi

t=$SECONDS
rc=0
timeout 180 "${WORKER_RUN[@]}" --name "$WORKER" "${SECRET[@]}" "$IMAGE" \
  --coordinator http://coord:50051 --name ct-worker --threads 2 --give-up-after 60 --max-backoff 1 \
  >"$STATE/logs/worker.log" 2>&1 || rc=$?
pm logs "$WORKER" >"$STATE/logs/worker.log" 2>&1 || true
if [ "$rc" -eq 0 ]; then
  ok "b. the worker exits 0 when the study is done ($((SECONDS - t)) s): $(grep -m1 'worker finished' "$STATE/logs/worker.log" | sed 's/.*worker finished/worker finished/')"
else
  bad "b. the worker exited $rc"
fi
if grep -q 'worker finished computed=100 ' "$STATE/logs/worker.log"; then
  ok "b. the worker container computed all 100 cells"
else
  bad "b. the worker did not compute the 100 cells"
fi

if status=$(pm exec "$COORD" taustar status --db /data/study.db --json 2>"$STATE/logs/status.log") \
  && msg=$(python3 -c '
import json, sys
s = json.load(sys.stdin)
good = s["cells_total"] == s["cells_done"] == 100 and s["cells_failed"] == 0 and s["finished"] is True
print("{study_name}: {cells_done}/{cells_total} done, {cells_failed} failed, finished={finished}".format(**s))
sys.exit(0 if good else 1)' <<<"$status"); then
  ok "b. taustar status --json in the coordinator: $msg"
else
  bad "b. taustar status --json: ${msg:-$status}"
fi

coord_logs
if grep -q 'worker registered.*name=ct-worker' "$STATE/logs/coordinator.log"; then
  ok "b. the coordinator registered the worker container by name"
else
  bad "b. the coordinator log has no 'worker registered ... name=ct-worker'"
fi
t=$SECONDS
pm stop -t 30 "$COORD" >/dev/null
code=$(pm inspect -f '{{.State.ExitCode}}' "$COORD")
coord_logs
if [ "$code" = 0 ]; then
  ok "b. the coordinator stops with 0 on SIGTERM ($((SECONDS - t)) s)"
else
  bad "b. the coordinator exited $code after SIGTERM"
fi

if "${RUN[@]}" --network none -v "$STATE/run-b:/data" "$IMAGE" export --db /data/study.db \
  --out /data/export --tables summary,cells --format csv >"$STATE/logs/export.log" 2>&1; then
  check_tables "b. exported" "$STATE/run-b/export"
else
  bad "b. taustar export in a container failed"
fi

echo "image size: $IMAGE $((SIZE / 1000000)) MB"
echo "container-test: $PASS passed, $FAIL failed ($((SECONDS - T0)) s)"
[ "$FAIL" -eq 0 ]
