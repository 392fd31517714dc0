#!/usr/bin/env bash
# Starts a real one-node Slurm (slurmctld + slurmd on 127.0.0.1, munge authentication) whose keys,
# config, state and logs all live under ROOT, and prints the environment a caller needs, as export lines:
#   env_lines="$(scripts/slurm/up.sh "$ROOT")" && eval "$env_lines"     # then sbatch / squeue / scontrol
# Installs Debian's slurmctld, slurmd, slurm-client and munge with apt when they are missing (needs root).
# Idempotent: daemons of ROOT that already run are kept. Progress and errors go to stderr; on failure the
# daemons' log tails are printed, the exit code is 1, and when this run had started a daemon the Slurm
# of ROOT is stopped again (down.sh), so a failed start leaves nothing running.
# Stop it with scripts/slurm/down.sh ROOT. Knob: SLURM_UP_TIMEOUT (seconds to wait for the node, 60).
set -euo pipefail
umask 022
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
slurm_root_init "${1:-}"
timeout_s="${SLURM_UP_TIMEOUT:-60}"
started=0   # set once this run has started a daemon: a failure after that stops them again

die() {
  slurm_log "ERROR: $*"
  log_tails 20
  if [ "$started" = 1 ]; then
    slurm_log "stopping the Slurm of $SR again (down.sh)"
    bash "$here/down.sh" "$SR" >&2 || true
  fi
  exit 1
}

