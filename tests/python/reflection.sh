#!/usr/bin/env bash
# gRPC reflection checked by a client nobody here wrote (Python grpcio + grpcio-reflection,
# from PyPI): `taustar serve` with a shared token on loopback, a worker runs the quick study to
# completion, then tests/python/reflection_client.py lists the services by reflection, builds
# the Status messages from the reflected descriptors and compares them with `taustar status
# --json`. Usage (repository root, release binaries built): bash tests/python/reflection.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release
WORK=$(mktemp -d)
SERVE_PID=
cleanup() { [ -z "$SERVE_PID" ] || kill "$SERVE_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

python3 -c 'import grpc_reflection, grpc' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check grpcio grpcio-reflection
head -c 32 /dev/urandom | base64 >"$WORK/token"
"$BIN/taustar" serve studies/quick.toml --db "$WORK/quick.db" --listen 127.0.0.1:0 \
  --addr-file "$WORK/addr" --token-file "$WORK/token" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do [ -s "$WORK/addr" ] && break; sleep 0.1; done
[ -s "$WORK/addr" ] || { cat "$WORK/serve.log"; echo "serve did not start" >&2; exit 1; }
ADDR=$(cat "$WORK/addr")
# The worker exits 0 once the study is done; the coordinator stays up (no --exit-when-done).
TAUSTAR_TOKEN_FILE="$WORK/token" "$BIN/taustar-worker" --coordinator "http://$ADDR" --threads 2 \
  >"$WORK/worker.log" 2>&1 || { cat "$WORK/worker.log"; exit 1; }
"$BIN/taustar" status --db "$WORK/quick.db" --json >"$WORK/status.json"
python3 tests/python/reflection_client.py "$ADDR" "$WORK/token" "$WORK/status.json"
python3 - "$WORK/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["cells_done"] == s["cells_total"] == 100, s
print("ok   - the quick study completed: 100 of 100 cells")
PY
