#!/usr/bin/env bash
# The emulator's fidelity check: Auth0's own Python SDK (auth0-python 4.x) against a fresh emulator.
#
# Builds the emulator binary, starts it on a free port with seed.json, runs check.py, and stops it.
# The virtual environment is $AUTH0_SDK_VENV (.ci/run passes the one it made), else <repo>/.venv,
# created and filled with auth0-python 4.x when missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${AUTH0_SDK_VENV:-$root/.venv}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import auth0, sys; sys.exit(0 if auth0.__version__.startswith("4.") else 1)' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'auth0-python>=4,<5'
fi

cd "$root"
cargo build --quiet -p auth0-emulator --bin auth0-emulator
target_dir="$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
binary="$target_dir/debug/auth0-emulator"

log="$(mktemp -t auth0-emulator-sdk-check.XXXXXX)"
"$binary" --port 0 --seed "$here/seed.json" >"$log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

# The first line of the emulator's stdout is `listening on http://127.0.0.1:PORT`.
base=""
for _ in $(seq 1 100); do
    base="$(sed -n 's/^listening on //p' "$log" | head -n 1)"
    [ -n "$base" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the emulator exited before listening:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$base" ]; then
    echo "the emulator did not say where it listens within 10 s:" >&2
    cat "$log" >&2
    exit 1
fi

echo "auth0-python $("$venv/bin/python" -c 'import auth0; print(auth0.__version__)') against the emulator at $base"
if ! "$venv/bin/python" "$here/check.py" "$base"; then
    echo "--- emulator output" >&2
    cat "$log" >&2
    exit 1
fi
