#!/usr/bin/env bash
# Benchmark of the /userinfo hot path (SPEC §5): the daemon's throughput and p99 latency as ratios
# against a trivial actix-web handler answering a body of the same size, measured alternately in
# the same run (absolute figures on a shared 2-core machine are noise; ratios are not).
#
# Usage: tests/bench/run.sh [ROUNDS] [SECONDS]   (needs wrk: apt-get install wrk)
# Each round measures the daemon then the baseline; the ratios printed are the medians of the
# rounds' ratios, so one round disturbed by a neighbour on the shared machine does not move them.
# The daemon runs at LOG_LEVEL=warn unless LOG_LEVEL is set: the baseline logs nothing, and at
# info every request writes a JSON access-log line (LOG_LEVEL=info tests/bench/run.sh measures that).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-9}
seconds=${2:-5}
connections=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p e2e --bin e2e-auth0-client --bin bench-baseline
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

daemon_port=$(free_port)
DELAY_SHUTDOWN_SECONDS=0 LOG_LEVEL=${LOG_LEVEL:-warn} "$bin/e2e-auth0-client" demo --port "$daemon_port" >"$work/daemon.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$daemon_port/-/healthz"

# A session for the demo user; its access token is what the gateway would send.
token=$(curl -fs -X POST "http://127.0.0.1:$daemon_port/oauth/token" \
    --data-urlencode grant_type=password \
    --data-urlencode username=demo@example.com \
    --data-urlencode password=demo-password |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
userinfo="http://127.0.0.1:$daemon_port/userinfo"
bytes=$(curl -fs -H "Authorization: Bearer $token" "$userinfo" | wc -c)

base_port=$(free_port)
"$bin/bench-baseline" --port "$base_port" --body-bytes "$bytes" >"$work/baseline.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$base_port/userinfo"
baseline="http://127.0.0.1:$base_port/userinfo"

# wrk prints "Requests/sec: N" and, with --latency, a "99% Xms|us|s" line.
measure() {
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$1" >"$work/wrk.txt"
    python3 - "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text).groups()
p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if non2xx:
    sys.exit(f"{non2xx.group(1)} error answers during the run")
print(f"{rps:.0f} {p99_ms:.3f}")
PY
}

echo "body: $bytes bytes; $rounds rounds of ${seconds}s each, $connections connections, alternating"
printf '%-6s %-10s %12s %10s\n' round target req/s p99_ms
ratios=()
for round in $(seq "$rounds"); do
    # Which goes first alternates too, so neither side always runs on a machine the other warmed.
    if ((round % 2)); then
        read -r d_rps d_p99 < <(measure "$userinfo")
        read -r b_rps b_p99 < <(measure "$baseline")
    else
        read -r b_rps b_p99 < <(measure "$baseline")
        read -r d_rps d_p99 < <(measure "$userinfo")
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
