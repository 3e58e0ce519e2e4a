#!/usr/bin/env bash
# Builds every libFuzzer target of tests/fuzz with clang, straight from the sources (no
# configure, no libtool), into OUTDIR (default ./fuzz-out):
#   tests/fuzz/build.sh [OUTDIR]
# Each target is OUTDIR/fuzz_<name>; OUTDIR/plugins/ok.so is the test plugin fuzz_control's jobs
# use. Needs clang and its fuzzer runtime (Debian: clang libclang-rt-14-dev) and the -dev
# packages of libyaml, libsystemd, sqlite3, jansson and libpq.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-fuzz-out}
mkdir -p "$out/plugins"
out=$(cd "$out" && pwd)
CC=${CC:-clang}

# FUZZ_SANITIZE: the sanitizers besides fuzzer (default address,undefined)
san=${FUZZ_SANITIZE:-address,undefined}
CFLAGS=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -DPACKAGE_VERSION=\"fuzz\"
        -Wall -Wextra -Wno-unused-parameter -Werror
        "-fsanitize=fuzzer,$san" -fno-sanitize-recover=undefined
        -I"$top/include" -I"$top/scheduler" -I"$top/jobs" -I"$top/tests/fuzz")

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        "$CC" -x c - "-fsanitize=fuzzer,$san" -o "$out/.probe" 2>"$out/.probe.err"; then
        cat "$out/.probe.err" >&2
        echo "build.sh: $CC cannot link libFuzzer targets; expected clang with its fuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev)" >&2
        exit 1
fi
rm -f "$out/.probe" "$out/.probe.err"

s=$top/scheduler
a=$top/jobs/azi3
# the layers of scheduler/, by folder, so that files added to a layer need no change here
TIME_SRC=("$s/basic/parse-error.c" "$s/basic/civil.c" "$s/basic/tz.c" "$s/basic/duration.c")
BASIC_SRC=("$s"/basic/*.c)
# the registry reaches into the rest of core (job users, chains, commands): link the layer whole
REGISTRY_SRC=("${BASIC_SRC[@]}" "$s"/store/*.c "$s"/core/*.c)
DAEMON_SRC=("${BASIC_SRC[@]}" "$s"/store/*.c "$s"/core/*.c "$s"/control/*.c)
pc() { pkg-config "$@" || { echo "build.sh: pkg-config $* failed; install the -dev package" >&2; exit 1; }; }

# build NAME LIBS SOURCES...: LIBS is one word list ("" for none)
build() {
        local name=$1 libs=$2; shift 2
        echo "==> fuzz_$name" >&2
        # shellcheck disable=SC2086
        "$CC" "${CFLAGS[@]}" -o "$out/fuzz_$name" "$top/tests/fuzz/fuzz_$name.c" "$@" $libs
}

build duration "" "$s/basic/parse-error.c" "$s/basic/duration.c"
build cron "" "${TIME_SRC[@]}" "$s/basic/schedule.c"
build timefmt "" "${TIME_SRC[@]}" "$s/basic/timefmt.c"
build registry "$(pc --cflags --libs yaml-0.1 libsystemd sqlite3 jansson libpq) -ldl -lm" "${REGISTRY_SRC[@]}"
build azi3_config "$(pc --cflags --libs yaml-0.1 sqlite3 libpq)" "${TIME_SRC[@]}" "$a/day.c" "$a/config.c" "$a"/store*.c "$a/window.c" "$a/uuid.c"
build sqs_body "$(pc --cflags --libs jansson)" "$s/basic/parse-error.c" "$s/basic/civil.c" "$a/message.c"
build megazord "$(pc --cflags --libs jansson)" "$s/basic/parse-error.c" "$s/basic/civil.c" "$a/message.c"
build control "$(pc --cflags --libs yaml-0.1 libsystemd sqlite3 jansson libmicrohttpd libpq) -ldl -lm" "${DAEMON_SRC[@]}"

# the plugin fuzz_control's registry uses (no sanitizers: it is dlopen'ed into the target)
"$CC" -std=gnu11 -O1 -g -fPIC -shared -I"$top/include" -o "$out/plugins/ok.so" "$top/tests/plugins/ok.c"
echo "build.sh: targets in $out" >&2
