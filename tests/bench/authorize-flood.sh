#!/usr/bin/env bash
# The /authorize flood of issue 12: REQUESTS (20,000) anonymous `GET /authorize` against the daemon
# of BASELINE_REV ("old", default 0c2ccf1, main before issue 12) and of the working tree ("new"),
# each run on a freshly started daemon with an empty sessions folder, alternating which goes first,
# against one release Auth0 emulator (never called: nobody follows the redirects).
#
# Usage: tests/bench/authorize-flood.sh [BASELINE_REV] [ROUNDS] [REQUESTS]   (default 0c2ccf1 2 20000)
# Needs wrk, curl and python3 (apt-get update && apt-get install -y wrk curl python3).
#
# Scenarios (FLOOD_SCENARIOS, default "one-ip many-ips"):
#   one-ip    every request from the same address (loopback, the daemon's peer);
#   many-ips  each request with its own `X-Forwarded-For` (198.18.x.y; loopback is a trusted proxy
#             of both versions), as a botnet or a spoofing client behind a trusted proxy would.
# Every request carries a `redirect` of REDIRECT_BYTES (2000) bytes, which both versions accept:
# the largest state record the new one keeps (it refuses a redirect over 2048 bytes).
#
# Per run: the answers by status (302 = a state stored, 429 = refused by a cap, other), wrk's
# timeouts and socket errors, answers per second (from the first request to the REQUESTS-th answer,
# or over the whole run when it never got there), and the growth of the sessions
# folder (`du -sb`, 2 s after the flood so sled has written its buffers, minus the folder of the
# started daemon). CONNECTIONS (16) connections on one wrk thread; 5 s request timeouts; a watchdog
# ends a run once the daemon's count of 302 and 429 answers (its /-/metrics) has not moved for 8 s
# (a wedged store: issue 10's sled flush_async bug, which 0c2ccf1 hits at once, answering 503
# after 2 s from then on), and a probe afterwards says whether the daemon was left wedged.
#
# Binaries of BASELINE_REV are built once in target/bench-baseline/<rev>/ (a detached worktree and
# its own target dir, shared with tests/bench/store.sh) and reused. The "new" side is the working
# tree, or NEW_REV=<rev> (built the same way), or NEW_BIN=<folder> holding both binaries; OLD_BIN
# likewise replaces BASELINE_REV's build.
set -euo pipefail
cd "$(dirname "$0")/../.."
baseline_rev=${1:-0c2ccf1}
rounds=${2:-2}
requests=${3:-20000}
connections=${CONNECTIONS:-16}
redirect_bytes=${REDIRECT_BYTES:-2000}
scenarios=(${FLOOD_SCENARIOS:-one-ip many-ips})

# shellcheck source=tests/bench/store-lib.sh
source tests/bench/store-lib.sh
require_tools wrk curl python3 timeout

if [[ -n ${OLD_BIN:-} ]]; then
    old_bin=$OLD_BIN
    old_name="$OLD_BIN"
else
    old_bin=$(build_rev "$baseline_rev")
    old_name=$(git rev-parse --short=12 "$baseline_rev^{commit}")
fi
if [[ -n ${NEW_BIN:-} ]]; then
    # A folder holding auth0-client and auth0-emulator built elsewhere (a commit's worktree, say).
    new_bin=$NEW_BIN
    new_name="$NEW_BIN"
elif [[ -n ${NEW_REV:-} ]]; then
    new_bin=$(build_rev "$NEW_REV")
    new_name=$(git rev-parse --short=12 "$NEW_REV^{commit}")
else
    new_bin=$(build_tree)
    new_name="working tree ($(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- daemon emulator Cargo.lock || echo ', with changes'))"
fi

start_emulator "$new_bin/auth0-emulator"
write_config "$emulator_url" "$work/config.json"

