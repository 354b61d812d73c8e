#!/usr/bin/env bash
# Password logins through the daemon against the emulator's own password-grant rate (issue 24):
# each round, at each number of connections in $CONNECTIONS ("16 64"), wrk posts for SECONDS
#   emulator   the password-realm grant straight to the release emulator's /oauth/token (the form
#              the daemon sends: client credentials, realm, scope, audience; a random one of
#              $USERS seeded users), and
#   daemon     the daemon's POST /oauth/token (password grant: it calls the emulator, verifies the
#              ID token, seals and stores the session and waits for its group commit),
# the side that goes first alternating. Only 200 answers count. Prints the medians of the
# rounds' daemon/emulator ratios with their range, the rates, and the durable writes each flush of
# the daemon's group commit carried (its /-/metrics counters over the daemon's runs).
#
# Usage: tests/bench/login.sh [ROUNDS] [SECONDS]   (default 5 rounds of 5 s; about 4 minutes)
# Needs wrk (apt-get update && apt-get install -y wrk). On this 2-core machine the emulator alone
# has both cores, while through the daemon the two share them.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
seconds=${2:-5}
connections=${CONNECTIONS:-16 64}

work=$(mktemp -d)
pids=()
cleanup() {
    local p
    exec 2>/dev/null
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# shellcheck source=tests/bench/store-lib.sh
source tests/bench/store-lib.sh
require_tools wrk curl python3

bin=$(build_tree)
start_emulator "$bin/auth0-emulator"
write_config "$emulator_url" "$work/config.json"
write_wrk_script
start_daemon login "$bin"

cat >"$work/grant.lua" <<LUA
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local threads = {}
function setup(thread) thread:set("id", #threads + 1); table.insert(threads, thread) end
function init(args)
    good, bad = 0, 0
    math.randomseed(id * 7919 + os.time())
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
    local body = string.format("grant_type=http%%3A%%2F%%2Fauth0.com%%2Foauth%%2Fgrant-type%%2Fpassword-realm"
        .. "&realm=$bench_connection&username=user%04d%%40bench.example&password=$bench_password"
        .. "&scope=openid%%20offline_access%%20profile%%20email&audience=https%%3A%%2F%%2Fapi.bench.example%%2F"
        .. "&client_id=$bench_client_id&client_secret=$bench_client_secret", math.random(0, users - 1))
    return wrk.format(nil, "/oauth/token", nil, body)
end
function response(status) if status == 200 then good = good + 1 else bad = bad + 1 end end
function done(summary)
    local g, b = 0, 0
    for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
    io.write(string.format("BENCH good=%d bad=%d seconds=%.3f\n", g, b, summary.duration / 1e6))
end
LUA

# flush_counts: the daemon's "flushes writes" (its group commit's counters).
flush_counts() {
    curl -fs --max-time 5 "$daemon_url/-/metrics" | awk '
        $1 == "auth0_client_store_flushes_total" { f = $2 }
        $1 == "auth0_client_store_flushed_writes_total" { w = $2 }
        END { print f + 0, w + 0 }'
}

# rate SCRIPT URL CONNECTIONS: 200 answers per second.
rate() {
    local out good secs bad
    out=$(BENCH_MODE=login BENCH_USERS=$bench_users BENCH_PASSWORD=$bench_password \
        wrk -t2 -c"$3" -d"${seconds}s" --timeout 10s -s "$1" "$2" | grep '^BENCH')
    good=$(sed -E 's/.*good=([0-9]+).*/\1/' <<<"$out")
    bad=$(sed -E 's/.*bad=([0-9]+).*/\1/' <<<"$out")
    secs=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$out")
    [[ $bad == 0 ]] || echo "  $bad answers were not 200 ($1)" >&2
    python3 -c "print(round($good / $secs))"
}

# The emulator's answers first: each works, and the daemon's login does.
[[ $(probe login "$daemon_url") == 200 ]] || { echo "the daemon's login failed" >&2; exit 1; }

declare -A ratios emulator_rates daemon_rates per_flush
for round in $(seq "$rounds"); do
    for c in $connections; do
        if ((round % 2)); then
            e=$(rate "$work/grant.lua" "$emulator_url" "$c")
        fi
        read -r f0 w0 < <(flush_counts)
        d=$(rate "$work/bench.lua" "$daemon_url/oauth/token" "$c")
        read -r f1 w1 < <(flush_counts)
        if ! ((round % 2)); then
            e=$(rate "$work/grant.lua" "$emulator_url" "$c")
        fi
        per_flush[$c]+="$(python3 -c "print(round(($w1 - $w0) / max($f1 - $f0, 1), 2))") "
        ratios[$c]+="$(python3 -c "print(round($d / max($e, 1), 3))") "
        emulator_rates[$c]+="$e "
        daemon_rates[$c]+="$d "
        echo "round $round, $c connections: emulator $e/s, daemon $d/s, $((f1 - f0)) flushes carried $((w1 - w0)) writes" >&2
    done
done

summary() {
    python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):g} ({min(v):g}-{max(v):g})")' $1
}
echo "connections  daemon/emulator (median, range)  emulator/s  daemon/s  writes per flush"
for c in $connections; do
    echo "$c  $(summary "${ratios[$c]}")  $(summary "${emulator_rates[$c]}")  $(summary "${daemon_rates[$c]}")  $(summary "${per_flush[$c]}")"
done
