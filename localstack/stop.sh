#!/usr/bin/env bash
# Stops the LocalStack started by start.sh and everything it started: DynamoDB Local,
# Lambda bootstrap processes. Safe to run when nothing is running.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GRACE="${CAIRN_STOP_GRACE:-15}"

# "pid:starttime" of $1 and all its descendants (starttime guards against pid reuse).
process_tree() {
  ps -eo pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      keep[root] = 1; changed = 1
      while (changed) {
        changed = 0
        for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
      }
      for (p in keep) print p
    }' | while read -r p; do
      st="$(starttime "$p")" && echo "$p:$st"
    done
}
starttime() { awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }

# Live PIDs among a process_tree snapshot, the LocalStack session, and processes running
# from our FILESYSTEM_ROOT (DynamoDB Local gets its own session from LocalStack).
leftovers() {
  local entry p
  for entry in "${tree[@]}"; do
    p="${entry%%:*}"
    [[ "$(starttime "$p")" == "${entry#*:}" ]] && echo "$p"
  done
  [[ -n "$sid" ]] && ps -eo pid=,sid= | awk -v sid="$sid" '$2 == sid { print $1 }'
  # pattern via -f so that grep's own command line does not match
  grep -lsFf <(printf '%s\n' "$CAIRN_STATE/localstack/fs/") /proc/[0-9]*/cmdline | cut -d/ -f3
} 2>/dev/null

wait_gone() { # wait_gone SECONDS PID...
  local until=$((SECONDS + $1)); shift
  while ((SECONDS < until)); do
    local alive=0 p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.2
  done
  return 1
}

sid=""
tree=()
if [[ -s "$LS_PIDFILE" ]]; then
  sid="$(cat "$LS_PIDFILE")"
  if kill -0 "$sid" 2>/dev/null; then
    mapfile -t tree < <(process_tree "$sid")
    kill -TERM "$sid" 2>/dev/null || true
    if ! wait_gone "$GRACE" "$sid"; then
      note "LocalStack (pid $sid) ignored SIGTERM for ${GRACE}s; killing it"
      kill -KILL "$sid" 2>/dev/null || true
      wait_gone 5 "$sid" || die "could not kill LocalStack (pid $sid)"
    fi
  fi
fi

# Whatever LocalStack left behind (DynamoDB Local JVM, bootstraps, their children).
mapfile -t left < <(leftovers | sort -u)
if ((${#left[@]})); then
  kill -TERM "${left[@]}" 2>/dev/null || true
  wait_gone 3 "${left[@]}" || kill -KILL "${left[@]}" 2>/dev/null || true
fi

# Bootstrap process groups recorded by the executor (covers a LocalStack killed hard).
# A pid is only trusted if that process really is the recorded execution environment.
for pidfile in "$CAIRN_STATE"/lambda-pids/*.pid; do
  [[ -e "$pidfile" ]] || continue
  pgid="$(cat "$pidfile")"
  env_id="$(basename "$pidfile" .pid)"
  [[ "$pgid" =~ ^[0-9]+$ ]] || { rm -f "$pidfile"; continue; }
  # the leader may be gone while its children live on: check every member of the group
  for member in $(ps -eo pid=,pgid= | awk -v g="$pgid" '$2 == g { print $1 }'); do
    if grep -qsFxf <(printf 'LOCALSTACK_RUNTIME_ID=%s\n' "$env_id") \
        <(tr '\0' '\n' 2>/dev/null <"/proc/$member/environ"); then
      kill -KILL -- "-$pgid" 2>/dev/null || true
      break
    fi
  done
  rm -f "$pidfile"
done

sleep 0.2
mapfile -t left < <(leftovers | sort -u)
((${#left[@]} == 0)) || die "processes started by LocalStack are still alive: ${left[*]}"
rm -f "$LS_PIDFILE"
