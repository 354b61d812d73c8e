# Helpers shared by the benchmarks of the store and the login path (store.sh, store-space.sh,
# authorize-flood.sh, login.sh, sessions-scale.sh; sourced, not run).
#
# The caller has done `set -euo pipefail` and is at the workspace root. Sourcing this file gives it
# `work` (a fresh temporary folder) and the array `pids` of the processes it starts, and traps EXIT
# (and INT, TERM) with `cleanup`, which kills those processes and removes `work`.

bench_users=${USERS:-64}
bench_password=bench-password
bench_client_id=bench-login-client
bench_client_secret=bench-login-secret
bench_connection=Username-Password-Authentication
bench_api=https://api.bench.example/

require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get update && apt-get install -y $tool" >&2; exit 1; }
    done
}

# The caller's EXIT trap: kills every process in `pids` (and the children of a wrapper such as
# strace) and removes `work`.
cleanup() {
    local p
    exec 2>/dev/null
    for p in "${pids[@]}"; do
        kill -KILL $(cat /proc/"$p"/task/*/children 2>/dev/null) "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}

work=$(mktemp -d)
pids=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Drops PID from `pids` once it has ended, so the trap never signals a reused pid.
forget_pid() {
    local kept=() p
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    pids=("${kept[@]}")
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Builds the release daemon and emulator of the working tree and copies them to $work/tree, so a
# rebuild by someone else during the run cannot swap the binaries under a daemon restarted later.
# Prints the folder holding them (called as $(build_tree): it exits that subshell on failure, and
# the caller checks the binaries).
build_tree() {
    cargo build --release -q -p auth0-client -p auth0-emulator >&2 || exit 1
    mkdir -p "$work/tree"
    cp target/release/auth0-client target/release/auth0-emulator "$work/tree/"
    echo "$work/tree"
}

# Builds REV's release daemon and emulator in a detached worktree under target/bench-baseline/<rev>
# (its own target dir, kept between runs and reused when both binaries are there). Prints the
# folder holding them.
build_rev() {
    local rev cache
    rev=$(git rev-parse --short=12 "$1^{commit}") || exit 1
    cache=target/bench-baseline/$rev
    if [[ ! -x $cache/target/release/auth0-client || ! -x $cache/target/release/auth0-emulator ]]; then
        if [[ ! -e $cache/src/.git ]]; then
            mkdir -p "$cache"
            git worktree prune
            git worktree add --detach "$cache/src" "$rev" >&2 || exit 1
        fi
        echo "building $rev in $cache (its own target dir; slow the first time)" >&2
        (cd "$cache/src" && cargo build --release -q -p auth0-client -p auth0-emulator --target-dir ../target) >&2 || exit 1
    fi
    echo "$PWD/$cache/target/release"
}

# Writes the emulator's seed: one login client (every grant, rotation on), an API, a connection and
# $bench_users users user0000@bench.example... sharing one password (the emulator finds a user by a
# linear scan, so keep this in the hundreds).
write_seed() {
    python3 - "$1" "$bench_users" <<PY
import json, sys
path, users = sys.argv[1], int(sys.argv[2])
json.dump({
    "clients": [{"clientId": "$bench_client_id", "clientSecret": "$bench_client_secret",
                 "refreshTokenRotation": True}],
    "apis": [{"identifier": "$bench_api"}],
    "connections": [{"name": "$bench_connection", "id": "con_Bench00000000001"}],
    "users": [{"email": f"user{i:04d}@bench.example", "password": "$bench_password",
               "connection": "$bench_connection"} for i in range(users)],
}, open(path, "w"))
PY
}

# Writes the daemon's config (upstream JSON shape): one token client `api`, the default, whose
# scopes have no `website` (logins answer token JSON), on the emulator at $1. Extra JSON for
# `sessions` may come as $3 (e.g. '"stateTtlSeconds": 30').
write_config() {
    python3 - "$1" "$2" "${3:-}" <<PY
import json, sys
base, path, extra = sys.argv[1], sys.argv[2], sys.argv[3]
sessions = {"store": "sled"}
if extra:
    sessions.update(json.loads("{" + extra + "}"))
json.dump({
    "clients": {"api": {
        "auth0Url": base, "clientId": "$bench_client_id", "clientSecret": "$bench_client_secret",
        "redirectUrl": "http://127.0.0.1:9/oauth/callback",
        "scopes": ["offline_access", "profile", "email"], "audience": "$bench_api",
        "supportedConnections": ["$bench_connection"], "defaultConnection": "$bench_connection"}},
    "defaultClient": "api",
    "server": {"bind": "127.0.0.1", "insecureCookies": True},
    "sessions": sessions,
}, open(path, "w"))
PY
}

# Starts the emulator (binary $1) on a free port; sets emulator_url.
start_emulator() {
    local port
    write_seed "$work/seed.json"
    port=$(free_port)
    "$1" --port "$port" --seed "$work/seed.json" >"$work/emulator.log" 2>&1 &
    pids+=($!)
    emulator_url=http://127.0.0.1:$port
    for _ in $(seq 100); do
        curl -fs -o /dev/null --max-time 1 "$emulator_url/.well-known/jwks.json" && return 0
        sleep 0.1
    done
    echo "the emulator did not start:" >&2
    cat "$work/emulator.log" >&2
    exit 1
}

# start_daemon NAME BIN_DIR [WRAPPER...]: starts BIN_DIR/auth0-client serve with $work/config.json
# on a fresh port and a fresh sessions folder, optionally under WRAPPER (strace ...). Sets
# daemon_pid (the daemon itself), daemon_wrapper (a subshell that ends once the daemon and its
# wrapper have: wait for it, then forget_pid it), daemon_url,
# daemon_dir, daemon_log. Not in a subshell: it adds both pids to `pids`. The log
# level is LOG_LEVEL, warn by default.
daemon_seq=0
start_daemon() {
    local name=$1 bin=$2 port launched pidfile
    shift 2
    daemon_seq=$((daemon_seq + 1))
    port=$(free_port)
    daemon_dir=$work/data-$name-$daemon_seq
    daemon_log=$work/daemon-$name-$daemon_seq.log
    daemon_url=http://127.0.0.1:$port
    pidfile=$work/daemon-$name-$daemon_seq.pid
    # The daemon is a shell that writes its pid and execs it, so its pid is known under a wrapper;
    # the job is a subshell around it, which outlives it and ends normally even when the daemon is
    # killed (its report of a killed command goes to /dev/null).
    # shellcheck disable=SC2016
    (
        HTTP_PORT=$port AUTH0_CLIENT__SESSIONS__PATH=$daemon_dir LOG_LEVEL=${LOG_LEVEL:-warn} \
            DELAY_SHUTDOWN_SECONDS=0 REDIS_HOSTS= SERVICE_PREFIX= \
            "$@" sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$bin/auth0-client" serve --config "$work/config.json" \
            >"$daemon_log" 2>&1
        exit $?
    ) 2>/dev/null &
    launched=$!
    pids+=($launched)
    daemon_wrapper=$launched
    daemon_pid=
    for _ in $(seq 150); do
        if [[ -z $daemon_pid && -s $pidfile ]]; then
            daemon_pid=$(cat "$pidfile")
            [[ $daemon_pid != "$launched" ]] && pids+=("$daemon_pid")
        fi
        if [[ -n $daemon_pid ]] && curl -fs -o /dev/null --max-time 1 "$daemon_url/-/ready"; then
            return 0
        fi
        kill -0 "$launched" 2>/dev/null || break
        sleep 0.1
    done
    echo "the $name daemon did not become ready:" >&2
    tail -20 "$daemon_log" >&2
    exit 1
}

# stop_daemon PID: SIGTERM, then SIGKILL after 5 s (a wedged store ignores SIGTERM). Sets
# stop_how to "term" or "kill", saying which ended it. Not in a subshell: it forgets PID.
stop_daemon() {
    local pid=$1
    local how=kill
    kill -TERM "$pid" 2>/dev/null || how=term
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { how=term; break; }
        sleep 0.1
    done
    if [[ $how == kill ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    forget_pid "$pid"
    stop_how=$how
}

# probe KIND URL: one request with a 5 s bound; prints its status (000 when none came).
probe() {
    local status
    case $1 in
    login)
        status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$2/oauth/token" \
            -d grant_type=password --data-urlencode username=user0000@bench.example \
            -d password="$bench_password") || true ;;
    authorize)
        status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$2/authorize") || true ;;
    esac
    echo "${status:-000}"
}

# The wrk script: BENCH_MODE=login (POST /oauth/token, password grant, a random seeded user each
# request, 200 expected), grant (the same login as the daemon sends it to Auth0: password-realm
# with the client's credentials, straight to the emulator; 200 expected), userinfo (GET with a
# `sid` cookie drawn from the file BENCH_SIDS, one per line; 200 expected) or authorize (GET, 3xx
# expected). BENCH_LIMIT > 0 ends the run after
# that many answers (run with one thread: the first thread to reach it ends the run). done() prints
# one line:
# BENCH good=N bad=N timeouts=N sockerr=N seconds=S (bad: answers with another status).
write_wrk_script() {
    cat >"$work/bench.lua" <<'LUA'
local threads = {}
function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end
local mode = os.getenv("BENCH_MODE") or "login"
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local password = os.getenv("BENCH_PASSWORD") or ""
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local grant = os.getenv("BENCH_GRANT") or ""
local sids = {}
if mode == "userinfo" then
    for line in io.lines(os.getenv("BENCH_SIDS")) do table.insert(sids, line) end
end
function init(args)
    good, bad = 0, 0
    math.randomseed(id * 7919 + os.time())
    if mode == "login" or mode == "grant" then
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    end
end
if mode == "login" or mode == "grant" then
    function request()
        local body = string.format("%susername=user%04d%%40bench.example&password=%s",
            mode == "grant" and grant or "grant_type=password&", math.random(0, users - 1), password)
        return wrk.format(nil, nil, nil, body)
    end
elseif mode == "userinfo" then
    function request()
        return wrk.format(nil, nil, { Cookie = "sid=" .. sids[math.random(#sids)] })
    end
end
function response(status, headers, body)
    if (mode ~= "authorize" and status == 200) or (mode == "authorize" and status >= 300 and status < 400) then
        good = good + 1
    else
        bad = bad + 1
    end
    if limit > 0 and good + bad >= limit and not stopping then
        -- wrk's main thread sleeps for the whole duration whatever its threads do: interrupt it
        -- as Ctrl-C would (its handler ends the run), then stop this thread. Not os.execute:
        -- system() ignores SIGINT in the caller while its command runs. Repeated until wrk is
        -- gone (at most 10 s), since one signal was seen to be lost now and then.
        stopping = true
        local stat = io.open("/proc/self/stat")
        local pid = stat:read("*n")
        stat:close()
        io.popen("(for i in $(seq 50); do kill -INT " .. pid .. " || exit 0; sleep 0.2; done) >/dev/null 2>&1 &"):close()
        wrk.thread:stop()
    end
end
function done(summary, latency, requests)
    local g, b = 0, 0
    for _, t in ipairs(threads) do
        g = g + t:get("good")
        b = b + t:get("bad")
    end
    local e = summary.errors
    io.write(string.format("BENCH good=%d bad=%d timeouts=%d sockerr=%d seconds=%.3f\n",
        g, b, e.timeout, e.connect + e.read + e.write, summary.duration / 1e6))
end
LUA
}

# good_answers URL MODE: how many logins (200) or /authorize (302) the daemon at URL has answered,
# by its /-/metrics (each worker publishes its counts every second); empty when it did not answer.
good_answers() {
    local route=/oauth/token status=200
    [[ $2 == authorize ]] && route=/authorize status=302
    [[ $2 == userinfo ]] && route=/userinfo
    curl -s --max-time 1 "$1/-/metrics" | awk -v r="route=\"$route\"" -v s="status=\"$status\"" '
        index($0, "auth0_client_http_requests_total{") == 1 && index($0, r) && index($0, s) { n += $NF }
        END { if (NR) print n + 0 }'
}

# run_wrk MODE URL CONNECTIONS SECONDS [LIMIT]: prints "good bad timeouts sockerr seconds stalled"
# (good: expected answers; bad: other answers; timeouts and socket errors as wrk counts them, which
# misses requests that never get an answer; seconds: the run's length; stalled: yes when the
# watchdog ended it). Bounded by SECONDS, and by a watchdog that ends the run (as Ctrl-C would,
# so wrk still reports) once the daemon's count of good answers has not moved for $STALL_SECONDS
# (8) seconds: a wedged store answers nothing, or 503 after 2 s. Request timeouts of 5 s. Two wrk
# threads, one with a LIMIT (answers; the run may end a few answers past it). MODE grant goes to
# the emulator, which has no such count: no watchdog. wrk runs on the cores WRK_CPUS names, if set.
run_wrk() {
    local mode=$1 url=$2 connections=$3 seconds=$4 limit=${5:-0} path line threads=2 wrk_pid
    local last=none count still=0 stalled=no
    ((limit > 0)) && threads=1
    ((connections < threads)) && threads=$connections
    case $mode in login | grant) path=/oauth/token ;; authorize) path=/authorize ;; userinfo) path=/userinfo ;; esac
    BENCH_MODE=$mode BENCH_USERS=$bench_users BENCH_PASSWORD=$bench_password BENCH_LIMIT=$limit \
        BENCH_GRANT="grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fpassword-realm&realm=$bench_connection&scope=openid%20offline_access%20profile%20email&audience=https%3A%2F%2Fapi.bench.example%2F&client_id=$bench_client_id&client_secret=$bench_client_secret&" \
        timeout -k 5 $((seconds + 30)) ${WRK_CPUS:+taskset -c "$WRK_CPUS"} wrk -t"$threads" -c"$connections" \
        -d"${seconds}s" --timeout 5s -s "$work/bench.lua" "$url$path" >"$work/wrk.txt" 2>&1 &
    wrk_pid=$!
    while [[ $mode != grant ]] && kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 1
        count=$(good_answers "$url" "$mode" || true)
        if [[ $count == "$last" ]]; then still=$((still + 1)); else still=0 last=$count; fi
        if ((still >= ${STALL_SECONDS:-8})); then
            stalled=yes
            kill -INT "$wrk_pid" 2>/dev/null || true
            break
        fi
    done
    wait "$wrk_pid" 2>/dev/null || true
    line=$(grep '^BENCH ' "$work/wrk.txt" || true)
    if [[ -z $line ]]; then
        echo "0 0 0 0 $seconds $stalled"
        return 0
    fi
    sed -E "s/^BENCH good=([0-9]+) bad=([0-9]+) timeouts=([0-9]+) sockerr=([0-9]+) seconds=([0-9.]+)\$/\1 \2 \3 \4 \5 $stalled/" <<<"$line"
}
