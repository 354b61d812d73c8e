#!/usr/bin/env bash
# Benchmark of the import routes (SPEC §6) against `auth0-client demo` (release build, embedded
# emulator with jobSeconds 0): the median time of a whole import of one user (an Auth0 job plus
# the durable record), of the listing, and of a 1.5 MB import (parse, split into parts, one durable
# batch record), each as a ratio to `GET /-/healthz` measured in the same run.
#
# Usage: tests/bench/import.sh [REQUESTS]   (python3 and curl; no wrk needed)
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-40}

cargo build --release -q -p auth0-client --bin auth0-client
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG_LEVEL=warn target/release/auth0-client demo --port "$port" >"$work/demo.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/-/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
emulator=$(grep -o 'Auth0 emulator: http://[0-9.:]*' "$work/demo.log" | awk '{print $3}')
# Jobs complete at once, so Auth0's 2-active-jobs limit never refuses one.
curl -fs -X PATCH "$emulator/__emulator/settings" -H 'Content-Type: application/json' -d '{"jobSeconds": 0}' >/dev/null

python3 - "$port" "$requests" <<'PY'
import http.client, json, statistics, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])

def once(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port)
    t = time.perf_counter()
    c.request(method, path, body, headers or {})
    r = c.getresponse()
    r.read()
    elapsed = time.perf_counter() - t
    c.close()
    return r.status, elapsed

def median(method, path, body=None, headers=None, count=n):
    times, statuses = [], set()
    for _ in range(count):
        status, elapsed = once(method, path, body, headers)
        statuses.add(status)
        times.append(elapsed)
    return statistics.median(times), sorted(statuses)

json_body = {"Content-Type": "application/json"}
base, _ = median("GET", "/-/healthz")
one = json.dumps({"users": [{"email": "bench@example.com"}]})
big = json.dumps({"users": [{"email": f"bench{i}@example.com", "user_metadata": {"bio": "b" * 1000}} for i in range(1500)]})
rows = [
    ("import of 1 user (Auth0 job + durable record)", median("POST", "/users/import", one, json_body)),
    ("GET /users/import/jobs", median("GET", "/users/import/jobs")),
    (f"import of {len(big) / 1e6:.1f} MB (split + durable batch)", median("POST", "/users/import", big, json_body, max(5, n // 4))),
]
print(f"baseline GET /-/healthz: {base * 1e3:.2f} ms (median of {n})")
for name, (t, statuses) in rows:
    print(f"{name}: {t * 1e3:.2f} ms, {t / base:.1f} x the baseline, statuses {statuses}")
PY
