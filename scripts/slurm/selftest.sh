#!/usr/bin/env bash
# End-to-end check of up.sh / down.sh: start Slurm in ROOT, run a 4-task job array (each task writes a file
# and sleeps 2 s) to COMPLETED, requeue a running array task once (it must rerun with
# SLURM_RESTART_COUNT=1), validate the script with sbatch --test-only, stop Slurm and check that no daemon
# or job step of ROOT is left. Prints the time of each phase; exits non-zero on the first failure (Slurm is
# stopped in every case).
#   usage: scripts/slurm/selftest.sh ROOT        (ROOT: a fresh or reusable scratch folder, e.g. mktemp -d)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
slurm_root_init "${1:-}"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "[selftest] FAIL: $*" >&2; exit 1; }
say() { echo "[selftest] $*" >&2; }
T_START="$(now)"
on_exit() {
  local rc=$?
  bash "$here/down.sh" "$SR" > /dev/null 2>&1 || true
  [ "$rc" = 0 ] || echo "[selftest] FAIL (exit $rc); Slurm stopped; logs under $SR/log" >&2
}
trap on_exit EXIT

# task_states JOB: "ID STATE" per array task, finished ones included (no accounting here, so no sacct).
task_states() { squeue -h -t all -j "$1" -o '%i %T' 2>/dev/null | sort; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.25 s until it succeeds.
wait_for() {
  local secs="$1" what="$2" t0=$SECONDS; shift 2
  until "$@"; do
    (( SECONDS - t0 < secs )) || fail "$what: not reached within ${secs} s (last states: $(task_states "${JOB:-0}" | tr '\n' ' '))"
    sleep 0.25
  done
}

installed_before=yes; command -v slurmctld >/dev/null 2>&1 || installed_before=no

# 1. Start.
t="$(now)"
env_lines="$(bash "$here/up.sh" "$SR")" || fail "up.sh failed"
eval "$env_lines"
T_UP="$(since "$t")"
[ "$SLURM_CONF" = "$SR/slurm.conf" ] || fail "up.sh printed an unexpected environment: $env_lines"
say "up.sh: ${T_UP} s (packages installed before: $installed_before); $env_lines"

work="$SR/selftest"; rm -rf "$work"; mkdir -p "$work/array" "$work/requeue"
cat > "$work/job.sh" <<'EOF'
#!/bin/bash
#SBATCH --job-name=slurm-selftest
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --time=5
# One line per run of this array task; $LONG_TASK sleeps 120 s on its first run (to be requeued while it runs).
echo "task=$SLURM_ARRAY_TASK_ID restart=${SLURM_RESTART_COUNT:-0} job=$SLURM_ARRAY_JOB_ID" >> "$OUT/task_$SLURM_ARRAY_TASK_ID.txt"
if [ "$SLURM_ARRAY_TASK_ID" = "${LONG_TASK:-none}" ] && [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then sleep 120; else sleep 2; fi
EOF

# 2. sbatch --test-only: a valid request passes, an impossible one (more CPUs than the node has) fails.
t="$(now)"
out="$(sbatch --test-only "$work/job.sh" 2>&1)" || fail "sbatch --test-only rejected the job script: $out"
[[ "$out" == *"to start at"* ]] || fail "unexpected sbatch --test-only output: $out"
if out2="$(sbatch --test-only --cpus-per-task=4096 "$work/job.sh" 2>&1)"; then fail "sbatch --test-only accepted 4096 CPUs: $out2"; fi
say "sbatch --test-only: ok ($out) and rejects an impossible request ($out2) in $(since "$t") s"

# 3. A 4-task array to COMPLETED.
t="$(now)"
JOB="$(cd "$work" && OUT="$work/array" sbatch --parsable --array=0-3 -o "$work/array/slurm-%A_%a.out" job.sh)" \
  || fail "sbatch of the array failed"
JOB="${JOB%%;*}"
[[ "$JOB" =~ ^[0-9]+$ ]] || fail "sbatch --parsable printed '$JOB'"
all_completed() { [ "$(task_states "$JOB" | grep -c ' COMPLETED$')" = 4 ]; }
wait_for 60 "4 array tasks COMPLETED" all_completed
T_ARRAY="$(since "$t")"
for i in 0 1 2 3; do
  f="$work/array/task_$i.txt"
  [ "$(cat "$f" 2>/dev/null)" = "task=$i restart=0 job=$JOB" ] || fail "$f: expected 'task=$i restart=0 job=$JOB', got '$(cat "$f" 2>/dev/null)'"
done
n="$(grep -c "JobState=COMPLETED .*ArrayJobId=$JOB ArrayTaskId=[0-3] .*ExitCode=0:0" "$SR/log/jobcomp.txt" || true)"
[ "$n" = 4 ] || fail "jobcomp.txt has $n COMPLETED lines with exit 0 for array $JOB, expected 4"
say "array of 4 tasks COMPLETED in ${T_ARRAY} s: $(task_states "$JOB" | tr '\n' ' ')(files and jobcomp lines ok)"

# 4. Requeue a running array task once: it must run again with SLURM_RESTART_COUNT=1.
t="$(now)"
JOB="$(cd "$work" && OUT="$work/requeue" LONG_TASK=0 sbatch --parsable --array=0-1 -o "$work/requeue/slurm-%A_%a.out" job.sh)" \
  || fail "sbatch of the requeue array failed"
JOB="${JOB%%;*}"
first_run_started() { grep -qx "task=0 restart=0 job=$JOB" "$work/requeue/task_0.txt" 2>/dev/null \
  && task_states "$JOB" | grep -qx "${JOB}_0 RUNNING"; }
wait_for 30 "task ${JOB}_0 running" first_run_started
scontrol requeue "${JOB}_0" || fail "scontrol requeue ${JOB}_0 failed"
T_REQ0="$(now)"
both_completed() { [ "$(task_states "$JOB" | grep -c ' COMPLETED$')" = 2 ]; }
wait_for 90 "requeued task rerun to COMPLETED" both_completed
T_REQUEUE="$(since "$T_REQ0")"
got="$(cat "$work/requeue/task_0.txt")"
[ "$got" = "$(printf 'task=0 restart=0 job=%s\ntask=0 restart=1 job=%s' "$JOB" "$JOB")" ] \
  || fail "requeued task 0 should have run twice (restart=0, then restart=1); its file has: $(echo "$got" | tr '\n' '|')"
[ "$(cat "$work/requeue/task_1.txt")" = "task=1 restart=0 job=$JOB" ] || fail "task 1 of the requeue array ran $(wc -l < "$work/requeue/task_1.txt") times"
say "requeue: task ${JOB}_0 reran with SLURM_RESTART_COUNT=1 and COMPLETED ${T_REQUEUE} s after scontrol requeue (whole step $(since "$t") s)"

# 5. Stop, and check that nothing of this root is left running.
t="$(now)"
bash "$here/down.sh" "$SR" || fail "down.sh failed"
T_DOWN="$(since "$t")"
left=""
for p in /proc/[0-9]*; do
  { read -r comm < "$p/comm"; } 2>/dev/null || continue
  case "$comm" in munged|slurmctld|slurmd|slurmstepd) ;; *) continue ;; esac
  pid_gone "${p#/proc/}" && continue
  { mapfile -d '' -t args < "$p/cmdline"; } 2>/dev/null || args=()
  if [ "$comm" = slurmstepd ] || [[ "${args[*]:-}" == *"$SR/"* ]]; then left="$left ${p#/proc/}($comm)"; fi
done
jobs_left="$(job_pids | tr '\n' ' ')"
[ -z "${jobs_left// /}" ] || left="$left job processes: $jobs_left"
[ -z "$left" ] || fail "processes left after down.sh:$left"
others="$(ps -eo pid=,stat=,comm= | awk '$3 ~ /^(munged|slurmctld|slurmd|slurmstepd)$/ && $2 !~ /^Z/' | tr '\n' ' ')"
[ -z "$others" ] || say "note: other munge/slurm processes (not of this root) run: $others"
say "down.sh: ${T_DOWN} s; no munged/slurmctld/slurmd/slurmstepd or job process of this root left"
echo "[selftest] PASS in $(since "$T_START") s: up ${T_UP} s (packages installed before: $installed_before), array ${T_ARRAY} s, requeue ${T_REQUEUE} s, down ${T_DOWN} s"
