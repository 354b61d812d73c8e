#!/usr/bin/env bash
# schemathesis holds the OpenAPI contract (issue 12): it reads `/documentation/json` from
# `auth0-client demo` and runs every check against every operation: no 5xx, answers that conform to
# the document (status, content type, body, headers), 405 with `Allow` for methods a route does
# not have, schema-valid requests accepted (save the 4xx the config lists), schema-violating ones
# refused. Fixed seed, bounded examples (schemathesis.toml). Exits non-zero on any failure.
#
#   bash tests/schemathesis/run.sh                 # .venv and the debug binary (built if stale)
#   SCHEMATHESIS_VENV=/tmp/venv AUTH0_CLIENT_BIN=target/release/auth0-client bash tests/schemathesis/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/schemathesis
version=4.32.5
venv=${SCHEMATHESIS_VENV:-$PWD/.venv}
bin=${AUTH0_CLIENT_BIN:-}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$version" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

if [ -z "$bin" ]; then
    # The debug binary, brought up to date (nothing to do right after the test build).
    cargo build --quiet -p auth0-client --bin auth0-client
    bin=target/debug/auth0-client
fi

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
work=$(mktemp -d)
"$bin" demo --port "$port" >"$work/demo.log" 2>&1 &
demo=$!
cleanup() {
    kill "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Wait for the daemon (at most 30 s), then log the demo user in for the session routes.
"$venv/bin/python" - "$base" "$demo" <<'PY'
import json, os, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 30
while True:
    try:
        with urllib.request.urlopen(base + "/-/healthz", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("auth0-client demo exited before answering")
    if time.time() > deadline:
        sys.exit("auth0-client demo did not answer /-/healthz within 30 s")
    time.sleep(0.2)
PY
token=$("$venv/bin/python" - "$base" <<'PY'
import json, sys, urllib.parse, urllib.request
base = sys.argv[1]
body = urllib.parse.urlencode({"grant_type": "password", "username": "demo@example.com", "password": "demo-password"}).encode()
with urllib.request.urlopen(urllib.request.Request(base + "/oauth/token", data=body), timeout=10) as r:
    print(json.load(r)["accessToken"])
PY
)
export AUTH0_CLIENT_ACCESS_TOKEN="$token"

set +e
"$venv/bin/st" --config-file "$here/schemathesis.toml" run "$base/documentation/json" \
    --checks all --no-color --report junit,har --report-dir "${SCHEMATHESIS_REPORT_DIR:-target/schemathesis}" \
    2>&1 | tee "$work/st.out"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 0 ]; then
    # A plain closing line, as the SDK check prints: the cases schemathesis generated and passed.
    passed=$(grep -Eo '[0-9]+ passed' "$work/st.out" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)
    echo "schemathesis: ${passed} passed, 0 failed"
fi
if [ "$status" -ne 0 ]; then
    echo "schemathesis failed (exit $status); the demo daemon's log:" >&2
    grep -E '"level":"(ERROR|WARN)"' "$work/demo.log" | tail -n 40 >&2 || true
fi
exit "$status"
