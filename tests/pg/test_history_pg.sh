#!/bin/sh
# SPDX-License-Identifier: MIT
# The history unit tests on both backends: tests/unit/test_history with a private PostgreSQL.
exec "$top_srcdir/tests/pg/with-pg.sh" "$top_builddir/tests/unit/test_history"
