#!/usr/bin/env bash
# Stops the Slurm started by up.sh in ROOT: cancels every job, then stops slurmd, slurmctld and munged by
# their own PID files (SIGTERM, bounded wait, SIGKILL), and checks that none of them (nor a job step of
# this root) is left. Safe to run twice, or on a root whose start failed half-way. Exits non-zero only
# when something could not be stopped. The files under ROOT (logs, jobcomp.txt) are kept.
#   usage: scripts/slurm/down.sh ROOT
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
slurm_root_init "${1:-}"
export SLURM_CONF="$SLURM_CONF_FILE"
failed=0

# 1. Jobs first: running jobs survive slurmd, so cancel them while slurmctld and slurmd can still act.
if pid_of "$CTLD_PID" slurmctld >/dev/null && [ -r "$SLURM_CONF_FILE" ]; then
  mapfile -t jobs < <(timeout 10 squeue -h -o %i 2>/dev/null)
  if [ "${#jobs[@]}" -gt 0 ]; then
    slurm_log "cancelling ${#jobs[@]} job record(s)"
    timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
    # Up to 30 s for the steps to end (KillWait=10 s for a job that ignores SIGTERM); with slurmd dead
    # nothing can end them this way, and step 2 deals with what is left.
    waits=150; pid_of "$SLURMD_PID" slurmd >/dev/null || waits=10
    for ((i = 0; i < waits; i++)); do
      [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
    left="$(timeout 10 squeue -h -o '%i %T' 2>/dev/null | tr '\n' ' ')"
    [ -n "$left" ] && slurm_log "WARNING: jobs still listed after scancel: $left"
  fi
fi

# 2. The daemons, compute side first.
if pid="$(pid_of "$SLURMD_PID" slurmd)"; then
  slurm_log "stopping slurmd (pid $pid)"; stop_pids 20 slurmd "$pid" || failed=1
fi
# Left only when slurmd died under running jobs: end the jobs' processes, then their step daemons.
mapfile -t jobs_left < <(job_pids | sort -un)
mapfile -t steps_left < <(stepd_pids)
if [ "${#jobs_left[@]}" -gt 0 ] || [ "${#steps_left[@]}" -gt 0 ]; then
  slurm_log "ending leftover job processes (${jobs_left[*]:-none}) and slurmstepd (${steps_left[*]:-none})"
  [ "${#jobs_left[@]}" = 0 ] || stop_pids 3 "job process" "${jobs_left[@]}" || failed=1
  for pid in "${steps_left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [ "${#steps_left[@]}" = 0 ] || stop_pids 2 slurmstepd "${steps_left[@]}" || failed=1
fi
if pid="$(pid_of "$CTLD_PID" slurmctld)"; then
  slurm_log "stopping slurmctld (pid $pid)"; stop_pids 20 slurmctld "$pid" || failed=1
fi
if pid="$(pid_of "$MUNGE_PID" munged)"; then
  slurm_log "stopping munged (pid $pid)"; stop_pids 20 munged "$pid" || failed=1
fi

# 3. Check.
for d in "$SLURMD_PID:slurmd" "$CTLD_PID:slurmctld" "$MUNGE_PID:munged"; do
  if pid="$(pid_of "${d%%:*}" "${d##*:}")"; then slurm_log "ERROR: ${d##*:} (pid $pid) is still running"; failed=1; fi
done
left="$( (stepd_pids; job_pids) | tr '\n' ' ')"
if [ -n "$left" ]; then slurm_log "ERROR: slurmstepd or job processes still running: $left"; failed=1; fi
if [ "$failed" = 0 ]; then slurm_log "stopped (root $SR)"; fi
exit "$failed"