cat >"$work/flood.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } flood_timespec;
int clock_gettime(int clock, flood_timespec *ts);
]]
local function now()
    local ts = ffi.new("flood_timespec")
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
local limit = tonumber(os.getenv("FLOOD_LIMIT") or "20000")
local many = os.getenv("FLOOD_IPS") == "many"
local path = os.getenv("FLOOD_PATH") or "/authorize"
function init(args)
    found, refused, other, sent, elapsed = 0, 0, 0, 0, -1
end
function request()
    if sent == 0 then
        started = now()
    end
    sent = sent + 1
    local headers = {}
    if many then
        headers["X-Forwarded-For"] = string.format("198.18.%d.%d", math.floor(sent / 256) % 256, sent % 256)
    end
    return wrk.format("GET", path, headers)
end
function response(status, headers, body)
    if status == 302 then
        found = found + 1
    elseif status == 429 then
        refused = refused + 1
    else
        other = other + 1
    end
    if found + refused + other >= limit and not stopping then
        -- The run's length is up to this answer: wrk's own may run on while it stops.
        elapsed = now() - started
        -- As in store-lib.sh: interrupt wrk's main thread as Ctrl-C would, then stop this one.
        stopping = true
        local stat = io.open("/proc/self/stat")
        local pid = stat:read("*n")
        stat:close()
        io.popen("kill -INT " .. pid):close()
        wrk.thread:stop()
    end
end
function done(summary, latency, requests)
    local f, r, o, seconds = 0, 0, 0, summary.duration / 1e6
    for _, t in ipairs(threads) do
        f = f + t:get("found")
        r = r + t:get("refused")
        o = o + t:get("other")
        local elapsed = t:get("elapsed")
        if elapsed and elapsed > 0 then
            seconds = elapsed
        end
    end
    local e = summary.errors
    io.write(string.format("FLOOD found=%d refused=%d other=%d timeouts=%d sockerr=%d seconds=%.3f\n",
        f, r, o, e.timeout, e.connect + e.read + e.write, seconds))
end
LUA

# authorize_served URL: the /authorize answers the daemon has counted that were not failures (302
# and 429): a wedged store keeps answering 503 after `sessions.timeoutMs`, which is no progress.
authorize_served() {
    curl -s --max-time 1 "$1/-/metrics" | awk '
        index($0, "auth0_client_http_requests_total{") == 1 && index($0, "route=\"/authorize\"") &&
            (index($0, "status=\"302\"") || index($0, "status=\"429\"")) { n += $NF }
        END { if (NR) print n + 0 }'
}

redirect=/$(head -c "$((redirect_bytes - 1))" /dev/zero | tr '\0' a)

# flood SCENARIO URL: prints "found refused other timeouts sockerr seconds stalled".
flood() {
    local scenario=$1 url=$2 wrk_pid last=none count still=0 stalled=no line ips=one
    [[ $scenario == many-ips ]] && ips=many
    FLOOD_LIMIT=$requests FLOOD_IPS=$ips FLOOD_PATH="/authorize?redirect=$redirect" \
        timeout -k 5 900 wrk -t1 -c"$connections" -d600s --timeout 5s -s "$work/flood.lua" \
        "$url/authorize" >"$work/wrk.txt" 2>&1 &
    wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 1
        count=$(authorize_served "$url" || true)
        if [[ -n $count ]] && ((count >= requests + 100)); then
            # Past the limit (and any in flight): the Lua stop did not end wrk; its figures stand.
            kill -INT "$wrk_pid" 2>/dev/null || true
            break
        fi
        if [[ $count == "$last" ]]; then still=$((still + 1)); else still=0 last=$count; fi
        if ((still >= ${STALL_SECONDS:-8})); then
            # Stalled short of the limit; at the limit, the Lua stop simply did not end wrk.
            [[ -n $count ]] && ((count >= requests)) || stalled=yes
            kill -INT "$wrk_pid" 2>/dev/null || true
            break
        fi
    done
    wait "$wrk_pid" 2>/dev/null || true
    line=$(grep '^FLOOD ' "$work/wrk.txt" || true)
    if [[ -z $line ]]; then
        echo "0 0 0 0 0 1 $stalled"
        return 0
    fi
    sed -E "s/^FLOOD found=([0-9]+) refused=([0-9]+) other=([0-9]+) timeouts=([0-9]+) sockerr=([0-9]+) seconds=([0-9.]+)\$/\1 \2 \3 \4 \5 \6 $stalled/" <<<"$line"
}

