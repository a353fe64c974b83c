#!/usr/bin/env bash
# Stop the local Slurm cluster that deploy/ci/slurm-up.sh started, by the PIDs it recorded in
# $SLURM_CI_DIR/pids (never by process name). Jobs still queued on that cluster are cancelled
# first. deploy/ci/slurm-test.sh calls it on exit when it was the one that started Slurm.
set -uo pipefail
SLURM_CI_DIR=${SLURM_CI_DIR:-/tmp/slurm-ci}
PIDS="$SLURM_CI_DIR/pids"
[ -s "$PIDS" ] || { echo "no $PIDS: nothing to stop"; exit 0; }

# cancel jobs first so slurmd/slurmstepd kill their job processes
if squeue -h -o %i 2>/dev/null | grep -q .; then
  mapfile -t jobs < <(squeue -h -o %A 2>/dev/null | sort -u)
  [ "${#jobs[@]}" -eq 0 ] || scancel --quiet --full "${jobs[@]}" 2>/dev/null || true
  for _ in $(seq 50); do squeue -h 2>/dev/null | grep -q . || break; sleep 0.2; done
fi
# reverse of start order: slurmd(s), slurmctld, munged
tac "$PIDS" | while read -r name pid; do
  kill -0 "$pid" 2>/dev/null || continue
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; echo "$name ($pid) killed"; else echo "$name ($pid) stopped"; fi
done
rm -f "$PIDS"
