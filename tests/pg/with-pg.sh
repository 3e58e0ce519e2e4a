#!/bin/bash
# SPDX-License-Identifier: MIT
# with-pg.sh PROGRAM [ARGS...]: runs PROGRAM against a private PostgreSQL server started for it
# (tests/pg/pg-server.sh, in a fresh temporary directory) and stopped and removed after it,
# however PROGRAM ends. PROGRAM finds the server's libpq connection string in
# SCHEDULERD_TEST_PG and its directory (for pg-server.sh stop/start) in SCHEDULERD_TEST_PG_DIR.
# Exits 77 (automake's SKIP) when the PostgreSQL server programs are not installed, saying so.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
if ! "$here/pg-server.sh" available; then
        echo "with-pg.sh: initdb/pg_ctl not installed; contrib/dev.sh deps installs postgresql-15. Skipping." >&2
        exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/schedulerd-pg.XXXXXX")
cleanup() {
        "$here/pg-server.sh" stop "$dir" >/dev/null 2>&1 || true
        rm -rf "$dir"
}
trap cleanup EXIT
SCHEDULERD_TEST_PG=$("$here/pg-server.sh" start "$dir")
SCHEDULERD_TEST_PG_DIR=$dir
export SCHEDULERD_TEST_PG SCHEDULERD_TEST_PG_DIR
rc=0
"$@" || rc=$?
exit $rc
