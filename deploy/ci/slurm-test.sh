#!/usr/bin/env bash
# End-to-end test of deploy/slurm/ on a real Slurm cluster on this machine:
#   1.  complete      taustar.sbatch runs a small study in one allocation spanning 2 (emulated)
#                     nodes: every cell done, one result each, job COMPLETED;
#   1b.               resubmitting the finished study leases and computes nothing more;
#   1c. watchdog      a worker that never hears "done" does not hold the allocation;
#   2.  cancel+resume a second job on a database being served is refused; the first is
#                     `scancel`led a quarter of the way and resubmitted: it resumes, and no cell
#                     finished before the cancel is ever leased again (checked in the database);
#   3.  requeue       `scontrol requeue` mid-way (same job id, same port): the job resumes;
#   4.  worker drain  SIGTERM to the only worker while it holds leased cells: it exits 0, hands
#                     back or finishes every cell (none left leased), and a worker-array job
#                     attached with taustar-workers.sbatch finishes the study;
#   5.  diagnose      taustar-diagnose.sbatch diagnoses a Potts model file as a batch job: job
#                     COMPLETED, diagnose.json/png/svg written, the diagnostics passed, and the
#                     numbers those of `taustar diagnose` run here with the same flags.
# Each assertion prints one "ok"/"FAIL" line with the numbers it compared; the last line is
# "slurm-test: N passed, M failed". About 3 minutes on 2 cores.
#
# Usage (from the repository root, as root): bash deploy/ci/slurm-test.sh
# Needs the release binaries (cargo build --release -p taustar -p taustar-worker);
# installs slurmctld slurmd slurm-client munge with apt if missing and starts Slurm with
# slurm-up.sh next to this script (and stops it again on exit with slurm-down.sh, if this
# script was the one that started it).
# Env: TAUSTAR_BIN_DIR (default target/release), SLURM_TEST_KEEP=1 keeps the work dir,
#      SLURM_TEST_ONLY="1 3" runs a subset, SLURM_CI_DIR (Slurm state; see slurm-up.sh).
set -euo pipefail

