#!/usr/bin/env bash
# The sled store at scale (issue 24): for each number of sessions in $SIZES ("1000 100000 1000000"),
# a folder filled with that many sessions, then a daemon started on it:
#   fill        sessions written per second by `store-bench fill` (the daemon's own store code,
#               through the sealing layer, 64 writes at a time: a benchmark-only path, since the
#               emulator's password grant would take hours for a million logins; the records are
#               copies of one real login through the daemon, each with its own tokens and sub);
#   folder      the folder's bytes (du -sb after the daemon stopped) per session, and the records'
#               own bytes (keys and values of every tree, `store-bench census`) per session;
#   ready       milliseconds from exec to the first 200 of /-/ready (polled every 5 ms), the
#               first start on the filled folder and a restart after a SIGTERM, medians of $STARTS (3);
#   rss         the daemon's VmRSS once ready, and after the /userinfo load;
#   userinfo    GET /userinfo per second with a `sid` cookie drawn at random from 10,000 sessions
#               spread over the folder ($SECONDS_PER_RUN s, default 10; wrk 2 threads, 32 connections;
#               the daemon on core $DAEMON_CPUS, wrk on $WRK_CPUS), and its ratio to the first size's.
#
# Usage: tests/bench/sessions-scale.sh   (about 12 minutes for the default sizes, 4 of them writing the
# million; SIZES to change)
# Needs wrk (apt-get update && apt-get install -y wrk) and about 8 GB of disk for a million (6.9 GB measured).
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${SIZES:-1000 100000 1000000}
starts=${STARTS:-3}
seconds=${SECONDS_PER_RUN:-10}
daemon_cpus=${DAEMON_CPUS:-0}
wrk_cpus=${WRK_CPUS:-1}

# shellcheck source=tests/bench/store-lib.sh
source tests/bench/store-lib.sh
require_tools wrk curl python3 taskset

cargo build --release -q -p auth0-client -p auth0-emulator >&2
cargo build --release -q -p e2e --bin store-bench >&2
bin=$work/bin
mkdir -p "$bin"
cp target/release/auth0-client target/release/auth0-emulator target/release/store-bench "$bin/"
start_emulator "$bin/auth0-emulator"
write_config "$emulator_url" "$work/config.json"

# One real login through the daemon: the template of every filled session.
start_daemon template "$bin"
curl -fs --max-time 5 -X POST "$daemon_url/oauth/token" -d grant_type=password \
    --data-urlencode username=user0000@bench.example -d password="$bench_password" |
    python3 -c 'import json,sys; t=json.load(sys.stdin); json.dump({"access_token": t["accessToken"], "refresh_token": t["refreshToken"], "id_token": t["idToken"]}, sys.stdout)' \
    >"$work/tokens.json"
stop_daemon "$daemon_pid"
wait "$daemon_wrapper" 2>/dev/null || true
forget_pid "$daemon_wrapper"

write_wrk_script

# serve DIR: starts the daemon on DIR pinned to $daemon_cpus; sets pid, url and ready_ms (exec to
# the first 200 of /-/ready).
serve() {
    local dir=$1 port
    port=$(free_port)
    url=http://127.0.0.1:$port
    ready_ms=$(python3 - "$bin/auth0-client" "$work/config.json" "$dir" "$port" "$daemon_cpus" "$work/serve.pid" "$work/serve.log" <<'PY'
import http.client, os, subprocess, sys, time
binary, config, folder, port, cpus, pidfile, log = sys.argv[1:]
env = dict(os.environ, HTTP_PORT=port, AUTH0_CLIENT__SESSIONS__PATH=folder, LOG_LEVEL="warn",
           DELAY_SHUTDOWN_SECONDS="0", REDIS_HOSTS="", SERVICE_PREFIX="")
start = time.monotonic()
proc = subprocess.Popen(["taskset", "-c", cpus, binary, "serve", "--config", config], env=env,
                        stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
open(pidfile, "w").write(str(proc.pid))
while time.monotonic() - start < 120:
    if proc.poll() is not None:
        sys.exit("the daemon exited; see its log")
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
        c.request("GET", "/-/ready")
        if c.getresponse().status == 200:
            print(round((time.monotonic() - start) * 1000))
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
sys.exit("the daemon was not ready in 120 s")
PY
    )
    pid=$(cat "$work/serve.pid")
    pids+=("$pid")
}
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

base_rate=
printf '%-9s %9s %14s %14s %12s %12s %10s %10s %12s %8s\n' sessions fill/s folder/session records/session first_ms restart_ms rss_ready rss_after userinfo/s ratio
for n in $sizes; do
    dir=$work/folder-$n
    fill=$(AUTH0_CLIENT__SESSIONS__PATH=$dir REDIS_HOSTS= "$bin/store-bench" fill "$work/config.json" \
        "$work/tokens.json" "$n" "$work/sids-$n" 10000)
    first=
    restarts=()
    for i in $(seq "$starts"); do
        serve "$dir"
        if [[ -z $first ]]; then first=$ready_ms; else restarts+=("$ready_ms"); fi
        if [[ $i == "$starts" ]]; then
            rss_ready=$(rss_mb "$pid")
            read -r good bad _ _ secs _ < <(BENCH_SIDS=$work/sids-$n WRK_CPUS=$wrk_cpus \
                run_wrk userinfo "$url" 32 "$seconds")
            rss_after=$(rss_mb "$pid")
        fi
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        forget_pid "$pid"
    done
    rate=$(python3 -c "print(round($good / $secs))")
    base_rate=${base_rate:-$rate}
    census=$("$bin/store-bench" census "$dir")
    read -r folder records < <(python3 -c "import json,sys; c=json.loads(sys.argv[1]); print(c['folderBytes'], c['recordBytes'])" "$census")
    fill_rate=$(python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['sessionsPerSecond']))" "$fill")
    printf '%-9s %9s %14s %14s %12s %12s %10s %10s %12s %8s\n' "$n" "$fill_rate" \
        "$((folder / n))" "$((records / n))" "$first" "$(printf '%s ' "${restarts[@]}" | median)" \
        "$rss_ready" "$rss_after" "$rate" "$(python3 -c "print(round($rate / $base_rate, 2))")"
    [[ $bad == 0 ]] || echo "  $bad answers were not 200" >&2
    echo "  census: $census" >&2
    rm -rf "$dir"
done
