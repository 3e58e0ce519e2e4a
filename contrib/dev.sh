#!/usr/bin/env bash
# Developer entry point. Run from anywhere inside the checkout:
#   contrib/dev.sh deps      install every Debian package and npm lock-file dependency (root, idempotent)
#   contrib/dev.sh build     configure (--enable-werror) and build in ./build
#   contrib/dev.sh check     deps + build + every test (also under ASan/UBSan) + make distcheck
#   contrib/dev.sh demo      deps + build, then run the daemon in the foreground on etc/ with ./state
#   contrib/dev.sh demo-cluster  deps + build, a private PostgreSQL and three daemons on etc/, schedctl nodes
#   contrib/dev.sh quick     build + the tests, without deps, sanitizers or distcheck
#   contrib/dev.sh fuzz [S]  run every libFuzzer target for S seconds (default 30)
#   contrib/dev.sh valgrind  unit tests and a daemon session under valgrind memcheck
#   contrib/dev.sh bench     benchmarks, writing BENCHMARKS.md (not part of check)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

# Debian 12 package names. Build: toolchain + libraries; tests: check, python3 (integration tests and
# the fake Megazord), botocore (verifies SigV4 signatures), node/npm (croner, fauxqs), tzdata.
DEB_PACKAGES=(
        build-essential autoconf automake libtool pkg-config
        libyaml-dev libsystemd-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev libmicrohttpd-dev prometheus libpq-dev postgresql-15
        check python3 python3-botocore tzdata ca-certificates clang libclang-rt-14-dev systemd
)
# npm projects with lock files, installed with `npm ci`
NPM_DIRS=(tests/diff tests/fakes tests/bench/croner)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

cmd_deps() {
        local missing=()
        for p in "${DEB_PACKAGES[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        command -v node >/dev/null || missing+=(nodejs)
        command -v npm >/dev/null || missing+=(npm)
        if [ ${#missing[@]} -gt 0 ]; then
                [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})"
                say "installing: ${missing[*]}"
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -qq
                apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
        for d in "${NPM_DIRS[@]}"; do
                [ -f "$d/package-lock.json" ] || continue
                if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
                        say "npm ci in $d"
                        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
                fi
        done
}

# configure_dir DIR FLAGS...: (re)configure a VPATH build in DIR when its flags changed
configure_dir() {
        local dir=$1; shift
        [ -x "$top/configure" ] && [ "$top/configure" -nt "$top/configure.ac" ] || (cd "$top" && ./autogen.sh >/dev/null 2>&1) \
                || die "autogen.sh failed; run it by hand to see why"
        mkdir -p "$dir"
        if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir/.flags" 2>/dev/null)" != "$*" ]; then
                say "configure $dir: $*"
                (cd "$dir" && "$top/configure" "$@" >configure.out 2>&1) || { tail -20 "$dir/configure.out"; die "configure failed (see $dir/config.log)"; }
                echo "$*" >"$dir/.flags"
        fi
}

cmd_build() {
        configure_dir "$top/build" --enable-werror
        say "make in build/"
        make -C "$top/build" -j"$jobs" >/dev/null
}

