#!/usr/bin/env bash
# Space figures of the sled session store (issue 10): the daemon's memory per session, and whether
# the folder keeps growing and an idle daemon keeps writing once expired records are swept.
#
# Usage: tests/bench/store-space.sh [REV]   (default: the working tree; about 8 minutes)
# Needs wrk (apt-get update && apt-get install -y wrk). A REV is built once in
# target/bench-baseline/<rev>/ (a detached worktree with its own target dir) and reused.
#
# a. A daemon with an empty folder; password logins (a random one of $USERS seeded users, 64 by
#    default) at $LOGIN_CONNECTIONS (64) connections, in chunks of $CHUNK (10000) answered logins up
#    to $SESSIONS (100000). After each chunk: the daemon's VmRSS (/proc/PID/status) and the
#    folder's size (du -sb). Every login creates a session.
# b. Another daemon with an empty folder and sessions.stateTtlSeconds=$STATE_TTL (30): $STATES
#    (100000) anonymous GET /authorize at $AUTHORIZE_CONNECTIONS (16) connections, each storing a
#    login state; then a wait for the states to expire and the sweeper (every 30 s) to remove them
#    (the last state's expiry + $SWEEP_WAIT, 45 s); then the folder's size and the bytes the
#    daemon has written (/proc/PID/io write_bytes) every $SAMPLE_SECONDS (30) s, $SAMPLES (6)
#    times: an idle daemon should stop writing and its folder stop growing.
#
# Every wrk run is bounded in time. A daemon whose store wedges (sled's flush_async bug: 503 after
# 2 s, or no answer) ends its part with a line saying so after the chunk that wedged it.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-}
sessions=${SESSIONS:-100000}
chunk=${CHUNK:-10000}
login_connections=${LOGIN_CONNECTIONS:-64}
states=${STATES:-100000}
authorize_connections=${AUTHORIZE_CONNECTIONS:-16}
state_ttl=${STATE_TTL:-30}
sweep_wait=${SWEEP_WAIT:-45}
sample_seconds=${SAMPLE_SECONDS:-30}
samples=${SAMPLES:-6}

# shellcheck source=tests/bench/store-lib.sh
source tests/bench/store-lib.sh
require_tools wrk curl python3 timeout

if [[ -n $rev ]]; then
    bin=$(build_rev "$rev")
    name=$(git rev-parse --short=12 "$rev^{commit}")
else
    bin=$(build_tree)
    name="working tree ($(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- daemon emulator Cargo.lock || echo ', with changes'))"
fi
start_emulator "$bin/auth0-emulator"
write_wrk_script
echo "daemon: $name; $bench_users users"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
folder_bytes() { du -sb "$1" | awk '{ print $1 }'; }
write_bytes() { awk '/^write_bytes:/ { print $2 }' "/proc/$1/io"; }
mb() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:.1f}')" "$1"; }

# run_chunk MODE CONNECTIONS COUNT: COUNT answers (bounded at 10 s per 1000 + 30 s); sets
# chunk_good, chunk_failed (other answers, timeouts, socket errors) and chunk_wedged (yes/no).
run_chunk() {
    local mode=$1 connections=$2 count=$3 good bad timeouts sockerr secs stalled expect=200
    [[ $mode == authorize ]] && expect=302
    read -r good bad timeouts sockerr secs stalled < <(run_wrk "$mode" "$daemon_url" "$connections" \
        $((count / 100 + 30)) "$count")
    chunk_good=$good
    chunk_failed=$((bad + timeouts + sockerr))
    chunk_secs=$secs
    chunk_wedged=no
    [[ $(probe "$mode" "$daemon_url") == "$expect" ]] || chunk_wedged=yes
}