# slurm-up.sh and slurm-down.sh live next to this script, in deploy/ci/.
CI_DIR=$(cd "$(dirname "$0")" && pwd)
cd "$CI_DIR/../.."
ROOT=$PWD
[ -f deploy/slurm/taustar.sbatch ] || { echo "run from the taustar repository" >&2; exit 2; }
BIN_DIR=$(realpath -m "${TAUSTAR_BIN_DIR:-target/release}")
TAUSTAR="$BIN_DIR/taustar"
for b in "$TAUSTAR" "$BIN_DIR/taustar-worker"; do
  [ -x "$b" ] || { echo "missing $b: build first with" \
    "'cargo build --release -p taustar -p taustar-worker' (or set TAUSTAR_BIN_DIR)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "needs root (starts munge and Slurm daemons)" >&2; exit 2; }

T0=$SECONDS
PASS=0
FAIL=0
STARTED_SLURM=0
WORK=$(mktemp -d /tmp/taustar-slurm.XXXXXX)

cleanup() {
  local rc=$?
  # Cancel only the jobs this script submitted, by id (submit records them; it runs in $(...)
  # subshells, hence a file).
  if [ -s "$WORK/jobs" ]; then
    while read -r j; do scancel --quiet "$j" 2>/dev/null || true; done <"$WORK/jobs"
  fi
  if [ "$STARTED_SLURM" -eq 1 ]; then bash "$CI_DIR/slurm-down.sh" >/dev/null 2>&1 || true; fi
  if [ "$rc" -ne 0 ] || [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then
    echo "work dir kept for inspection: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
# Failed assertions are repeated at the end: CI shows only the tail of a long log.
FAILED_LINES=()
bad() { FAIL=$((FAIL + 1)); FAILED_LINES+=("$*"); echo "FAIL - $*"; }
summary() {
  echo "slurm-test: $PASS passed, $FAIL failed"
  local f
  for f in "${FAILED_LINES[@]}"; do echo "  failed: $f"; done
}
check() { # check DESCRIPTION COMMAND... : passes when the command succeeds
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
log() { echo "# [$(printf '%4d' $((SECONDS - T0)))s] $*"; }
fatal() { bad "$*"; summary; exit 1; }
wants() { [ -z "${SLURM_TEST_ONLY:-}" ] || [[ " $SLURM_TEST_ONLY " == *" $1 "* ]]; }

# ---- Slurm ----------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurmctld slurmd slurm-client munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
fi
if timeout 3 sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
  log "using the Slurm cluster already running"
else
  [ -f "$CI_DIR/slurm-up.sh" ] || { echo "missing $CI_DIR/slurm-up.sh" >&2; exit 2; }
  STARTED_SLURM=1
  # Two emulated nodes (test 1 spans both), 4 declared CPUs each on the 2-core box (a study job
  # and a worker array run side by side).
  SLURM_CI_NODES=${SLURM_CI_NODES:-2} SLURM_CI_CPUS=${SLURM_CI_CPUS:-4} \
    bash "$CI_DIR/slurm-up.sh" >"$WORK/slurm-up.log" 2>&1 || { cat "$WORK/slurm-up.log"; exit 1; }
  log "$(head -n 1 "$WORK/slurm-up.log")"
fi

# ---- helpers ----------------------------------------------------------------------------------
# Every job: one CPU per task, overcommitted (the box has 2 cores), output in the work dir.
# Leases of 15 s instead of 60: cells a cancelled job's workers could not hand back (the
# coordinator stops with them) return to the queue of the resumed job after one lease period.
SBATCH_COMMON=(--parsable --overcommit --cpus-per-task=1
  --export="ALL,TAUSTAR_BIN_DIR=$BIN_DIR,TAUSTAR_SERVE_ARGS=--lease-secs=15")

submit() { # submit NAME NTASKS|SBATCH_SIZE_OPTIONS STUDY DB -> prints the job id
  local name=$1 size=$2 study=$3 db=$4 id
  case "$size" in -*) ;; *) size="--ntasks=$size" ;; esac
  # shellcheck disable=SC2086  # size options are a whitespace-separated list
  id=$(sbatch "${SBATCH_COMMON[@]}" --job-name="$name" $size \
    --output="$WORK/$name-%j.out" deploy/slurm/taustar.sbatch "$study" "$db")
  id=${id%%;*}
  [ -n "$id" ] || return 1
  echo "$id" >>"$WORK/jobs"
  echo "$id"
}
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
is_final() {
  case "$1" in
    COMPLETED | FAILED | CANCELLED* | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE) return 0 ;;
    *) return 1 ;;
  esac
}
wait_final() { # wait_final JOBID TIMEOUT_S -> prints "STATE EXITCODE"
  local id=$1 deadline=$((SECONDS + $2)) st
  while :; do
    st=$(job_field "$id" JobState)
    if is_final "$st"; then echo "$st $(job_field "$id" ExitCode)"; return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || { echo "TIMEOUT_WAITING($st) -"; return 1; }
    sleep 0.5
  done
}
wait_state() { # wait_state JOBID STATE TIMEOUT_S
  local deadline=$((SECONDS + $3))
  until [ "$(job_field "$1" JobState)" = "$2" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
wait_nodes_settled() { # wait_nodes_settled TIMEOUT_S: until no node is still completing a job.
  # A requeued job released while its node is still COMPLETING (the old batch step winding
  # down) can fail to launch (FAILED 1:0 within a second, nothing in its log).
  local deadline=$((SECONDS + $1))
  while sinfo -h -o %T | grep -qi comp; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
status() { "$TAUSTAR" status --db "$1" --json 2>/dev/null; }
field() { # field JSON KEY
  python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])[sys.argv[2]]))' "$1" "$2"
}
wait_done_at_least() { # wait_done_at_least DB N JOBID TIMEOUT_S: until N cells are done (job must run)
  local db=$1 n=$2 id=$3 deadline=$(($4 + SECONDS)) s
  while [ "$SECONDS" -lt "$deadline" ]; do
    if s=$(status "$db") && [ "$(field "$s" cells_done)" -ge "$n" ]; then return 0; fi
    is_final "$(job_field "$id" JobState)" && return 1
    sleep 0.2
  done
  return 1
}
show_log() { echo "--- $1"; sed 's/^/    /' "$1" | tail -n "${2:-40}"; }
cells_total_of() { # the study's cell count, from a status of its DB
  field "$1" cells_total
}
complete_and_clean() { # complete_and_clean JSON LABEL: every cell done, none pending/leased/failed
  local s=$1 label=$2 t
  t=$(field "$s" cells_total)
  check "$label: cells_done == cells_total == $t (got $(field "$s" cells_done))" \
    test "$(field "$s" cells_done)" -eq "$t" -a "$t" -gt 0
  check "$label: 0 pending, 0 leased, 0 failed (got $(field "$s" cells_pending), $(field "$s" cells_leased), $(field "$s" cells_failed))" \
    test "$(field "$s" cells_pending)" -eq 0 -a "$(field "$s" cells_leased)" -eq 0 -a "$(field "$s" cells_failed)" -eq 0
}

