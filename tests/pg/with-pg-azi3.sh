#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs a command with a private PostgreSQL server (tests/pg/pg-server.sh) started for it, its
# connection string in $AZI3_TEST_PG, and stops the server afterwards, whatever the outcome.
# Exits 77 (skipped) when PostgreSQL is not installed, so the SQLite-only path still passes.
#
#   tests/pg/with-pg-azi3.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/pg-server.sh" available || { echo "with-pg-azi3.sh: PostgreSQL not installed (contrib/dev.sh deps)" >&2; exit 77; }
dir=$(mktemp -d /tmp/schedulerd-pg-XXXXXX)
cleanup() {
        "$here/pg-server.sh" stop "$dir" >/dev/null 2>&1 || true
        rm -rf "$dir"
}
trap cleanup EXIT
AZI3_TEST_PG=$("$here/pg-server.sh" start "$dir")
export AZI3_TEST_PG
set +e
"$@"
rc=$?
exit $rc
