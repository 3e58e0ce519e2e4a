#!/bin/sh
# SPDX-License-Identifier: MIT
# Differential test of scheduler/basic/schedule.c against croner (see diff-croner.mjs).
# Needs the pinned croner installed: (cd tests/diff && npm ci). Skips (77) only if it is not.
# DIFF_CASES and DIFF_SEED override the number of cases and the seed.
set -eu
srcdir="${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/diff"
builddir="${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/diff"

if [ ! -d "$srcdir/node_modules/croner" ]; then
        echo "SKIP: $srcdir/node_modules is missing; run: (cd $srcdir && npm ci)"
        exit 77
fi
command -v node >/dev/null 2>&1 || { echo "FAIL: node is not installed" >&2; exit 1; }

exec node "$srcdir/diff-croner.mjs" "$builddir/schedule-diff-driver" "${DIFF_CASES:-10000}" "${DIFF_SEED:-20260329}"
