# shellcheck shell=bash disable=SC2034
# Shared by up.sh, down.sh and selftest.sh (sourced, not run). Layout of a Slurm root ROOT:
#   ROOT/slurm.conf                      the configuration (SLURM_CONF points here)
#   ROOT/munge/munge.key, munge.socket.2, munged.pid, munged.seed
#   ROOT/run/slurmctld.pid, slurmd.pid
#   ROOT/log/munged.log, slurmctld.log, slurmd.log, jobcomp.txt (one line per finished job or array task)
#   ROOT/state (slurmctld state), ROOT/spool (slurmd spool)

slurm_log() { echo "[slurm] $*" >&2; }

# slurm_root_init ROOT: checks the path and sets SR (the absolute root) and the derived paths.
slurm_root_init() {
  if [ -z "${1:-}" ]; then echo "usage: $0 ROOT   (a scratch folder for this Slurm's keys, config, state and logs)" >&2; exit 2; fi
  case "$1" in /*) SR="$1" ;; *) SR="$PWD/$1" ;; esac
  SR="${SR%/}"
  # slurm.conf cannot quote paths, and Unix socket paths are limited to 107 bytes (slurmd's step sockets
  # are ROOT/spool/localhost_JOBID.STEPID), so keep the root short and plain.
  if [[ ! "$SR" =~ ^[A-Za-z0-9._/+-]+$ ]]; then
    echo "[slurm] ROOT must only contain letters, digits and . _ / + - (got '$SR')" >&2; exit 2
  fi
  if [ "${#SR}" -gt 64 ]; then
    echo "[slurm] ROOT is too long (${#SR} > 64 characters; Unix socket paths under it must stay short): $SR" >&2; exit 2
  fi
  SLURM_CONF_FILE="$SR/slurm.conf"
  MUNGE_DIR="$SR/munge"
  MUNGE_SOCKET="$MUNGE_DIR/munge.socket.2"
  MUNGE_PID="$MUNGE_DIR/munged.pid"
  CTLD_PID="$SR/run/slurmctld.pid"
  SLURMD_PID="$SR/run/slurmd.pid"
  LOG_DIR="$SR/log"
}

# proc_state PID: prints the state letter of PID (R, S, Z, ...) from /proc/PID/stat; fails if there is none.
# (Builtins only: down.sh scans every process, and a fork per process is slow.)
proc_state() {
  local line
  { read -r line < "/proc/$1/stat"; } 2>/dev/null || return 1
  line="${line##*) }"
  printf '%s\n' "${line%% *}"
}

# pid_gone PID: true when PID no longer exists or is a zombie (a daemon that exited lingers as a zombie
# until PID 1 reaps it, so kill -0 alone is not enough).
pid_gone() {
  local state
  state="$(proc_state "$1")" || return 0
  case "$state" in Z|X|x|"") return 0 ;; esac
  return 1
}

# pid_of PIDFILE NAME: prints the PID in PIDFILE if that process is alive (not a zombie) and is NAME.
pid_of() {
  local pid="" comm=""
  { read -r pid < "$1"; } 2>/dev/null || [ -n "$pid" ] || return 1
  pid="${pid//[^0-9]/}"
  [ -n "$pid" ] || return 1
  { read -r comm < "/proc/$pid/comm"; } 2>/dev/null || return 1
  [ "$comm" = "$2" ] || return 1          # a recycled PID is not ours
  pid_gone "$pid" && return 1
  echo "$pid"
}

# stop_pids SECONDS LABEL PID...: SIGTERM to all, wait (bounded) for all, then SIGKILL whatever is left and
# wait again (5 s). Fails if one survives.
stop_pids() {
  local secs="$1" label="$2" pid i left; local -a pids; shift 2
  for pid in "$@"; do pid_gone "$pid" || kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i <= secs * 5; i++)); do
    left=""; for pid in "$@"; do pid_gone "$pid" || left="$left $pid"; done
    [ -z "$left" ] && return 0
    (( i < secs * 5 )) && sleep 0.2
  done
  slurm_log "$label (pid$left) still running ${secs} s after SIGTERM: sending SIGKILL"
  for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 25; i++)); do
    read -ra pids <<< "$left"; left=""; for pid in "${pids[@]}"; do pid_gone "$pid" || left="$left $pid"; done
    [ -z "$left" ] && return 0
    sleep 0.2
  done
  slurm_log "ERROR: $label (pid$left) still running after SIGKILL"
  return 1
}

# stepd_pids: slurmstepd processes serving this root (found through their Unix sockets under ROOT/spool).
stepd_pids() {
  local inodes p comm fd link
  inodes=" $(awk -v pre="$SR/spool/" 'index($8, pre) == 1 { printf "%s ", $7 }' /proc/net/unix 2>/dev/null)"
  [ -n "${inodes// /}" ] || return 0
  for p in /proc/[0-9]*; do
    { read -r comm < "$p/comm"; } 2>/dev/null || continue
    [ "$comm" = slurmstepd ] || continue
    pid_gone "${p#/proc/}" && continue
    for fd in "$p"/fd/*; do
      link="$(readlink "$fd" 2>/dev/null)" || continue
      case "$link" in socket:\[*\])
        if [[ "$inodes" == *" ${link//[^0-9]/} "* ]]; then echo "${p#/proc/}"; break; fi ;;
      esac
    done
  done
}

# job_pids: processes of jobs of this root that would outlive their step daemon (they are only left when
# slurmd died before scancel could reach them): the children of the slurmstepds of this root and every
# process running a batch script from ROOT/spool, with all their descendants. Never the stepds themselves.
job_pids() {
  local p pid line seeds queue kids depth=0
  local -a args
  local -A children=()
  seeds="$(stepd_pids | tr '\n' ' ')"
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    { read -r line < "$p/stat"; } 2>/dev/null || continue
    line="${line##*) }"; line="${line#* }"              # now starts with the parent's PID
    children[${line%% *}]+=" $pid"
    { mapfile -d '' -t args < "$p/cmdline"; } 2>/dev/null || continue
    [[ "${args[*]:-}" == *"$SR/spool/job"* ]] && seeds="$seeds $pid"
  done
  queue="$seeds"
  while [ -n "${queue// /}" ] && (( depth++ < 64 )); do   # the parent links form a tree; bounded anyway
    kids=""
    for pid in $queue; do kids="$kids ${children[$pid]:-}"; done
    for pid in $kids; do pid_gone "$pid" || echo "$pid"; done
    queue="$kids"
  done
  for pid in $seeds; do
    { read -r line < "/proc/$pid/comm"; } 2>/dev/null || continue
    [ "$line" = slurmstepd ] || pid_gone "$pid" || echo "$pid"
  done
}

# log_tails: the end of each daemon log of this root, for error messages.
log_tails() {
  local f
  for f in "$LOG_DIR/munged.log" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" \
           "$LOG_DIR/munged.out" "$LOG_DIR/slurmctld.out" "$LOG_DIR/slurmd.out"; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f -----" >&2
    tail -n "${1:-15}" "$f" >&2
  done
}
