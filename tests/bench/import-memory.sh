#!/usr/bin/env bash
# What an import costs the daemon in memory and on disk (issue 20): a release `auth0-client
# serve` on the embedded store (sled, `sessions.sledCacheBytes` at its default unless
# SLED_CACHE_BYTES is set) against a separate `auth0-emulator` process (jobSeconds 0; the debug
# build: its speed is not measured), so the daemon's RSS is the daemon's alone. Reports:
# - idle RSS, measured after a warm-up (one small batch imported and completed, 2 s settled);
# - for each of two ~18 MB imports (JSON form, 17,000 users, 36 parts): the peak RSS (VmHWM)
#   up to 30 s after its 202 (its parts being sent meanwhile), as (peak - idle) / file, and the
#   RSS 30 s after the 202, minus idle;
# - growth of the session folder over the two imports, as a ratio to one file;
# - a burst of 10,000 stalled connections (each sent a request line, headers announcing a 64 KiB
#   body and 16 KiB of it, then nothing), held 5 s, then closed: the RSS while held and 30 s after.
# Any environment given (MALLOC_ARENA_MAX=2, say) reaches the daemon: run it once per candidate.
# DAEMON_BIN=path measures another build of the daemon (an allocator candidate) instead.
#
# Usage: tests/bench/import-memory.sh   (python3 and curl)
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ -n ${DAEMON_BIN:-} ]] || cargo build --release -q -p auth0-client --bin auth0-client
cargo build -q -p auth0-emulator --bin auth0-emulator
target=${CARGO_TARGET_DIR:-target}
daemon_bin=${DAEMON_BIN:-$target/release/auth0-client}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

eport=$(free_port)
"$target/debug/auth0-emulator" --port "$eport" >"$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$eport/.well-known/jwks.json" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs -X PATCH "http://127.0.0.1:$eport/__emulator/settings" -H 'Content-Type: application/json' -d '{"jobSeconds": 0}' >/dev/null

port=$(free_port)
python3 - "$eport" "$work/config.json" "${SLED_CACHE_BYTES:-}" <<'PY'
import json, sys
base = f"http://127.0.0.1:{sys.argv[1]}"
config = {
    "clients": {"api": {"auth0Url": base, "clientId": "demo-login-client", "clientSecret": "demo-login-secret",
                        "redirectUrl": "https://app.example/callback", "scopes": ["offline_access"],
                        "supportedConnections": ["Username-Password-Authentication"]}},
    "defaultClient": "api",
    "managementClient": {"auth0Url": base, "clientId": "demo-management-client", "clientSecret": "demo-management-secret",
                         "supportedConnectionsMap": {"Username-Password-Authentication": {"connectionId": "con_DemoConnection01"}},
                         "defaultManagementConnectionName": "Username-Password-Authentication"},
    "server": {"bind": "127.0.0.1", "importBodyLimitBytes": 20 * 1024 * 1024},
    "jobs": {"pollIntervalMs": 100, "maxPollIntervalMs": 200},
}
if sys.argv[3]:
    config["sessions"] = {"sledCacheBytes": int(sys.argv[3])}
json.dump(config, open(sys.argv[2], "w"))
PY
HTTP_PORT=$port LOG_LEVEL=warn AUTH0_CLIENT__SESSIONS__PATH="$work/sessions" \
    "$daemon_bin" serve --config "$work/config.json" >"$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/-/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$port" "$daemon" "$work/sessions" <<'PY'
import http.client, json, os, sys, time
port, pid, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MB = 1024 * 1024

def memory():
    fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

def folder_bytes():
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)

def call(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, body, {"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None

def users(n, prefix):
    return [{"email": f"{prefix}{i}@example.com", "user_metadata": {"bio": "b" * 1000}} for i in range(n)]

def import_and_wait(body, wait=True):
    status, batch = call("POST", "/users/import", body)
    assert status == 202, (status, batch)
    for _ in range(1200 if wait else 0):
        _, now = call("GET", f"/users/import/status/{batch['id']}")
        if now["status"] == "completed":
            return
        time.sleep(0.1)
    if wait:
        sys.exit(f"{batch['id']} did not complete")

import_and_wait(json.dumps({"users": users(600, "warm")}).encode())
time.sleep(2)
idle, _ = memory()
start_folder = folder_bytes()
print(f"idle RSS after a warm-up: {idle / MB:.1f} MB; folder {start_folder / MB:.1f} MB")
file = 0
for round in range(2):
    body = json.dumps({"users": users(17_000, f"big{round}-")}).encode()
    file = len(body)
    import_and_wait(body, wait=False)
    del body
    time.sleep(30)
    rss, peak = memory()
    print(f"import {round + 1}: file {file / MB:.1f} MB, peak RSS {peak / MB:.1f} MB "
          f"(idle + {(peak - idle) / file:.2f} x the file), 30 s after its 202 {rss / MB:.1f} MB "
          f"(idle + {(rss - idle) / MB:.1f} MB)")
growth = folder_bytes() - start_folder
print(f"folder growth over two imports: {growth / MB:.1f} MB ({growth / file:.2f} x one file)")

import resource, socket
resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))
time.sleep(30)
before, _ = memory()
stalled = []
head = (f"POST /users/import HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {64 * 1024}\r\n\r\n").encode() + b"[" * (16 * 1024)
for _ in range(10_000):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    try:
        s.send(head)
    except BlockingIOError:
        pass
    stalled.append(s)
time.sleep(5)
held, _ = memory()
for s in stalled:
    s.close()
time.sleep(30)
after, _ = memory()
print(f"burst: RSS {before / MB:.1f} MB before, {held / MB:.1f} MB with 10,000 stalled connections, "
      f"{after / MB:.1f} MB 30 s after they closed (before + {(after - before) / MB:.1f} MB)")
PY
