#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the sweep backend's tests and for trying
# `encoderlab sweep slurm` without a cluster: Debian's slurmctld, slurmd and munge, started
# directly (no systemd), localhost only, state wiped on every start.
#   scripts/slurm.sh start    install (apt, 8 packages) if missing, configure, start, warm up
#   scripts/slurm.sh stop     cancel every job, stop the daemons this script started
#   scripts/slurm.sh status   daemons and node state
# Needs root and apt (Debian 12 / Slurm 22.05; ../shared/SLURM.md has the facts behind each line).
# SLURM_LOCAL_CPUS=N advertises N CPUs (oversubscribes the node; default: the real count).
set -euo pipefail

STATE=/var/lib/encoderlab-slurm
CONF=/etc/slurm/slurm.conf
PIDS="$STATE/pids"

log() { echo "slurm.sh: $*" >&2; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null; then
    return
  fi
  log "installing slurmctld slurmd slurm-client munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
  local host cpus mem
  host=$(hostname -s)
  cpus=${SLURM_LOCAL_CPUS:-$(nproc)}
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm
  cat >"$CONF" <<EOF
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0
EnforcePartLimits=ALL
MinJobAge=600
KillWait=5
ReturnToService=2
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  install -d -o munge -g munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  # a munged that answers is kept; otherwise (none, or one still exiting) start ours
  if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 50); do
      munge -n >/dev/null 2>&1 && break
      sleep 0.1
    done
    pgrep -n -x munged >>"$PIDS"
  fi
  if ! munge -n >/dev/null 2>&1; then
    log "munged does not answer"
    return 1
  fi
}

wait_idle() {
  for _ in $(seq 1 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then return 0; fi
    sleep 0.1
  done
  log "the node did not become idle:"
  sinfo 2>&1 >&2 || true
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  return 1
}

warm_up() {
  [ "${SLURM_LOCAL_WARMUP:-1}" = 0 ] && return 0
  local id
  id=$(sbatch --parsable -o /dev/null -e /dev/null --wrap true | cut -d';' -f1)
  for _ in $(seq 1 200); do
    if [ -z "$(squeue -h -j "$id" 2>/dev/null)" ]; then
      if scontrol show job -o "$id" 2>/dev/null | grep -q 'JobState=COMPLETED'; then return 0; fi
      log "warm-up job $id did not complete:"
      scontrol show job -o "$id" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  log "warm-up job $id still queued after 20 s"
  return 1
}

stop() {
  if command -v scancel >/dev/null && [ -f "$PIDS" ]; then
    scancel --user=root >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
      [ -z "$(squeue -h 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  if [ -f "$PIDS" ]; then
    # slurmd, then slurmctld, then munged: the reverse of the start order
    for pid in $(tac "$PIDS"); do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $(tac "$PIDS"); do
      for _ in $(seq 1 50); do
        if ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then break; fi
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$PIDS"
  fi
}

start() {
  install_packages
  stop
  rm -rf "$STATE"
  mkdir -p "$STATE"
  : >"$PIDS"
  write_config
  start_munge
  slurmctld -i
  sleep 0.2
  cat "$STATE/slurmctld.pid" >>"$PIDS"
  slurmd
  sleep 0.2
  cat "$STATE/slurmd.pid" >>"$PIDS"
  if ! wait_idle || ! warm_up; then
    stop
    return 1
  fi
  log "running: $(sinfo -h -o '%n %T %c CPUs')"
}

status() {
  for d in munged slurmctld slurmd; do
    if pgrep -x "$d" >/dev/null; then echo "$d: running"; else echo "$d: stopped"; fi
  done
  sinfo 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
