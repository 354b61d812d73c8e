# Shared by the /userinfo benchmarks (run.sh, plugins.sh, redis.sh); sourced, not run.
# Expects $work (a temporary folder), $seconds and $connections; keeps started PIDs in $pids,
# killed with $work removed on exit.

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for URL [TRIES]: until URL answers 2xx, TRIES times 0.1 s apart (default 100).
wait_for() { for _ in $(seq "${2:-100}"); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

# demo_token PORT [EMAIL PASSWORD]: an access token from that daemon's password grant (default
# the demo user), what a gateway would send.
demo_token() {
    curl -fs -X POST "http://127.0.0.1:$1/oauth/token" \
        --data-urlencode grant_type=password \
        --data-urlencode "username=${2:-demo@example.com}" \
        --data-urlencode "password=${3:-demo-password}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])'
}

# measure URL TOKEN: "req/s p99_ms" of wrk with that Bearer token; fails on any non-2xx answer.
measure() {
    taskset -c "${WRK_CPUS:-0-1}" wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $2" "$1" >"$work/wrk.txt"
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
