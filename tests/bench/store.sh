#!/usr/bin/env bash
# Benchmark of the sled session store under writes (issue 10's README figures): the daemon of the
# working tree ("new") against the daemon of BASELINE_REV ("old"), measured alternately in the same
# run against one release Auth0 emulator, and reported as medians of per-round ratios new/old with
# their range (absolute figures on a shared 2-core machine are noise; ratios are not).
#
# Usage: tests/bench/store.sh [BASELINE_REV] [ROUNDS] [SECONDS]   (default 0c2ccf1, 5 rounds, 5 s)
# Needs wrk and strace (apt-get update && apt-get install -y wrk strace).
#
# Figures, each on a freshly started daemon with an empty sessions folder:
#   login<N>       POST /oauth/token (password grant, a random one of $USERS seeded users, 64 by
#                  default) answered 200 per second, N connections: $LOGIN_CONNECTIONS ("4 64");
#   fsync<N>       fsync + fdatasync + sync_file_range + msync calls per login answered 200, over
#                  $FSYNC_LOGINS (2000) logins at N connections, $FSYNC_CONNECTIONS ("4 16"): the
#                  daemon runs under `strace -f --seccomp-bpf -c` (only those calls stop it), and
#                  the calls of a daemon that starts and stops idle are subtracted;
#   authorize<N>   anonymous GET /authorize answered 3xx per second, N connections:
#                  $AUTHORIZE_CONNECTIONS ("16").
# Every wrk run is bounded: SECONDS (the fsync runs 120 s), 5 s request timeouts, and a watchdog
# that ends a run once the daemon's count of good answers (its /-/metrics) has not moved for 8 s.
# A daemon whose store wedges (sled's flush_async bug that issue 10 fixes: 503 after 2 s, or no
# answer at all) is not fatal: its other answers, wrk's timeouts and socket errors are counted, a
# probe after the run says whether it was left wedged, and it is killed (SIGKILL when SIGTERM does
# not end it in 5 s). Each measurement starts a fresh daemon anyway.
#
# NEW_REV=<rev> measures that revision instead of the working tree (NEW_REV=0c2ccf1 with the
# default baseline is an A/A run: the ratios then show the noise). Binaries of a revision are built
# once in target/bench-baseline/<rev>/ (a detached worktree and its own target dir) and reused;
# OLD_BIN=<dir> takes the baseline's auth0-client from that folder instead of building it (name
# BASELINE_REV after the revision it was built from).
set -euo pipefail
cd "$(dirname "$0")/../.."
baseline_rev=${1:-0c2ccf1}
rounds=${2:-5}
seconds=${3:-5}
fsync_logins=${FSYNC_LOGINS:-2000}

# shellcheck source=tests/bench/store-lib.sh
source tests/bench/store-lib.sh
require_tools wrk strace curl python3 timeout

if [[ -n ${OLD_BIN:-} ]]; then
    old_bin=$OLD_BIN
else
    old_bin=$(build_rev "$baseline_rev")
fi
if [[ -n ${NEW_REV:-} ]]; then
    new_bin=$(build_rev "$NEW_REV")
    new_name=$(git rev-parse --short=12 "$NEW_REV^{commit}")
else
    new_bin=$(build_tree)
    new_name="working tree ($(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- daemon emulator Cargo.lock || echo ', with changes'))"
fi
old_name=$(git rev-parse --short=12 "$baseline_rev^{commit}")

start_emulator "$new_bin/auth0-emulator"
# The caps on logins in progress (1,000 per address by default) would answer most of one
# address's /authorize flood 429 without writing: raised, so the figure is the store's.
write_config "$emulator_url" "$work/config.json" '"maxPendingLogins": 100000000, "maxPendingLoginsPerIp": 100000000'
write_wrk_script

