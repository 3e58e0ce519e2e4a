#!/bin/bash
# SPDX-License-Identifier: MIT
# The azi3 store's unit tests again, on a private PostgreSQL server (issue 15 item 7): the
# shared tests, the races between processes, and the PostgreSQL-only ones.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
exec "$top/tests/pg/with-pg-azi3.sh" "${top_builddir:-.}/tests/unit/test_azi3_store"