# Cell bookkeeping straight from the study store (read-only; schema of coordinator/src/store,
# SCHEMA_VERSION 1): the evidence that finished cells are never leased or committed again.
#   dbq snap DB OUT       write {cell id: [state, attempts, finished_ms]} to OUT
#   dbq unchanged OUT DB  every cell done in OUT is still done with the same attempts and
#                         finish time in DB (it was never re-leased, so never recomputed)
#   dbq workers DB        distinct workers that finished cells, and how many results exist
dbq() {
  python3 - "$@" <<'PY'
import json, sqlite3, sys
mode = sys.argv[1]
def cells(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT id, state, attempts, finished_ms FROM cells").fetchall()
    return con, {str(i): [st, att, fin] for i, st, att, fin in rows}
if mode == "snap":
    _, c = cells(sys.argv[2])
    json.dump(c, open(sys.argv[3], "w"))
    print(f"{sum(v[0] == 2 for v in c.values())} done of {len(c)} cells")
elif mode == "unchanged":
    old = json.load(open(sys.argv[2]))
    _, new = cells(sys.argv[3])
    done = [k for k, v in old.items() if v[0] == 2]
    changed = [(k, old[k], new.get(k)) for k in done if new.get(k) != old[k]]
    print(f"{len(done) - len(changed)} of {len(done)} earlier finished cells untouched"
          + (f"; first changed: id {changed[0][0]} {changed[0][1]} -> {changed[0][2]}" if changed else ""))
    sys.exit(1 if changed or not done else 0)
elif mode == "workers":
    con, c = cells(sys.argv[2])
    names = con.execute("SELECT DISTINCT w.name FROM cells c JOIN workers w ON w.id = c.worker_id "
                        "WHERE c.state = 2 ORDER BY w.name").fetchall()
    results = con.execute("SELECT count(*) FROM results").fetchone()[0]
    print(f"{len(names)} {results} {' '.join(n for (n,) in names)}")
PY
}

SMALL="$ROOT/tests/slurm/small.toml"
RESUME="$ROOT/tests/slurm/resume.toml"
log "binaries: $BIN_DIR; work dir: $WORK"

# ---- 1. a study runs to completion ----------------------------------------------------------
if wants 1; then
  F0=$FAIL # this test's logs are shown only when one of its own checks fails
  db="$WORK/t1/study.db"
  nodes=$(sinfo -h -N -o %N | sort -u | wc -l)
  if [ "$nodes" -ge 2 ]; then
    log "test 1: complete a study with one allocation on 2 nodes (1 coordinator + 3 workers)"
    size="--nodes=2 --ntasks=4"
  else
    log "test 1: complete a study (1 coordinator + 2 workers); NOTICE: 1-node cluster, no multi-node run"
    size=3
  fi
  t=$SECONDS
  j=$(submit t1 "$size" "$SMALL" "$db") || fatal "t1: sbatch refused the job"
  r=$(wait_final "$j" 240) || true
  log "job $j: $r after $((SECONDS - t)) s"
  check "t1: job $j COMPLETED with exit 0:0 (got $r)" test "$r" = "COMPLETED 0:0"
  if [ "$nodes" -ge 2 ]; then
    check "t1: the allocation spanned 2 nodes ($(job_field "$j" NumNodes) nodes: $(job_field "$j" NodeList))" \
      test "$(job_field "$j" NumNodes)" = 2
  fi
  if s=$(status "$db"); then
    complete_and_clean "$s" t1
    check "t1: no duplicate result (duplicates_ignored = $(field "$s" duplicates_ignored))" \
      test "$(field "$s" duplicates_ignored)" -eq 0
  else
    bad "t1: taustar status --db $db failed"
  fi
  check "t1: the job log reports the study complete" grep -q "study complete" "$WORK"/t1-"$j".out
  if w=$(dbq workers "$db"); then
    read -r _ nresults _ <<<"$w"
    check "t1: one stored result per cell ($nresults results)" test "$nresults" -eq "$(field "$s" cells_total)"
  else
    bad "t1: cannot read the cells of $db"
  fi
  [ "$FAIL" -eq "$F0" ] || show_log "$WORK/t1-$j.out"

  log "test 1b: resubmit the finished study"
  before=$(status "$db" || echo '{}')
  dbq snap "$db" "$WORK/t1.snap" >/dev/null || bad "t1b: cannot snapshot $db"
  t=$SECONDS
  j=$(submit t1b 2 "$SMALL" "$db") || fatal "t1b: sbatch refused the job"
  r=$(wait_final "$j" 120) || true
  log "job $j: $r after $((SECONDS - t)) s"
  check "t1b: resubmitted finished study COMPLETED 0:0 (got $r)" test "$r" = "COMPLETED 0:0"
  if s=$(status "$db"); then
    check "t1b: done count unchanged ($(field "$before" cells_done) -> $(field "$s" cells_done))" \
      test "$(field "$s" cells_done)" -eq "$(field "$before" cells_done)"
    check "t1b: nothing recomputed (duplicates_ignored = $(field "$s" duplicates_ignored))" \
      test "$(field "$s" duplicates_ignored)" -eq 0
    check "t1b: no cell leased again: $(dbq unchanged "$WORK/t1.snap" "$db")" dbq unchanged "$WORK/t1.snap" "$db"
  else
    bad "t1b: status failed"
  fi
fi

# ---- 1c. the batch script's watchdog --------------------------------------------------------------
# A worker that never hears "done" (a stand-in that just sleeps) must not hold the allocation:
# once the study is finished for TAUSTAR_DONE_GRACE seconds, the watchdog SIGTERMs the step.
if wants 1 && [ -e "$WORK/t1/study.db" ]; then
  log "test 1c: a worker that never learns the study is done"
  mkdir -p "$WORK/deafbin"
  ln -sf "$TAUSTAR" "$WORK/deafbin/taustar"
  printf '%s\n' '#!/usr/bin/env bash' 'trap "echo deaf worker: SIGTERM; exit 0" TERM' \
    'echo "deaf worker: ignoring the coordinator"; while :; do sleep 0.2; done' >"$WORK/deafbin/taustar-worker"
  chmod +x "$WORK/deafbin/taustar-worker"
  t=$SECONDS
  j=$(sbatch --parsable --overcommit --cpus-per-task=1 --ntasks=2 --job-name=t1c --output="$WORK/t1c-%j.out" \
    --export="ALL,TAUSTAR_BIN_DIR=$WORK/deafbin,TAUSTAR_DONE_GRACE=3" \
    deploy/slurm/taustar.sbatch "$SMALL" "$WORK/t1/study.db") || fatal "t1c: sbatch refused the job"
  j=${j%%;*}
  echo "$j" >>"$WORK/jobs"
  r=$(wait_final "$j" 90) || true
  log "job $j: $r after $((SECONDS - t)) s"
  check "t1c: the job still COMPLETED 0:0 (got $r)" test "$r" = "COMPLETED 0:0"
  check "t1c: the watchdog stopped the step and the stand-in worker got SIGTERM" \
    grep -q "deaf worker: SIGTERM" "$WORK/t1c-$j.out"
  check "t1c: the job log names the watchdog" grep -q "watchdog: the study finished" "$WORK/t1c-$j.out"
fi

# ---- 2. scancel mid-way, resubmit, resume ------------------------------------------------------
if wants 2; then
  F0=$FAIL # this test's logs are shown only when one of its own checks fails
  log "test 2: scancel a study mid-way and resubmit it"
  db="$WORK/t2/study.db"
  j=$(submit t2a 3 "$RESUME" "$db") || fatal "t2a: sbatch refused the job"
  if wait_done_at_least "$db" 1 "$j" 120; then
    total=$(cells_total_of "$(status "$db")")
    # A second job on the same database while the first serves it must refuse to start.
    jd=$(submit t2dup 1 "$RESUME" "$db") || fatal "t2dup: sbatch refused the job"
    r=$(wait_final "$jd" 60) || true
    check "t2: a second job on the same database fails fast (got $r, want FAILED 2:0)" test "$r" = "FAILED 2:0"
    check "t2: the refused job says another job serves the database" grep -q "another job is serving" "$WORK/t2dup-$jd.out"
    # Cancel at about a quarter of the way, so both runs do real work.
    wait_done_at_least "$db" $((total / 4)) "$j" 120 || true
    scancel "$j"
    r=$(wait_final "$j" 60) || true
    s1=$(status "$db")
    done1=$(field "$s1" cells_done)
    dbq snap "$db" "$WORK/t2.snap" >/dev/null || bad "t2: cannot snapshot $db"
    log "job $j cancelled: $r; $done1 of $total cells done"
    check "t2: the first run was cancelled (got $r)" test "${r%% *}" = CANCELLED
    check "t2: cancelled mid-way: 0 < $done1 < $total cells done" test "$done1" -gt 0 -a "$done1" -lt "$total"
    # Coordinator and workers get SIGTERM together, so a worker's hand-back may arrive after the
    # coordinator stopped listening: such cells stay leased in the DB and the next coordinator
    # re-leases them after one lease period. Reported, not asserted (test 4 asserts the drain).
    log "leased in the DB after the cancel: $(field "$s1" cells_leased)"
    t=$SECONDS
    j2=$(submit t2b 3 "$RESUME" "$db") || fatal "t2b: sbatch refused the job"
    r=$(wait_final "$j2" 240) || true
    log "job $j2: $r after $((SECONDS - t)) s"
    check "t2: the resubmitted job COMPLETED 0:0 (got $r)" test "$r" = "COMPLETED 0:0"
    check "t2: the resubmitted job resumed (log says 'resuming')" grep -q "resuming" "$WORK/t2b-$j2.out"
    s2=$(status "$db")
    complete_and_clean "$s2" t2
    check "t2: done count only grew ($done1 -> $(field "$s2" cells_done))" test "$(field "$s2" cells_done)" -ge "$done1"
    check "t2: no finished cell recomputed and resubmitted (duplicates_ignored = $(field "$s2" duplicates_ignored))" \
      test "$(field "$s2" duplicates_ignored)" -eq 0
    check "t2: cells finished before the cancel were never leased again: $(dbq unchanged "$WORK/t2.snap" "$db")" \
      dbq unchanged "$WORK/t2.snap" "$db"
    if w=$(dbq workers "$db"); then
      read -r nworkers nresults names <<<"$w"
      check "t2: one stored result per cell ($nresults results)" test "$nresults" -eq "$total"
      # Both workers of the first job finished cells, and so did the resubmitted job. Not "all
      # 4": when the cancel lands late, the few cells left can all go to the resumed job's
      # first worker (a lease carries seconds of work) before its second one has connected.
      has() { case " $names " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
      first_job_worked() { has "slurm-$j-1" && has "slurm-$j-2"; }
      resumed_worked() { case " $names " in *" slurm-$j2-"*) return 0 ;; *) return 1 ;; esac; }
      check "t2: both worker tasks of the first job finished cells ($nworkers: $names)" first_job_worked
      check "t2: the resubmitted job's workers finished cells ($names)" resumed_worked
    else
      bad "t2: cannot read the cells of $db"
    fi
    [ "$FAIL" -eq "$F0" ] || { show_log "$WORK/t2a-$j.out"; show_log "$WORK/t2b-$j2.out"; }
  else
    bad "t2: the first run never finished a cell"
    show_log "$WORK/t2a-$j.out"
  fi