# 1. Packages.
need=(slurmctld slurmd sbatch squeue scontrol sinfo scancel munged mungekey munge)
missing=()
for b in "${need[@]}"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "Slurm is not installed (missing: ${missing[*]}) and installing it with apt needs root; run as root or install slurmctld slurmd slurm-client munge first"
  command -v apt-get >/dev/null 2>&1 || die "Slurm is not installed (missing: ${missing[*]}) and there is no apt-get to install it"
  mkdir -p "$SR/log"
  apt_log="$SR/log/apt.log"
  slurm_log "installing slurmctld slurmd slurm-client munge with apt (log: $apt_log)"
  t0=$SECONDS
  # The packages must not start system-wide daemons: where no policy-rc.d forbids it, add one for the install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  fi
  apt_ok=1
  apt-get -o DPkg::Lock::Timeout=120 update > "$apt_log" 2>&1 || apt_ok=0
  if [ "$apt_ok" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends \
      slurmctld slurmd slurm-client munge >> "$apt_log" 2>&1 || apt_ok=0
  fi
  if trap -p EXIT | grep -q policy-rc.d; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  if [ "$apt_ok" = 0 ]; then
    tail -n 20 "$apt_log" >&2
    die "apt-get could not install slurmctld slurmd slurm-client munge (full log: $apt_log)"
  fi
  for b in "${need[@]}"; do command -v "$b" >/dev/null 2>&1 || die "apt installed the packages but '$b' is still missing"; done
  slurm_log "installed $(slurmctld -V 2>/dev/null) and $(munged --version 2>/dev/null | cut -d' ' -f1) in $((SECONDS - t0)) s"
fi

# 2. Folders and the munge key. munged requires execute permission for everyone on every folder of its
# socket's path (700 fails with "execute permissions for all required"), and no group/other write access.
mkdir -p "$SR" "$MUNGE_DIR" "$SR/run" "$SR/log" "$SR/state" "$SR/spool"
chmod 755 "$SR" "$MUNGE_DIR" "$SR/run" "$SR/log"
chmod 700 "$SR/state" "$SR/spool"
d="$SR"
while d="$(dirname "$d")"; [ "$d" != / ]; do
  perm="$(stat -c %a "$d")"
  (( 8#$perm & 1 )) || die "folder $d (mode $perm) is not searchable by everyone, which munged requires for its socket under $SR: choose another ROOT (e.g. one made by mktemp -d)"
done
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
  mungekey --create --keyfile="$MUNGE_DIR/munge.key" || die "mungekey could not create $MUNGE_DIR/munge.key"
fi
chmod 600 "$MUNGE_DIR/munge.key"

# 3. slurm.conf, with this machine's CPUs and memory as slurmd itself reports them.
hw="$(slurmd -C 2>/dev/null | head -n 1)" || true
[[ "$hw" == NodeName=*CPUs=*RealMemory=* ]] || die "'slurmd -C' did not print the node's hardware (got: '$hw')"
hw="${hw#NodeName=* }"          # keep CPUs=... Boards=... ... RealMemory=..., drop the host name
conf_new="$(cat <<EOF
# Written by scripts/slurm/up.sh: a one-node Slurm on 127.0.0.1, everything under $SR.
ClusterName=hatts
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=10 (default 120) lets a requeued job start again after about 15 s instead of over 2 minutes.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$SR/state
SlurmdSpoolDir=$SR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
# No accounting daemon: sacct does not work; squeue -t all (finished jobs stay MinJobAge=300 s) and the
# jobcomp file (one line per finished job or array task, with JobState and ExitCode) do.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.txt
# Cores are the consumable resource (one per task unless asked); memory is checked but not reserved.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=2
ReturnToService=2
# scancel / time limits: SIGTERM, then SIGKILL 10 s later (default 30 s).
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)"
if [ "$(cat "$SLURM_CONF_FILE" 2>/dev/null || true)" != "$conf_new" ]; then
  if pid_of "$CTLD_PID" slurmctld >/dev/null || pid_of "$SLURMD_PID" slurmd >/dev/null; then
    slurm_log "slurm.conf changed while Slurm runs in $SR: restarting it"
    bash "$here/down.sh" "$SR" >&2 || die "could not stop the running Slurm of $SR to apply the new slurm.conf"
  fi
  printf '%s\n' "$conf_new" > "$SLURM_CONF_FILE.tmp" && mv "$SLURM_CONF_FILE.tmp" "$SLURM_CONF_FILE"
fi
export SLURM_CONF="$SLURM_CONF_FILE"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_pid PIDFILE NAME: after a daemon forked into the background, wait (10 s at most) for its PID file.
wait_pid() {
  local i
  for ((i = 0; i < 50; i++)); do pid_of "$1" "$2" >/dev/null && return 0; sleep 0.2; done
  return 1
}

# 4. munged.
if ! pid_of "$MUNGE_PID" munged >/dev/null; then
  slurm_log "starting munged"
  started=1
  munged --key-file="$MUNGE_DIR/munge.key" --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_PID" \
    --log-file="$LOG_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
    < /dev/null >> "$LOG_DIR/munged.out" 2>&1 || die "munged failed to start"
  wait_pid "$MUNGE_PID" munged || die "munged did not stay up"
fi
if ! cred="$(munge -S "$MUNGE_SOCKET" -n 2>&1)" || ! unmunge -S "$MUNGE_SOCKET" <<< "$cred" > /dev/null 2>&1; then
  die "munge does not answer on $MUNGE_SOCKET ($cred)"
fi

# 5. slurmctld and slurmd. Their stdio goes to files: a daemon holding the caller's stdout would make
# "$(up.sh ROOT)" wait forever.
if ! pid_of "$CTLD_PID" slurmctld >/dev/null; then
  port_busy 6817 && die "port 6817 (slurmctld) is already in use: another Slurm runs on this machine (stop it with down.sh on its root)"
  slurm_log "starting slurmctld"
  started=1
  slurmctld -c -f "$SLURM_CONF_FILE" < /dev/null >> "$LOG_DIR/slurmctld.out" 2>&1 || die "slurmctld failed to start"
  wait_pid "$CTLD_PID" slurmctld || die "slurmctld did not stay up"
fi
if ! pid_of "$SLURMD_PID" slurmd >/dev/null; then
  port_busy 6818 && die "port 6818 (slurmd) is already in use: another Slurm runs on this machine (stop it with down.sh on its root)"
  slurm_log "starting slurmd"
  started=1
  slurmd -N localhost -f "$SLURM_CONF_FILE" < /dev/null >> "$LOG_DIR/slurmd.out" 2>&1 || die "slurmd failed to start"
  wait_pid "$SLURMD_PID" slurmd || die "slurmd did not stay up"
fi

# 6. Wait until the controller answers and the node takes jobs (idle; or busy when jobs already run).
t0=$SECONDS
while :; do
  ping="$(timeout 10 scontrol ping 2>&1 | head -n 1)" || true
  state="$(timeout 10 sinfo -h -n localhost -o %T 2>&1 | head -n 1)" || true
  if [[ "$ping" == *" is UP"* ]]; then
    case "$state" in idle|mixed|allocated|completing) break ;; esac
  fi
  for d in "$MUNGE_PID:munged" "$CTLD_PID:slurmctld" "$SLURMD_PID:slurmd"; do
    pid_of "${d%%:*}" "${d##*:}" >/dev/null || { die "${d##*:} stopped while waiting for the node"; }
  done
  (( SECONDS - t0 < timeout_s )) || { die "the node was not ready after ${timeout_s} s (scontrol ping: '$ping'; node state: '$state')"; }
  sleep 0.25
done
slurm_log "ready in $SR: node localhost $state ($(echo "$hw" | grep -o 'CPUs=[0-9]*') $(echo "$hw" | grep -o 'RealMemory=[0-9]*') MB)"

# 7. What the caller needs: SLURM_CONF (slurm.conf names the munge socket, so nothing else is required).
printf 'export SLURM_CONF=%q\n' "$SLURM_CONF_FILE"
