#!/usr/bin/env bash
# Start a real Slurm cluster on this one machine, for deploy/ci/slurm-test.sh (the end-to-end
# test of deploy/slurm/). Written for Debian 12 (slurm 22.05, no systemd), run as root.
# Idempotent: re-running while the daemons are alive only rewrites slurm.conf (same content).
# Install first:  apt-get update && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
# Stop with deploy/ci/slurm-down.sh: it kills by the PIDs recorded in $SLURM_CI_DIR/pids,
# never by process name.
#
# Knobs (env):
#   SLURM_CI_DIR=/tmp/slurm-ci   state, spool, logs, pid list
#   SLURM_CI_NODES=1             >1: emulate N nodes c1..cN = N slurmd on this host (ports 17001..);
#                                slurm-test.sh uses 2, so one allocation can span two nodes
#   SLURM_CI_CPUS=<real>         CPUs per node; more than the real count is allowed
#                                (config_overrides), so a study job and a worker array fit
#                                side by side on a 2-core machine
set -euo pipefail

SLURM_CI_DIR=${SLURM_CI_DIR:-/tmp/slurm-ci}
NODES=${SLURM_CI_NODES:-1}
CONF=/etc/slurm/slurm.conf          # default path, so sinfo/sbatch/srun need no SLURM_CONF
PIDS="$SLURM_CI_DIR/pids"
HOST=$(hostname -s)

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { if [ -f "$PIDS" ]; then awk -v n="$1" '$1==n{print $2}' "$PIDS" | tail -1; fi; }
record() { echo "$1 $2" >>"$PIDS"; }

for b in munged mungekey munge unmunge slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || { echo "missing $b: apt-get install -y slurmctld slurmd slurm-client munge" >&2; exit 1; }
done
mkdir -p "$SLURM_CI_DIR"/{state,spool,log} /etc/slurm
touch "$PIDS"

# The short hostname must resolve (slurmctld checks SlurmctldHost against it).
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >>/etc/hosts

# ---- munge ------------------------------------------------------------------
# Dirs normally made by systemd-tmpfiles; no systemd here, so make them. munged refuses
# group/world-writable dirs and a key not owned by its user (0400/0600 munge:munge).
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
if ! alive "$(pid_of munged)"; then
  # -F: foreground, so $! is munged itself (setpriv execs; runuser/su would fork)
  setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F </dev/null \
    >>"$SLURM_CI_DIR/log/munged.out" 2>&1 &
  record munged $!
  for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n </dev/null | unmunge >/dev/null || { echo "munged not answering; see $SLURM_CI_DIR/log/munged.out" >&2; exit 1; }
fi

# ---- slurm.conf ---------------------------------------------------------------
# Topology from slurmd -C (else slurmd logs "Node reconfigured socket/core boundaries").
# RealMemory under the reading, else the node drains with "Low RealMemory".
HW=$(slurmd -C | head -1)
get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$HW"; }
REAL_CPUS=$(get CPUs); MEM=$(( $(get RealMemory) * 90 / 100 / NODES ))
CPUS=${SLURM_CI_CPUS:-$REAL_CPUS}
if [ "$CPUS" = "$REAL_CPUS" ]; then
  TOPO="CPUs=$CPUS Boards=$(get Boards) SocketsPerBoard=$(get SocketsPerBoard) CoresPerSocket=$(get CoresPerSocket) ThreadsPerCore=$(get ThreadsPerCore)"
  OVERRIDES=""
else
  TOPO="CPUs=$CPUS"; OVERRIDES="SlurmdParameters=config_overrides"   # trust slurm.conf, not the hardware
fi
if [ "$NODES" -eq 1 ]; then
  NODELINES="NodeName=$HOST NodeAddr=127.0.0.1 $TOPO RealMemory=$MEM State=UNKNOWN"
  NODENAMES=("$HOST")
else
  NODELINES=""; NODENAMES=()
  for i in $(seq "$NODES"); do
    NODELINES+="NodeName=c$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((17000 + i)) $TOPO RealMemory=$MEM State=UNKNOWN"$'\n'
    NODENAMES+=("c$i")
  done
fi
cat >"$CONF.new" <<EOF
# written by taustar deploy/ci/slurm-up.sh
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# hetjobs are started only by the backfill pass (default every 30 s)
SchedulerParameters=bf_interval=1
EnforcePartLimits=ALL
ReturnToService=2
$OVERRIDES
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_CI_DIR/state
SlurmdSpoolDir=$SLURM_CI_DIR/spool/%n
SlurmctldPidFile=$SLURM_CI_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_CI_DIR/slurmd-%n.pid
SlurmctldLogFile=$SLURM_CI_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_CI_DIR/log/slurmd-%n.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
$NODELINES
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.new" "$CONF"

# ---- daemons ------------------------------------------------------------------
if ! alive "$(pid_of slurmctld)"; then
  # -D: foreground (so $! is the daemon); -c: drop old job state; -i: ignore unreadable state
  slurmctld -D -c -i </dev/null >>"$SLURM_CI_DIR/log/slurmctld.out" 2>&1 &
  record slurmctld $!
fi
for n in "${NODENAMES[@]}"; do
  mkdir -p "$SLURM_CI_DIR/spool/$n"
  if ! alive "$(pid_of "slurmd:$n")"; then
    slurmd -D -N "$n" </dev/null >>"$SLURM_CI_DIR/log/slurmd-$n.out" 2>&1 &
    record "slurmd:$n" $!
  fi
done

# ---- wait until every node is idle -------------------------------------------------
for i in $(seq 120); do
  states=$(sinfo -h -N -o '%N %t' 2>/dev/null || true)
  if [ -n "$states" ] && [ "$(grep -cE ' (idle|mix|alloc)$' <<<"$states")" -eq "$NODES" ]; then
    echo "slurm up after ~$((i / 2))s, $NODES node(s)"; sinfo -N; exit 0
  fi
  # a node left DOWN/DRAIN from an earlier run: put it back
  while read -r n; do
    scontrol update NodeName="$n" State=RESUME 2>/dev/null || true
  done < <(awk '$2 ~ /^(down|drain|drng|fail)/{print $1}' <<<"$states")
  sleep 0.5
done
echo "slurm did not come up; logs in $SLURM_CI_DIR/log" >&2
sinfo -N -l >&2 || true
tail -n 20 "$SLURM_CI_DIR"/log/* >&2 || true
exit 1