fi

# ---- 3. scontrol requeue mid-way ----------------------------------------------------------------
if wants 3; then
  F0=$FAIL # this test's logs are shown only when one of its own checks fails
  log "test 3: requeue a running study job"
  db="$WORK/t3/study.db"
  j=$(submit t3 3 "$RESUME" "$db") || fatal "t3: sbatch refused the job"
  if wait_done_at_least "$db" 1 "$j" 120; then
    total=$(cells_total_of "$(status "$db")")
    wait_done_at_least "$db" $((total / 4)) "$j" 120 || true
    scontrol requeue "$j"
    # A requeued job waits for a begin time; release it at once.
    wait_state "$j" PENDING 60 || true
    wait_nodes_settled 60 || log "t3: a node is still completing after 60 s: $(sinfo -h -o '%N %T')"
    done1=$(field "$(status "$db")" cells_done)
    dbq snap "$db" "$WORK/t3.snap" >/dev/null || bad "t3: cannot snapshot $db"
    scontrol update JobId="$j" StartTime=now
    t=$SECONDS
    r=$(wait_final "$j" 240) || true
    log "job $j requeued at $done1 of $total cells: $r after $((SECONDS - t)) s"
    check "t3: the requeued job COMPLETED 0:0 (got $r)" test "$r" = "COMPLETED 0:0"
    [ "$r" = "COMPLETED 0:0" ] || scontrol show job "$j" | sed 's/^/    /'
    check "t3: Slurm restarted it once (Restarts=$(job_field "$j" Restarts))" test "$(job_field "$j" Restarts)" -eq 1
    check "t3: the requeued start resumed the database (log has '(restart 1)' then 'resuming')" \
      awk '/\(restart 1\)/ {r = 1} r && /resuming/ {found = 1} END {exit !found}' "$WORK/t3-$j.out"
    s=$(status "$db")
    complete_and_clean "$s" t3
    check "t3: no finished cell recomputed and resubmitted (duplicates_ignored = $(field "$s" duplicates_ignored))" \
      test "$(field "$s" duplicates_ignored)" -eq 0
    check "t3: cells finished before the requeue were never leased again: $(dbq unchanged "$WORK/t3.snap" "$db")" \
      dbq unchanged "$WORK/t3.snap" "$db"
    [ "$FAIL" -eq "$F0" ] || show_log "$WORK/t3-$j.out" 60
  else
    bad "t3: the job never finished a cell"
    show_log "$WORK/t3-$j.out"
  fi
