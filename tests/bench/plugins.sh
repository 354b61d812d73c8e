#!/usr/bin/env bash
# Benchmark of /userinfo with a plugin on the hot path (SPEC §9): the same demo daemon with and
# without `groups-to-permissions` loaded, measured alternately in the same run; prints the
# throughput and p99 ratios (with plugin / without). A plugin's `custom_claims` runs once per
# session and token (its body is kept with the cached session), so the ratio should stay near 1;
# the requirement is that it never halves the throughput.
#
# Usage: tests/bench/plugins.sh [ROUNDS] [SECONDS]   (needs wrk: apt-get install wrk)
# Extra environment for both daemons (a Redis store, say) can be passed as DAEMON_ENV="K=V K2=V2".
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-9}
seconds=${2:-5}
connections=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p e2e --bin e2e-auth0-client
cargo build --release -q -p groups-to-permissions
bin=target/release
library=$(pwd)/$bin/libgroups_to_permissions.so
work=$(mktemp -d)
. tests/bench/userinfo-lib.sh

# start NAME [ENV...]: a demo daemon; sets $port.
start() {
    local name=$1; shift
    port=$(free_port)
    # shellcheck disable=SC2086
    env DELAY_SHUTDOWN_SECONDS=0 LOG_LEVEL="${LOG_LEVEL:-warn}" ${DAEMON_ENV:-} "$@" \
        "$bin/e2e-auth0-client" demo --port "$port" >"$work/$name.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$port/-/healthz"
}

start plain
plain_port=$port
plain_token=$(demo_token "$plain_port")
start plugin "AUTH0_CLIENT__PLUGINS=[{\"path\": \"$library\", \"config\": {\"permissions\": {\"users\": [\"profile:read\", \"orders:read\"], \"admin\": [\"users:read\", \"users:write\"]}}}]"
plugin_port=$port
plugin_token=$(demo_token "$plugin_port")
body=$(curl -fs -H "Authorization: Bearer $plugin_token" "http://127.0.0.1:$plugin_port/userinfo")
grep -q '"permissions":\["orders:read","profile:read"\]' <<<"$body" ||
    { echo "the plugin's claim is missing from /userinfo: $body" >&2; exit 1; }
echo "plain body: $(curl -fs -H "Authorization: Bearer $plain_token" "http://127.0.0.1:$plain_port/userinfo" | wc -c) bytes; with the plugin: ${#body} bytes"

echo "$rounds rounds of ${seconds}s each, $connections connections, alternating"
printf '%-6s %-10s %12s %10s\n' round target req/s p99_ms
ratios=()
for round in $(seq "$rounds"); do
    if ((round % 2)); then
        read -r g_rps g_p99 < <(measure "http://127.0.0.1:$plugin_port/userinfo" "$plugin_token")
        read -r p_rps p_p99 < <(measure "http://127.0.0.1:$plain_port/userinfo" "$plain_token")
    else
        read -r p_rps p_p99 < <(measure "http://127.0.0.1:$plain_port/userinfo" "$plain_token")
        read -r g_rps g_p99 < <(measure "http://127.0.0.1:$plugin_port/userinfo" "$plugin_token")
    fi
    printf '%-6s %-10s %12s %10s\n' "$round" plugin "$g_rps" "$g_p99" "$round" plain "$p_rps" "$p_p99"
    ratios+=("$g_rps $p_rps $g_p99 $p_p99")
done
printf '%s\n' "${ratios[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
throughput = [g / p for g, p, _, _ in rows]
p99 = [g / p for _, _, g, p in rows]
print("userinfo throughput ratio (groups-to-permissions / no plugin): "
      f"{statistics.median(throughput):.2f} median, {min(throughput):.2f} to {max(throughput):.2f}")
print("userinfo p99 ratio (groups-to-permissions / no plugin): "
      f"{statistics.median(p99):.2f} median, {min(p99):.2f} to {max(p99):.2f}")
if statistics.median(throughput) < 0.5:
    sys.exit("a plugin on the hot path halved /userinfo throughput")
'
curl -fs "http://127.0.0.1:$plugin_port/-/metrics" | grep '^auth0_client_plugin_calls_total' || true
