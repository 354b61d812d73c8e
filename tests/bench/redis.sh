#!/usr/bin/env bash
# Benchmark of /userinfo on the Redis store against the same daemon on sled (issue 13): one config,
# one emulator, one redis-server, and three daemons measured in turn in every round, in a rotating
# order, beside a trivial actix-web handler answering a body of the same size:
#   sled          the embedded store (its read cache is authoritative: one process writes it)
#   redis-cache   Redis with the read cache: a copy is served after reading the record's revision
#   redis-nocache Redis with `sessions.cacheBytes: 0`: every request reads the session record
# Ratios are medians over the rounds (absolute figures on a shared 2-core machine are noise).
#
# Usage: tests/bench/redis.sh [ROUNDS] [SECONDS]   (needs wrk and redis-server)
# DAEMON=path/to/e2e-auth0-client measures that build instead of the working tree's.
# PLUGIN=path/to/libgroups_to_permissions.so adds the two Redis variants and sled with that plugin
# loaded (config {"permissions": {"admin": ["users:read", "users:write"]}}).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-7}
seconds=${2:-5}
connections=${CONNECTIONS:-32}
for tool in wrk redis-server; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }
done

cargo build --release -q -p e2e --bin e2e-auth0-client --bin bench-baseline
cargo build --release -q -p auth0-emulator
bin=target/release
daemon=${DAEMON:-$bin/e2e-auth0-client}
work=$(mktemp -d)
. tests/bench/userinfo-lib.sh

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
emulator_port=$(free_port)
"$bin/auth0-emulator" --port "$emulator_port" >"$work/emulator.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$emulator_port/.well-known/jwks.json"

# config NAME CACHE_BYTES [PLUGIN]: the daemon's settings, the demo tenant's login client.
config() {
    python3 - "$work/$1.json" "$emulator_port" "$2" "${3:-}" <<'PY'
import json, sys
path, port, cache, plugin = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ns = "https://demo.example/"
config = {
    "clients": {"api": {
        "auth0Url": f"http://127.0.0.1:{port}",
        "clientId": "demo-login-client",
        "clientSecret": "demo-login-secret",
        "redirectUrl": "http://127.0.0.1/callback",
        "scopes": ["offline_access", "profile", "email"],
        "supportedConnections": ["Username-Password-Authentication"],
    }},
    "defaultClient": "api",
    "customClaimsNamespaces": [ns + "app_metadata", ns + "user_metadata"],
    "server": {"bind": "127.0.0.1"},
    "sessions": {"cacheBytes": cache},
}
if plugin:
    config["plugins"] = [{"path": plugin, "config": {"permissions": {"admin": ["users:read", "users:write"]}}}]
json.dump(config, open(path, "w"))
PY
}

# start NAME STORE CACHE_BYTES [PLUGIN]: sets url[NAME] and token[NAME] to a fresh session on that
# daemon. Run in this shell, never in a $(...) or <(...) subshell, so the daemon's PID reaches $pids
# and the exit trap stops it.
start() {
    local name=$1 store=$2 port
    port=$(free_port)
    config "$name" "$3" "${4:-}"
    if [ "$store" = redis ]; then
        env REDIS_HOSTS="127.0.0.1:$redis_port" SESSION_SCOPE="$name" HTTP_PORT="$port" \
            DELAY_SHUTDOWN_SECONDS=0 LOG_LEVEL=${LOG_LEVEL:-warn} \
            "$daemon" --config "$work/$name.json" >"$work/$name.log" 2>&1 &
    else
        env AUTH0_CLIENT__SESSIONS__PATH="$work/$name-sled" HTTP_PORT="$port" \
            DELAY_SHUTDOWN_SECONDS=0 LOG_LEVEL=${LOG_LEVEL:-warn} \
            "$daemon" --config "$work/$name.json" >"$work/$name.log" 2>&1 &
    fi
    pids+=($!)
    wait_for "http://127.0.0.1:$port/-/ready"
    url[$name]="http://127.0.0.1:$port/userinfo"
    token[$name]=$(demo_token "$port" admin@example.com admin-password)
}

names=(sled redis-cache redis-nocache)
declare -A url token
start sled sled 67108864
start redis-cache redis 67108864
start redis-nocache redis 0
if [ -n "${PLUGIN:-}" ]; then
    for variant in sled redis-cache redis-nocache; do
        name="$variant+plugin"
        case $variant in
            sled) start "$name" sled 67108864 "$PLUGIN" ;;
            redis-cache) start "$name" redis 67108864 "$PLUGIN" ;;
            redis-nocache) start "$name" redis 0 "$PLUGIN" ;;
        esac
        names+=("$name")
    done
fi
bytes=$(curl -fs -H "Authorization: Bearer ${token[sled]}" "${url[sled]}" | wc -c)
base_port=$(free_port)
"$bin/bench-baseline" --port "$base_port" --body-bytes "$bytes" >"$work/baseline.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$base_port/userinfo"
url[baseline]="http://127.0.0.1:$base_port/userinfo"
token[baseline]=none
names+=(baseline)

echo "body: $bytes bytes; $rounds rounds of ${seconds}s each, $connections connections, order rotating"
printf '%-6s %-22s %12s %10s\n' round target req/s p99_ms
count=${#names[@]}
for round in $(seq "$rounds"); do
    for i in $(seq 0 $((count - 1))); do
        name=${names[$(((i + round) % count))]}
        read -r rps p99 < <(measure "${url[$name]}" "${token[$name]}")
        printf '%-6s %-22s %12s %10s\n' "$round" "$name" "$rps" "$p99" | tee -a "$work/rows.txt"
    done
done
python3 - "$work/rows.txt" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    round_, name, rps, p99 = line.split()
    rows[round_][name] = (float(rps), float(p99))
names = [n for n in next(iter(rows.values())) if n != "baseline"]
def ratios(num, den, field):
    return [r[num][field] / r[den][field] for r in rows.values()]
def show(label, values):
    print(f"{label}: {statistics.median(values):.2f} median, {min(values):.2f} to {max(values):.2f}")
for name in sorted(names):
    show(f"{name:22} throughput / trivial handler", ratios(name, "baseline", 0))
    show(f"{name:22} p99 / trivial handler", ratios(name, "baseline", 1))
for name in sorted(names):
    if name != "sled":
        show(f"{name:22} throughput / sled", ratios(name, "sled", 0))
PY