strace_args=(strace -f --seccomp-bpf -qq -c -e trace=fsync,fdatasync,sync_file_range,msync)
# fsync_count FILE: the calls counted in an `strace -c` summary.
fsync_count() {
    awk '$NF ~ /^(fsync|fdatasync|sync_file_range|msync)$/ { n += $4 } END { print n + 0 }' "$1"
}
# fsync_calls FILE: the same by system call, "sync_file_range=N,fsync=N" (sled syncs its log with
# sync_file_range on Linux).
fsync_calls() {
    awk '$NF ~ /^(fsync|fdatasync|sync_file_range|msync)$/ { s = s (s ? "," : "") $NF "=" $4 } END { print s ? s : "-" }' "$1"
}

# A daemon that starts and stops without load: its fsyncs are subtracted from the fsync runs.
declare -A idle
idle_fsyncs() {
    local side=$1 bin=$2
    start_daemon "$side-idle" "$bin" "${strace_args[@]}" -o "$work/strace-idle.txt"
    stop_daemon "$daemon_pid"
    wait "$daemon_wrapper" || true
    forget_pid "$daemon_wrapper"
    rm -rf "$daemon_dir"
    idle[$side]=$(fsync_count "$work/strace-idle.txt")
}

# The figures, in the order each side measures them: KIND<CONNECTIONS>.
figures=()
# (an empty list leaves that kind out: FSYNC_CONNECTIONS= AUTHORIZE_CONNECTIONS= measures logins only)
for c in ${LOGIN_CONNECTIONS-4 64}; do figures+=("login$c"); done
for c in ${FSYNC_CONNECTIONS-4 16}; do figures+=("fsync$c"); done
for c in ${AUTHORIZE_CONNECTIONS-16}; do figures+=("authorize$c"); done

# measure ROUND SIDE BIN: every figure on SIDE, each on a fresh daemon, one line each appended to
# $work/results: round side figure value good bad timeouts sockerr wedged stopped-by stalled
measure() {
    local round=$1 side=$2 bin=$3 figure kind connections good bad timeouts sockerr secs stalled value
    local wedged expect calls detail
    for figure in "${figures[@]}"; do
        kind=${figure%%[0-9]*}
        connections=${figure#"$kind"}
        if [[ $kind == fsync ]]; then
            start_daemon "$side" "$bin" "${strace_args[@]}" -o "$work/strace.txt"
            read -r good bad timeouts sockerr secs stalled < <(run_wrk login "$daemon_url" "$connections" 120 "$fsync_logins")
        else
            start_daemon "$side" "$bin"
            read -r good bad timeouts sockerr secs stalled < <(run_wrk "$kind" "$daemon_url" "$connections" "$seconds")
        fi
        expect=200
        [[ $kind == authorize ]] && expect=302
        wedged=no
        [[ $(probe "${kind/fsync/login}" "$daemon_url") == "$expect" ]] || wedged=yes
        stop_daemon "$daemon_pid"
        wait "$daemon_wrapper" || true
        forget_pid "$daemon_wrapper"
        detail=
        if [[ $kind == fsync ]]; then
            calls=$(fsync_count "$work/strace.txt")
            detail=$(fsync_calls "$work/strace.txt")
            value=$(python3 -c "import sys; c,i,g=map(float,sys.argv[1:]); print(f'{max(c-i,0)/g:.4f}' if g else 'nan')" \
                "$calls" "${idle[$side]}" "$good")
        else
            value=$(python3 -c "import sys; g,s=map(float,sys.argv[1:]); print(f'{g/s:.1f}' if s else 'nan')" "$good" "$secs")
        fi
        rm -rf "$daemon_dir"
        echo "$round $side $figure $value $good $bad $timeouts $sockerr $wedged $stop_how $stalled" >>"$work/results"
        printf '%-6s %-4s %-12s %10s %7s %6s %6s %6s %-7s %-6s %-10s %s\n' \
            "$round" "$side" "$figure" "$value" "$good" "$bad" "$timeouts" "$sockerr" "$stalled" "$wedged" "$stop_how" "$detail"
    done
}

idle_fsyncs old "$old_bin"
idle_fsyncs new "$new_bin"

echo "old: $old_name"
echo "new: $new_name"
echo "$rounds rounds of ${seconds}s per throughput figure, alternating; $bench_users users;" \
    "fsyncs of an idle start and stop: old ${idle[old]}, new ${idle[new]}"
printf '%-6s %-4s %-12s %10s %7s %6s %6s %6s %-7s %-6s %-10s %s\n' \
    round side figure value good non-ok tmout sockerr stalled wedged stopped-by "sync calls"
: >"$work/results"
for round in $(seq "$rounds"); do
    # Which side goes first alternates too, so neither always runs on a machine the other warmed.
    if ((round % 2)); then
        measure "$round" new "$new_bin"
        measure "$round" old "$old_bin"
    else
        measure "$round" old "$old_bin"
        measure "$round" new "$new_bin"
    fi
done

python3 - "$work/results" <<'PY'
import math, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
keys = list(dict.fromkeys(r[2] for r in rows))
def label(key):
    kind = key.rstrip("0123456789")
    n = key[len(kind):]
    return {"login": f"password logins/s, {n} connections",
            "fsync": f"fsyncs per login, {n} conn. (lower=better)",
            "authorize": f"GET /authorize/s, {n} connections"}[kind]
figures = [(key, label(key)) for key in keys]
def fmt(x, digits):
    return "n/a" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.{digits}f}")