fi

# ---- 4. SIGTERM one worker mid-cell; attach a worker array to finish ------------------------------
if wants 4; then
  F0=$FAIL # this test's logs are shown only when one of its own checks fails
  log "test 4: SIGTERM the only worker mid-cell, then attach a worker array"
  db="$WORK/t4/study.db"
  j=$(submit t4 2 "$RESUME" "$db") || fatal "t4: sbatch refused the job"
  if wait_done_at_least "$db" 1 "$j" 120; then
    total=$(cells_total_of "$(status "$db")")
    # The worker is global task 1 of step 0; `scontrol listpids` names its PID exactly.
    pid=$(scontrol listpids "$j.0" 2>/dev/null | awk '$5 == 1 {print $1}' | head -n 1)
    s0=$(status "$db")
    leased0=$(field "$s0" cells_leased)
    if [ -n "$pid" ] && kill -TERM "$pid"; then
      log "sent SIGTERM to worker pid $pid holding $leased0 leased cell(s); $(field "$s0" cells_done) of $total done"
      check "t4: the worker held leased cells when signalled (leased = $leased0)" test "$leased0" -gt 0
      t=$SECONDS
      while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - t)) -lt 60 ]; do sleep 0.1; done
      check "t4: the worker exited within 60 s of SIGTERM (took $((SECONDS - t)) s)" test "$((SECONDS - t))" -lt 60
      sleep 1
      s1=$(status "$db")
      # With no other worker, nothing may stay leased: every cell it held was committed or handed back.
      check "t4: no cell left leased after the drain (leased = $(field "$s1" cells_leased))" \
        test "$(field "$s1" cells_leased)" -eq 0
      check "t4: no cell lost or failed: done + pending == total ($(field "$s1" cells_done) + $(field "$s1" cells_pending) == $total)" \
        test $(($(field "$s1" cells_done) + $(field "$s1" cells_pending))) -eq "$total" -a "$(field "$s1" cells_failed)" -eq 0
      # --kill-on-bad-exit would have ended the step had the worker exited non-zero.
      check "t4: the drained worker exited 0 (the coordinator job still runs: $(job_field "$j" JobState))" \
        test "$(job_field "$j" JobState)" = RUNNING
      a=$(sbatch "${SBATCH_COMMON[@]}" --array=1-2 --output="$WORK/t4w-%A_%a.out" \
        deploy/slurm/taustar-workers.sbatch "$db") || fatal "t4: sbatch refused the worker array"
      a=${a%%;*}
      echo "$a" >>"$WORK/jobs"
      t=$SECONDS
      r=$(wait_final "$j" 240) || true
      log "coordinator job $j: $r after the array $a ran for $((SECONDS - t)) s"
      check "t4: the coordinator job COMPLETED 0:0 once the array finished the study (got $r)" test "$r" = "COMPLETED 0:0"
      for k in 1 2; do
        ra=$(wait_final "${a}_$k" 60) || true
        check "t4: worker array task ${a}_$k COMPLETED 0:0 (got $ra)" test "$ra" = "COMPLETED 0:0"
      done
      s=$(status "$db")
      complete_and_clean "$s" t4
      check "t4: no duplicate result (duplicates_ignored = $(field "$s" duplicates_ignored))" \
        test "$(field "$s" duplicates_ignored)" -eq 0
      [ "$FAIL" -eq "$F0" ] || { show_log "$WORK/t4-$j.out" 60; for f in "$WORK"/t4w-*.out; do show_log "$f"; done; }
    else
      bad "t4: could not find the worker's pid (scontrol listpids $j.0)"
      scontrol listpids "$j.0" || true
    fi
  else
    bad "t4: the job never finished a cell"
    show_log "$WORK/t4-$j.out"
  fi