run_tests() {
        local dir=$1
        if ! make -C "$dir" -j"$jobs" check; then
                for f in $(grep -l -E '^:test-result: (FAIL|ERROR)' "$dir"/tests/*/*.trs 2>/dev/null); do
                        echo "---- ${f%.trs}.log"; tail -60 "${f%.trs}.log"
                done
                die "tests failed in $dir"
        fi
}

cmd_quick() {
        cmd_build
        run_tests "$top/build"
}

cmd_check() {
        cmd_deps
        cmd_build
        say "tests (gcc, -Werror)"
        run_tests "$top/build"
        say "tests under ASan+UBSan (clang)"
        configure_dir "$top/build-asan" --enable-werror --enable-sanitizers CC=clang
        make -C "$top/build-asan" -j"$jobs" >/dev/null
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                run_tests "$top/build-asan"
        say "fuzzing each target briefly (30 s, two at a time)"
        FUZZ_JOBS=2 cmd_fuzz 30
        # The tarball must build, install and pass its compiled tests; the integration tests
        # (python3 through the real binaries) already ran twice above, against the same sources.
        say "make distcheck (the tarball's build, install and compiled tests)"
        # shellcheck disable=SC2016 # expanded by the tarball's own Makefile
        make -C "$top/build" -j"$jobs" distcheck TESTS='$(check_PROGRAMS) tests/check-layers.sh' \
                >"$top/build/distcheck.out" 2>&1 || { tail -40 "$top/build/distcheck.out"; die "make distcheck failed (full log: build/distcheck.out)"; }
        say "all checks passed"
}

# demo: the daemon in the foreground with the example jobs (hello) and the four azi-3 jobs, the latter
# against the fake Megazord and fauxqs started here on loopback (free ports). A rule starting this
# minute with a 2-minute window shows a session, windows and an alarm within minutes.
cmd_demo() {
        cmd_deps
        cmd_build
        local state="$top/state"
        mkdir -p "$state/jobs.d"
        rm -f "$state"/azi3.db "$state"/azi3.db-wal "$state"/azi3.db-shm "$state"/*.ready
        say "starting the fake Megazord and fauxqs on 127.0.0.1"
        python3 "$top/tests/fakes/megazord.py" --ready-file "$state/megazord.ready" >/dev/null &
        local mz_pid=$!
        node "$top/tests/fakes/fauxqs-server.js" --ready-file "$state/fauxqs.ready" >/dev/null &
        local sqs_pid=$!
        # shellcheck disable=SC2064 # the pids are fixed now
        trap "kill $mz_pid $sqs_pid 2>/dev/null; wait $mz_pid $sqs_pid 2>/dev/null" EXIT
        local i
        for i in $(seq 300); do
                [ -f "$state/megazord.ready" ] && [ -f "$state/fauxqs.ready" ] && break
                kill -0 "$mz_pid" 2>/dev/null && kill -0 "$sqs_pid" 2>/dev/null || die "a demo peer did not start (see above)"
                sleep 0.1
        done
        [ -f "$state/megazord.ready" ] && [ -f "$state/fauxqs.ready" ] || die "the demo peers were not ready within 30 s"

        # azi3.yaml: one robot, a day from this minute to 20 minutes on, 2-minute windows; the registry:
        # the example one with its drop-ins, plus the azi-3 jobs pointing at that file
        python3 - "$state" <<'PY' || die "cannot write the demo configuration"
import json, sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
state = sys.argv[1]
mz = json.load(open(state + "/megazord.ready"))["base_url"]
sqs = json.load(open(state + "/fauxqs.ready"))
now = datetime.now(ZoneInfo("Europe/Amsterdam")).replace(second=0, microsecond=0)
with open(state + "/azi3.yaml", "w") as f:
    f.write(f"""# written by contrib/dev.sh demo
store: azi3.db
megazord: {{ base_url: {mz}, timeout: 5s }}
sqs:
  endpoint: {sqs["endpoint"]}
  region: eu-west-1
  queue_url: {sqs["queues"]["status-queue"]}
  wait_time: 3s
retention: 24h
rules:
  - robot_id: 42
    rule_id: demo
    timezone: Europe/Amsterdam
    start: "{now:%H:%M}"
    end: "{now + timedelta(minutes=20):%H:%M}"
    window: 2m
""")
PY
        cp "$top/etc/schedulerd.yaml" "$state/schedulerd.yaml"
        cp "$top"/etc/jobs.d/*.yaml "$state/jobs.d/"
        sed -e "s|^\(    plugin: .*\)$|\1\n    params: { config: $state/azi3.yaml }|" -e '/^    # params:/d' \
                "$top/etc/jobs.d/azi3.yaml.example" >"$state/jobs.d/azi3.yaml"

        # activity: one event for the replay now; once the session is subscribed, one through SQS;
        # then silence, so a 2-minute window runs out and an alarm is posted
        python3 - "$state" <<'PY' &
import json, sys, time, urllib.request
from datetime import datetime, timezone
state = sys.argv[1]
mz = json.load(open(state + "/megazord.ready"))["base_url"]
sqs = json.load(open(state + "/fauxqs.ready"))
def stamp(): return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
def post(url, body, headers):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    urllib.request.urlopen(req, timeout=10).read()
ev = {"robotId": 42, "eventName": "TOILET_ACTIVITY", "providerName": "sensara-adaptor"}
post(mz + "/_fake/incomings", [dict(ev, id=9001, createdAt=stamp())], {"Content-Type": "application/json"})
open(state + "/seeded.ready", "w").close()
for _ in range(600):
    subs = json.load(urllib.request.urlopen(mz + "/_fake/subscriptions", timeout=10))
    if subs:
        break
    time.sleep(1)
else:
    sys.exit(0)
time.sleep(20)
body = {"from": {"serviceName": "megazord-events"}, "to": {"robotId": 42},
        "event": dict(ev, id=555, subscriptionId=subs[0]["id"], sourceEventId=9002, createdAt=stamp())}
for _ in range(2):  # at-least-once: the duplicate changes nothing
    post(sqs["endpoint"] + "/", {"QueueUrl": sqs["queues"]["status-queue"], "MessageBody": json.dumps(body)},
         {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"})
PY
        local seed_pid=$!
        for i in $(seq 100); do [ -f "$state/seeded.ready" ] && break; sleep 0.1; done
        # shellcheck disable=SC2064
        trap "kill $mz_pid $sqs_pid $seed_pid 2>/dev/null; wait $mz_pid $sqs_pid 2>/dev/null" EXIT
        export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-demo} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-demo}
        say "starting schedulerd in the foreground (Ctrl-C stops it and the peers); state in $state"
        say "in another terminal: build/schedctl --socket $state/control.sock list"
        say "                     build/azi3ctl --config $state/azi3.yaml sessions; build/azi3ctl --config $state/azi3.yaml windows 1"
        "$top/build/schedulerd" --config "$state/schedulerd.yaml" \
                --state-dir "$state" --plugin-dir "$top/build/.libs" --socket "$state/control.sock" || true
}

# demo-cluster: a private PostgreSQL (tests/pg/pg-server.sh, in ./state-cluster/pg) and three daemons,
# nodes n1..n3, on the example registry (etc/schedulerd.yaml and etc/jobs.d/*.yaml, without the
# metrics endpoint, whose port they would share), each with its state dir and control socket in
# ./state-cluster/nN; then `schedctl nodes` and `list` of the cluster. Ctrl-C stops the daemons and
# PostgreSQL (DEMO_CLUSTER_SECONDS=N: after N seconds instead).
cmd_demo_cluster() {
        cmd_deps
        cmd_build
        local n conninfo
        demo_dir="$top/state-cluster" demo_pids=()
        local dir=$demo_dir
        "$top/tests/pg/pg-server.sh" available || die "PostgreSQL is not installed (contrib/dev.sh deps installs postgresql-15)"
        mkdir -p "$dir"
        say "starting a private PostgreSQL in $dir/pg"
        conninfo=$("$top/tests/pg/pg-server.sh" start "$dir/pg") || die "PostgreSQL did not start (see $dir/pg/server.log)"
        stop_all() {
                local p
                for p in "${demo_pids[@]}"; do kill "$p" 2>/dev/null || true; done
                for p in "${demo_pids[@]}"; do wait "$p" 2>/dev/null || true; done
                "$top/tests/pg/pg-server.sh" stop "$demo_dir/pg" || true
        }
        trap stop_all EXIT
        for n in 1 2 3; do
                mkdir -p "$dir/n$n/jobs.d"
                sed -e '/^  metrics_listen:/d' \
                    -e "s|^scheduler:\$|scheduler:\n  store: \"$conninfo\"\n  cluster: { node: n$n }|" \
                        "$top/etc/schedulerd.yaml" >"$dir/n$n/schedulerd.yaml"
                cp "$top"/etc/jobs.d/*.yaml "$dir/n$n/jobs.d/"
                "$top/build/schedulerd" --config "$dir/n$n/schedulerd.yaml" --state-dir "$dir/n$n" \
                        --plugin-dir "$top/build/.libs" --socket "$dir/n$n/control.sock" >"$dir/n$n/daemon.log" 2>&1 &
                demo_pids+=($!)
        done
        local i
        for i in $(seq 100); do
                [ -S "$dir/n1/control.sock" ] && [ -S "$dir/n2/control.sock" ] && [ -S "$dir/n3/control.sock" ] && break
                sleep 0.1
        done
        sleep 2 # each node records its registry digest with its first resync
        say "three nodes on $conninfo; logs in $dir/nN/daemon.log"
        "$top/build/schedctl" --socket "$dir/n1/control.sock" nodes || die "schedctl nodes failed (see $dir/n1/daemon.log)"
        echo
        "$top/build/schedctl" --socket "$dir/n2/control.sock" list || true
        say "try: build/schedctl --socket $dir/n3/control.sock disable hello   (then list on n1: disabled there too)"
        say "     build/schedctl --socket $dir/n2/control.sock history          (the NODE column: who ran what)"
        if [ -n "${DEMO_CLUSTER_SECONDS:-}" ]; then
                sleep "$DEMO_CLUSTER_SECONDS"
                "$top/build/schedctl" --socket "$dir/n1/control.sock" history -n 6 || true
        else
                say "Ctrl-C stops the three daemons and PostgreSQL"
                wait "${demo_pids[0]}" || true
        fi
}

# fuzz [SECONDS]: every libFuzzer target of tests/fuzz for SECONDS each (default 30), in build-fuzz/
cmd_fuzz() {
        FUZZ_OUT=${FUZZ_OUT:-$top/build-fuzz} "$top/tests/fuzz/run.sh" "${1:-30}"
}

# Benchmarks (issue 7): an optimised build in build-bench, then tests/bench/bench.py, which writes
# BENCHMARKS.md and tests/bench/results.json: process isolation with croner 11 beside, then worker
# isolation. Bounded: about 30 minutes; run it on a quiet machine. Extra arguments go to
# bench.py (e.g. --only spread,herd).
# valgrind: every Check unit test (CK_FORK=no, so the test body runs under memcheck) and a daemon
# session with runs, reloads and a graceful stop. Fails on any memcheck error or definite leak.
cmd_valgrind() {
        command -v valgrind >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq valgrind >/dev/null; } ||
                die "valgrind is not installed (apt-get install valgrind)"
        cmd_build
        make -C "$top/build" -j"$jobs" check TESTS= >/dev/null
        local vg=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
                  --show-leak-kinds=definite --child-silent-after-fork=yes --track-fds=no)
        local t failed=0
        for t in "$top"/build/tests/unit/test_*; do
                [ -x "$t" ] || continue
                say "valgrind ${t#"$top"/build/}"
                (cd "$top/build" && CK_FORK=no TEST_PLUGIN_DIR="$top/build/tests/plugins/.libs" top_srcdir="$top" \
                        top_builddir="$top/build" "${vg[@]}" "$t" >"$t.valgrind.log" 2>&1) ||
                        { tail -40 "$t.valgrind.log"; failed=1; }
        done
        say "valgrind: a daemon session"
        SCHEDULERD_VALGRIND="${vg[*]}" top_builddir="$top/build" top_srcdir="$top" \
                TEST_PLUGIN_DIR="$top/build/tests/plugins/.libs" python3 "$top/tests/integration/valgrind_session.py" ||
                failed=1
        [ "$failed" = 0 ] || die "valgrind found errors (logs beside each test binary, *.valgrind.log)"
        say "valgrind: no errors, no definite leaks"
}

cmd_bench() {
        configure_dir "$top/build-bench" CFLAGS="-O2 -g"
        say "make in build-bench/ (-O2)"
        make -C "$top/build-bench" -j"$jobs" >/dev/null
        make -C "$top/build-bench" -j"$jobs" tests/plugins/ok.la tests/plugins/slow.la tests/plugins/stamp.la \
                tests/bench/bench-nextfire tests/bench/bench-fork tests/bench/bench-claim >/dev/null
        (cd "$top/tests/bench/croner" && npm ci --no-audit --no-fund --silent)
        say "benchmarks, process isolation, croner 11 beside (about 20 minutes)"
        timeout 2700 python3 "$top/tests/bench/bench.py" --builddir "$top/build-bench" "$@"
        say "benchmarks, worker isolation (about 10 minutes)"
        timeout 1800 python3 "$top/tests/bench/bench.py" --builddir "$top/build-bench" --isolation worker \
                --only spread,herd,stress,throughput --no-croner "$@"
        say "wrote BENCHMARKS.md and tests/bench/results.json"
}

case "${1:-}" in
        deps) cmd_deps ;;
        build) cmd_build ;;
        check) cmd_check ;;
        quick) cmd_quick ;;
        demo) cmd_demo ;;
        demo-cluster) cmd_demo_cluster ;;
        bench) shift; cmd_bench "$@" ;;
        fuzz) cmd_fuzz "${2:-30}" ;;
        valgrind) cmd_valgrind ;;
        *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
