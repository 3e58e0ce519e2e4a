#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/build.sh) and runs each for SECONDS (default 30):
#   tests/fuzz/run.sh [SECONDS]
# Environment: FUZZ_OUT (build and work directory, default ./build-fuzz in the checkout),
# FUZZ_TARGETS (names to run, default all), FUZZ_JOBS (targets run at once, default 1).
# Each target starts from its checked-in seeds, tests/fuzz/corpus/NAME, plus what earlier runs
# found (kept in FUZZ_OUT/corpus/NAME, never written back to the source tree). A crash leaves
# its input in FUZZ_OUT/artifacts/NAME/ and makes the script fail; minimize it with
#   FUZZ_OUT/fuzz_NAME -minimize_crash=1 -runs=10000 ARTIFACT
# and, once fixed, add it to tests/fuzz/corpus/NAME so `make check` replays it for good.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
secs=${1:-30}
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, got \"$secs\"" >&2; exit 2 ;; esac
out=${FUZZ_OUT:-$top/build-fuzz}
targets=${FUZZ_TARGETS:-"duration cron timefmt registry azi3_config sqs_body megazord control"}
njobs=${FUZZ_JOBS:-1}

"$top/tests/fuzz/build.sh" "$out"
out=$(cd "$out" && pwd)

run_one() {
        local name=$1 log=$out/logs/$1.log rc=0 dict=()
        # tokens of the JSON protocols, so mutations reach past the syntax
        [ -f "$top/tests/fuzz/$name.dict" ] && dict=(-dict="$top/tests/fuzz/$name.dict")
        mkdir -p "$out/corpus/$name" "$out/artifacts/$name" "$out/logs"
        FUZZ_PLUGIN_DIR=$out/plugins ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
                "$out/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
                -artifact_prefix="$out/artifacts/$name/" "$out/corpus/$name" "$top/tests/fuzz/corpus/$name" \
                >"$log" 2>&1 || rc=$?
        local execs cov
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
        if [ "$rc" -ne 0 ]; then
                printf '%-12s FAILED (exit %s) after %s executions; see %s and %s\n' "$name" "$rc" "${execs:-?}" "$log" \
                        "$out/artifacts/$name/"
                return 1
        fi
        printf '%-12s ok: %s executions in %ss, %s, corpus %s files\n' "$name" "${execs:-?}" "$secs" "${cov:-cov: ?}" \
                "$(find "$out/corpus/$name" -type f | wc -l)"
}
export -f run_one
export out secs top

echo "==> fuzzing each of: $targets (${secs}s each, $njobs at a time)" >&2
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "$njobs" -I{} bash -c 'run_one "$@"' _ {}