fi

# ---- 5. taustar diagnose as a batch job ---------------------------------------------------------
if wants 5; then
  F0=$FAIL # this test's logs are shown only when one of its own checks fails
  log "test 5: diagnose a Potts model file with taustar-diagnose.sbatch"
  mkdir -p "$WORK/t5"
  # A 6-site, 3-letter model in adabmDCA's format (couplings ~ N(0, 0.6²), fields ~ N(0, 0.8²)).
  python3 - "$WORK/t5/model.dat" <<'PY'
import random
import sys

random.seed(5)
n, letters = 6, "ABC"
with open(sys.argv[1], "w") as f:
    for i in range(n):
        for j in range(i + 1, n):
            for a in letters:
                for b in letters:
                    f.write(f"J {i} {j} {a} {b} {random.gauss(0, 0.6):.6f}\n")
    for i in range(n):
        for a in letters:
            f.write(f"h {i} {a} {random.gauss(0, 0.8):.6f}\n")
PY
  flags=(--steps 1000 --tau "0.5,1,2" --seed 3)
  j=$(sbatch --parsable --overcommit --cpus-per-task=1 --output="$WORK/t5-%j.out" \
    --export="ALL,TAUSTAR_BIN_DIR=$BIN_DIR,TAUSTAR_ALPHABET=ABC" \
    deploy/slurm/taustar-diagnose.sbatch "$WORK/t5/model.dat" "$WORK/t5/out" -- "${flags[@]}") ||
    fatal "t5: sbatch refused the job"
  j=${j%%;*}
  echo "$j" >>"$WORK/jobs"
  r=$(wait_final "$j" 120) || true
  check "t5: the diagnose job COMPLETED 0:0 (got $r)" test "$r" = "COMPLETED 0:0"
  for f in diagnose.json diagnose.png diagnose.svg; do
    check "t5: $f written" test -s "$WORK/t5/out/$f"
  done
  check "t5: the diagnostics passed" grep -q '"mcmc_ok": true' "$WORK/t5/out/diagnose.json"
  # The same flags here: the same numbers (the job log holds the table).
  "$TAUSTAR" diagnose --model "$WORK/t5/model.dat" --alphabet ABC --out "$WORK/t5/here" "${flags[@]}" \
    >/dev/null 2>&1 || bad "t5: taustar diagnose failed outside Slurm"
  peak() { sed -n '/"heat_peak_tau"/,/}/p' "$1" | tr -d ' \n'; }
  check "t5: the batch job's C peak is the local run's ($(peak "$WORK/t5/out/diagnose.json"))" \
    test "$(peak "$WORK/t5/out/diagnose.json")" = "$(peak "$WORK/t5/here/diagnose.json")"
  [ "$FAIL" -eq "$F0" ] || show_log "$WORK/t5-$j.out"
fi

log "total $((SECONDS - T0)) s"
summary
[ "$FAIL" -eq 0 ]