echo
echo "a. memory per session ($login_connections connections)"
write_config "$emulator_url" "$work/config.json"
start_daemon space "$bin"
rss0=$(rss_kb "$daemon_pid")
printf '%-9s %8s %9s %10s %12s %10s %s\n' sessions logins/s failed "VmRSS MB" "RSS/session" "folder MB" wedged
printf '%-9s %8s %9s %10s %12s %10s %s\n' 0 - - "$(mb $((rss0 * 1024)))" - "$(mb "$(folder_bytes "$daemon_dir")")" no
created=0
while ((created < sessions)); do
    run_chunk login "$login_connections" $((sessions - created < chunk ? sessions - created : chunk))
    created=$((created + chunk_good))
    sleep 1
    rss=$(rss_kb "$daemon_pid")
    printf '%-9s %8s %9s %10s %12s %10s %s\n' "$created" \
        "$(python3 -c "import sys; g,s=map(float,sys.argv[1:]); print(f'{g/s:.0f}' if s else '-')" "$chunk_good" "$chunk_secs")" \
        "$chunk_failed" "$(mb $((rss * 1024)))" \
        "$(python3 -c "import sys; r,r0,n=map(int,sys.argv[1:]); print(f'{(r-r0)*1024/n:.0f} B' if n else '-')" "$rss" "$rss0" "$created")" \
        "$(mb "$(folder_bytes "$daemon_dir")")" "$chunk_wedged"
    if [[ $chunk_wedged == yes ]] || ((chunk_good == 0)); then
        echo "the daemon's store wedged (or answered no login) after $created sessions: part a stops here"
        break
    fi
done
stop_daemon "$daemon_pid"
wait "$daemon_wrapper" || true
forget_pid "$daemon_wrapper"
echo "stopped by SIG${stop_how^^}"
rm -rf "$daemon_dir"

echo
echo "b. idle writes after $states expired /authorize states (stateTtlSeconds $state_ttl, $authorize_connections connections)"
# The caps on logins in progress (1,000 per address by default) would answer most of one
# address's states 429 without writing: raised, so the figures are the store's.
write_config "$emulator_url" "$work/config.json" "\"stateTtlSeconds\": $state_ttl, \"maxPendingLogins\": 100000000, \"maxPendingLoginsPerIp\": 100000000"
LOG_LEVEL=warn,auth0_client::actors::sessions=debug start_daemon idle "$bin"
printf '%-34s %10s %16s\n' moment "folder MB" "written MB"
printf '%-34s %10s %16s\n' "empty" "$(mb "$(folder_bytes "$daemon_dir")")" "$(mb "$(write_bytes "$daemon_pid")")"
made=0
wedged=no
deadline=$((SECONDS + 300))
while ((made < states && SECONDS < deadline)); do
    run_chunk authorize "$authorize_connections" $((states - made < 20000 ? states - made : 20000))
    made=$((made + chunk_good))
    if [[ $chunk_wedged == yes ]] || ((chunk_good == 0)); then
        wedged=yes
        break
    fi
done
last_state=$SECONDS
printf '%-34s %10s %16s\n' "$made states stored" "$(mb "$(folder_bytes "$daemon_dir")")" "$(mb "$(write_bytes "$daemon_pid")")"
if [[ $wedged == yes ]]; then
    echo "the daemon's store wedged after $made states (the sweep and idle figures below still apply to them)"
fi
sleep $((last_state + state_ttl + sweep_wait - SECONDS > 0 ? last_state + state_ttl + sweep_wait - SECONDS : 0))
sweeps=$(grep -c 'swept expired records' "$daemon_log" || true)
printf '%-34s %10s %16s\n' "expired, swept ($sweeps sweep logs)" "$(mb "$(folder_bytes "$daemon_dir")")" "$(mb "$(write_bytes "$daemon_pid")")"
echo
echo "idle, every ${sample_seconds}s:"
printf '%-8s %10s %16s %14s\n' seconds "folder MB" "written MB" "write KB/s"
previous=$(write_bytes "$daemon_pid")
printf '%-8s %10s %16s %14s\n' 0 "$(mb "$(folder_bytes "$daemon_dir")")" "$(mb "$previous")" -
for i in $(seq "$samples"); do
    sleep "$sample_seconds"
    now=$(write_bytes "$daemon_pid")
    printf '%-8s %10s %16s %14s\n' $((i * sample_seconds)) "$(mb "$(folder_bytes "$daemon_dir")")" "$(mb "$now")" \
        "$(python3 -c "import sys; a,b,s=map(int,sys.argv[1:]); print(f'{(b-a)/1e3/s:.1f}')" "$previous" "$now" "$sample_seconds")"
    previous=$now
done
echo "sweep log lines in all: $(grep -c 'swept expired records' "$daemon_log" || true)"
stop_daemon "$daemon_pid"
wait "$daemon_wrapper" || true
forget_pid "$daemon_wrapper"
echo "stopped by SIG${stop_how^^}"
