#!/usr/bin/env bash
# Developer entry point. Run from anywhere inside the checkout:
#   contrib/dev.sh deps      install every Debian package and npm lock-file dependency (root, idempotent)
#   contrib/dev.sh build     configure (--enable-werror) and build in ./build
#   contrib/dev.sh check     deps + build + every test (also under ASan/UBSan) + make distcheck
#   contrib/dev.sh demo      deps + build, then run the daemon in the foreground on etc/ with ./state
#   contrib/dev.sh quick     build + the tests, without deps, sanitizers or distcheck
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

# Debian 12 package names. Build: toolchain + libraries; tests: check, python3 (integration tests and
# the fake Megazord), botocore (verifies SigV4 signatures), node/npm (croner, fauxqs), tzdata.
DEB_PACKAGES=(
        build-essential autoconf automake libtool pkg-config
        libyaml-dev libsystemd-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev
        check python3 python3-botocore tzdata ca-certificates clang libclang-rt-14-dev systemd
)
# npm projects with lock files, installed with `npm ci`
NPM_DIRS=(tests/diff tests/fakes)

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
                for f in $(grep -l -E '^(FAIL|ERROR)' "$dir"/tests/*/*.trs "$dir"/tests/*.trs 2>/dev/null); do
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
        say "make distcheck"
        make -C "$top/build" -j"$jobs" distcheck >"$top/build/distcheck.out" 2>&1 || { tail -40 "$top/build/distcheck.out"; die "make distcheck failed (full log: build/distcheck.out)"; }
        say "all checks passed"
}

cmd_demo() {
        cmd_deps
        cmd_build
        local state="$top/state"
        mkdir -p "$state"
        say "starting schedulerd in the foreground (Ctrl-C stops it); state in $state"
        say "in another terminal: build/schedctl --socket $state/control.sock list"
        exec "$top/build/schedulerd" --config "$top/etc/schedulerd.yaml" \
                --state-dir "$state" --plugin-dir "$top/build/.libs" --socket "$state/control.sock"
}

# fuzz [SECONDS]: every libFuzzer target of tests/fuzz for SECONDS each (default 30), in build-fuzz/
cmd_fuzz() {
        FUZZ_OUT=${FUZZ_OUT:-$top/build-fuzz} "$top/tests/fuzz/run.sh" "${1:-30}"
}

case "${1:-}" in
        deps) cmd_deps ;;
        build) cmd_build ;;
        check) cmd_check ;;
        quick) cmd_quick ;;
        demo) cmd_demo ;;
        fuzz) cmd_fuzz "${2:-30}" ;;
        *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
