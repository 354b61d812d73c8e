#!/usr/bin/env bash
# The CPU work of one /userinfo request, counted instead of timed: each daemon binary runs `demo`
# under callgrind, answers 300 warm-up requests, then N requests on one keep-alive connection
# (Bearer), and the user-space instructions of every thread over those N are divided by N.
# Deterministic to about 0.5% between runs, so it shows what a change to the hot path costs where
# wall-clock ratios on this shared machine move by 20%. Kernel work (the loopback TCP, the log
# file's writes) is not counted: tests/bench/run.sh measures the whole.
#
# Usage: tests/bench/instructions.sh N NAME=BINARY...   (needs valgrind: apt-get install valgrind)
#   cargo build --release -p e2e --bin e2e-auth0-client
#   tests/bench/instructions.sh 2000 new=target/release/e2e-auth0-client old=/tmp/old/e2e-auth0-client
# LOG_LEVEL (default info, the daemon's own default) applies to every daemon; KEEP=DIR keeps each
# callgrind profile there (callgrind_annotate --inclusive=yes DIR/NAME.out).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=$1
shift
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
work=$(mktemp -d)
. tests/bench/userinfo-lib.sh

# hit PORT TOKEN COUNT: COUNT requests on one keep-alive connection, each answered 200.
hit() {
    python3 - "$@" <<'PY'
import http.client, sys
port, token, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    connection.request("GET", "/userinfo", headers={"Authorization": "Bearer " + token})
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
PY
}

for spec in "$@"; do
    name=${spec%%=*}
    bin=${spec#*=}
    port=$(free_port)
    DELAY_SHUTDOWN_SECONDS=0 LOG_LEVEL=${LOG_LEVEL:-info} valgrind --tool=callgrind \
        --callgrind-out-file="$work/$name.%p" "$bin" demo --port "$port" \
        >"$work/$name.log" 2>"$work/$name.valgrind" &
    daemon=$!
    pids+=("$daemon")
    # Under valgrind the daemon starts in seconds, not milliseconds.
    wait_for "http://127.0.0.1:$port/-/healthz" 1200
    token=$(demo_token "$port")
    hit "$port" "$token" 300
    sleep 1
    callgrind_control -z "$daemon" >/dev/null 2>&1
    hit "$port" "$token" "$n"
    sleep 1
    callgrind_control -d "$daemon" >/dev/null 2>&1
    sleep 1
    # The dump written on request holds what was counted since the zeroing.
    dump=$(ls -t "$work/$name".* | grep -v '\.log$\|\.valgrind$' | head -1)
    instructions=$(grep -E '^(totals|summary):' "$dump" | head -1 | awk '{print $2}')
    python3 -c "print(f'$name: {$instructions / $n / 1000:.1f} k instructions per request ($n requests)')"
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        cp "$dump" "$KEEP/$name.out"
    fi
    kill "$daemon"
    wait "$daemon" 2>/dev/null || true
done