print()
print(f"{'figure':<40} {'old':>9} {'new':>9} {'new/old':>8}  {'range':<20} {'rounds':>6}  wedged old, new")
for key, label in figures:
    by_round = {}
    for r, side, fig, value, *_ in rows:
        if fig == key:
            by_round.setdefault(r, {})[side] = float(value)
    ratios, olds, news = [], [], []
    for sides in by_round.values():
        old, new = sides.get("old", math.nan), sides.get("new", math.nan)
        olds.append(old); news.append(new)
        if math.isnan(old) or math.isnan(new):
            continue
        ratios.append(new / old if old else math.inf)
    med = lambda xs: statistics.median([x for x in xs if not math.isnan(x)] or [math.nan])
    digits = 3 if key.startswith("fsync") else 0
    span = f"{fmt(min(ratios), 2)} to {fmt(max(ratios), 2)}" if ratios else "n/a"
    wedged = {side: sum(r[8] == "yes" for r in rows if r[1] == side and r[2] == key) for side in ("old", "new")}
    print(f"{label:<40} {fmt(med(olds), digits):>9} {fmt(med(news), digits):>9} "
          f"{fmt(med(ratios) if ratios else math.nan, 2):>8}  {span:<20} {len(ratios):>6}  "
          f"{wedged['old']}/{len(by_round)}, {wedged['new']}/{len(by_round)}")
print()
print("old and new: medians over the rounds; new/old: median of the rounds' ratios, with their range;")
print("wedged: rounds whose run left that side's daemon wedged. A wedged side's figure only says how")
print("far it got before wedging (its fsyncs per login count only the few logins answered).")
print("Failures over all rounds: answers not 200/3xx, wrk's timeouts and socket errors (wrk does not")
print("count requests that never get an answer); runs the watchdog ended because the good answers")
print("stopped for 8 s; runs that left the daemon wedged (a 5 s probe afterwards failed); daemons that")
print("SIGTERM did not stop in 5 s:")
for side in ("old", "new"):
    for key, label in figures:
        mine = [r for r in rows if r[1] == side and r[2] == key]
        bad, tmo, sock = (sum(int(r[i]) for r in mine) for i in (5, 6, 7))
        wedged = sum(r[8] == "yes" for r in mine)
        killed = sum(r[9] == "kill" for r in mine)
        stalled = sum(r[10] == "yes" for r in mine)
        print(f"  {side} {key:<12} non-ok {bad:>6}  timeouts {tmo:>5}  socket errors {sock:>5}  "
              f"stalled {stalled}/{len(mine)}  wedged {wedged}/{len(mine)}  SIGKILLed {killed}/{len(mine)}")
PY
