#!/usr/bin/env bash
# Benchmark of the /userinfo hot path (SPEC §5): the daemon's throughput and p99 latency as ratios
# against a trivial actix-web handler answering a body of the same size, measured alternately in
# the same run (absolute figures on a shared 2-core machine are noise; ratios are not).
#
# Usage: tests/bench/run.sh [ROUNDS] [SECONDS]   (needs wrk: apt-get install wrk)
# Each round measures the daemon then the baseline; the ratios printed are the medians of the
# rounds' ratios, so one round disturbed by a neighbour on the shared machine does not move them.
# The daemon runs at its default LOG_LEVEL=info unless LOG_LEVEL is set: every request writes its
# JSON access-log line, as in production (LOG_LEVEL=warn tests/bench/run.sh measures without it);
# the lines go to a file in a temporary folder. DAEMON_CPUS and WRK_CPUS pin the servers and wrk
# (taskset lists; DAEMON_CPUS=0 WRK_CPUS=1 keeps them off each other's core), default both cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-9}
seconds=${2:-5}
connections=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p e2e --bin e2e-auth0-client --bin bench-baseline
bin=target/release
work=$(mktemp -d)
. tests/bench/userinfo-lib.sh

daemon_port=$(free_port)
DELAY_SHUTDOWN_SECONDS=0 LOG_LEVEL=${LOG_LEVEL:-info} taskset -c "${DAEMON_CPUS:-0-1}" "$bin/e2e-auth0-client" demo --port "$daemon_port" >"$work/daemon.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$daemon_port/-/healthz"

# A session for the demo user; its access token is what the gateway would send.
token=$(demo_token "$daemon_port")
userinfo="http://127.0.0.1:$daemon_port/userinfo"
bytes=$(curl -fs -H "Authorization: Bearer $token" "$userinfo" | wc -c)

base_port=$(free_port)
taskset -c "${DAEMON_CPUS:-0-1}" "$bin/bench-baseline" --port "$base_port" --body-bytes "$bytes" >"$work/baseline.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$base_port/userinfo"
baseline="http://127.0.0.1:$base_port/userinfo"

echo "body: $bytes bytes; $rounds rounds of ${seconds}s each, $connections connections, alternating"
printf '%-6s %-10s %12s %10s\n' round target req/s p99_ms
ratios=()
for round in $(seq "$rounds"); do
    # Which goes first alternates too, so neither side always runs on a machine the other warmed.
    if ((round % 2)); then
        read -r d_rps d_p99 < <(measure "$userinfo" "$token")
        read -r b_rps b_p99 < <(measure "$baseline" "$token")
    else
        read -r b_rps b_p99 < <(measure "$baseline" "$token")
        read -r d_rps d_p99 < <(measure "$userinfo" "$token")
    fi
    printf '%-6s %-10s %12s %10s\n' "$round" daemon "$d_rps" "$d_p99" "$round" baseline "$b_rps" "$b_p99"
    ratios+=("$d_rps $b_rps $d_p99 $b_p99")
done
printf '%s\n' "${ratios[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
throughput = [d / b for d, b, _, _ in rows]
p99 = [d / b for _, _, d, b in rows]
print("userinfo throughput ratio (daemon / trivial handler): "
      f"{statistics.median(throughput):.2f} median, {min(throughput):.2f} to {max(throughput):.2f}")
print("userinfo p99 ratio (daemon / trivial handler): "
      f"{statistics.median(p99):.2f} median, {min(p99):.2f} to {max(p99):.2f}")
'