# measure ROUND SIDE BIN: each scenario on a fresh daemon; one line each appended to
# $work/results: round side scenario found refused other timeouts sockerr seconds growth stalled wedged stopped-by
measure() {
    local round=$1 side=$2 bin=$3 scenario found refused other timeouts sockerr secs stalled before after wedged
    for scenario in "${scenarios[@]}"; do
        start_daemon "$side" "$bin"
        sleep 1
        before=$(du -sb "$daemon_dir" | cut -f1)
        read -r found refused other timeouts sockerr secs stalled < <(flood "$scenario" "$daemon_url")
        sleep 2
        after=$(du -sb "$daemon_dir" | cut -f1)
        wedged=no
        [[ $(probe authorize "$daemon_url") =~ ^(302|429)$ ]] || wedged=yes
        stop_daemon "$daemon_pid"
        wait "$daemon_wrapper" || true
        forget_pid "$daemon_wrapper"
        rm -rf "$daemon_dir"
        echo "$round $side $scenario $found $refused $other $timeouts $sockerr $secs $((after - before)) $stalled $wedged $stop_how" >>"$work/results"
        printf '%-5s %-4s %-9s %7s %7s %6s %6s %6s %8s %11s %-7s %-6s %s\n' "$round" "$side" "$scenario" \
            "$found" "$refused" "$other" "$timeouts" "$sockerr" "$secs" "$((after - before))" "$stalled" "$wedged" "$stop_how"
    done
}

echo "old: $old_name"
echo "new: $new_name"
echo "$rounds rounds of $requests GET /authorize (redirect of $redirect_bytes bytes), $connections connections, alternating"
printf '%-5s %-4s %-9s %7s %7s %6s %6s %6s %8s %11s %-7s %-6s %s\n' \
    round side scenario 302 429 other tmout sockerr seconds growth_B stalled wedged stopped-by
: >"$work/results"
for round in $(seq "$rounds"); do
    if ((round % 2)); then
        measure "$round" new "$new_bin"
        measure "$round" old "$old_bin"
    else
        measure "$round" old "$old_bin"
        measure "$round" new "$new_bin"
    fi
done

python3 - "$work/results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
print()
print(f"{'scenario':<9} {'side':<4} {'answers/s':>9} {'302':>7} {'429':>7} {'other':>6} {'tmout':>6} "
      f"{'sockerr':>7} {'growth (bytes)':>15} {'bytes/302':>9}  stalled wedged")
for scenario in dict.fromkeys(r[2] for r in rows):
    for side in ("old", "new"):
        mine = [r for r in rows if r[1] == side and r[2] == scenario]
        if not mine:
            continue
        med = lambda i: statistics.median(float(r[i]) for r in mine)
        rate = statistics.median((int(r[3]) + int(r[4]) + int(r[5])) / float(r[8]) for r in mine)
        growth = med(9)
        per = growth / med(3) if med(3) else float("nan")
        stalled = sum(r[10] == "yes" for r in mine)
        wedged = sum(r[11] == "yes" for r in mine)
        print(f"{scenario:<9} {side:<4} {rate:>9.0f} {med(3):>7.0f} {med(4):>7.0f} {med(5):>6.0f} "
              f"{med(6):>6.0f} {med(7):>7.0f} {growth:>15.0f} {per:>9.0f}  {stalled}/{len(mine)}     {wedged}/{len(mine)}")
print()
print("Medians over the rounds. answers/s: every answer over the run's length; growth: the sessions")
print("folder after the flood minus the folder of the started daemon (du -sb); bytes/302: growth per")
print("state stored. Absolute rates on a shared machine are noise: compare old and new of one run.")
PY
