#!/usr/bin/env bash
# check-layers.sh must refuse what the layering forbids: a copy of the tree with one forbidden
# include added at a time must fail, and the untouched copy must pass.
set -euo pipefail

top=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fresh() {
        rm -rf "$tmp/t"
        mkdir -p "$tmp/t"
        cp -r "$top/scheduler" "$top/jobs" "$top/include" "$tmp/t/"
        chmod -R u+w "$tmp/t" # make distcheck hands us a read-only tree
}

fresh
bash "$top/tests/check-layers.sh" "$tmp/t" >/dev/null || { echo "FAIL: the unmodified tree is refused"; exit 1; }

# expect_refused FILE INCLUDE: adding INCLUDE to FILE must make the check fail, naming FILE
expect_refused() {
        local file=$1 inc=$2 out
        fresh
        printf '#include "%s"\n' "$inc" >>"$tmp/t/$file"
        if out=$(bash "$top/tests/check-layers.sh" "$tmp/t" 2>&1); then
                echo "FAIL: $file including $inc was accepted"
                exit 1
        fi
        grep -q "^$file:" <<<"$out" || { echo "FAIL: the refusal does not name $file: $out"; exit 1; }
        echo "ok: $out"
}

expect_refused scheduler/basic/civil.c core/registry.h
expect_refused scheduler/basic/tz.h store/history.h
expect_refused scheduler/store/history-sqlite.c core/run.h
expect_refused scheduler/core/registry.c schedctl/format.h
expect_refused scheduler/core/run.c control/server.h
expect_refused jobs/azi3/window.c core/registry.h
expect_refused jobs/hello/hello.c store/history.h
echo "check-layers-selftest: every forbidden include was refused"
