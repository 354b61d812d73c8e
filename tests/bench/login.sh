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

# shellcheck source=tests/bench/store-lib.sh
source tests/bench/store-lib.sh
require_tools wrk curl python3

bin=$(build_tree)
start_emulator "$bin/auth0-emulator"
write_config "$emulator_url" "$work/config.json"
write_wrk_script
start_daemon login "$bin"

# flush_counts: the daemon's "flushes writes" (its group commit's counters).
flush_counts() {
    curl -fs --max-time 5 "$daemon_url/-/metrics" | awk '
        $1 == "auth0_client_store_flushes_total" { f = $2 }
        $1 == "auth0_client_store_flushed_writes_total" { w = $2 }
        END { print f + 0, w + 0 }'
}

# rate MODE URL CONNECTIONS: 200 answers per second (run_wrk: grant to the emulator, login to the
# daemon).
rate() {
    local good bad secs
    read -r good bad _ _ secs _ < <(run_wrk "$1" "$2" "$3" "$seconds")
    [[ $bad == 0 ]] || echo "  $bad answers were not 200 ($1)" >&2
    python3 -c "print(round($good / max($secs, 0.001)))"
}

# The emulator's answers first: each works, and the daemon's login does.
[[ $(probe login "$daemon_url") == 200 ]] || { echo "the daemon's login failed" >&2; exit 1; }

declare -A ratios emulator_rates daemon_rates per_flush
for round in $(seq "$rounds"); do
    for c in $connections; do
        if ((round % 2)); then
            e=$(rate grant "$emulator_url" "$c")
        fi
        read -r f0 w0 < <(flush_counts)
        d=$(rate login "$daemon_url" "$c")
        read -r f1 w1 < <(flush_counts)
        if ! ((round % 2)); then
            e=$(rate grant "$emulator_url" "$c")
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
