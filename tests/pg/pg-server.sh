#!/bin/bash
# SPDX-License-Identifier: MIT
# A private PostgreSQL server for the tests: initdb + pg_ctl in a directory of the caller's,
# as an unprivileged user (PostgreSQL refuses to run as root), listening on a Unix socket in
# that directory and on a free loopback port. Nothing of the machine's own clusters is used.
#
#   pg-server.sh start DIR     prints the libpq connection string on stdout
#   pg-server.sh stop DIR      fast shutdown, then removes nothing (the caller owns DIR)
#   pg-server.sh restart DIR   stop + start on the same data, same port
#   pg-server.sh conninfo DIR  the connection string again
#   pg-server.sh available     exit 0 if initdb and pg_ctl are installed
#
# As root the server runs as the user in $PG_TEST_USER (default "nobody"); DIR is chowned
# to that user. The connection string names the database "postgres" and user "postgres"
# with trust authentication, which is fine for a socket only the test's tree can reach.
set -euo pipefail

pg_bin() {
        local d
        for d in ${PG_BINDIR:-} /usr/lib/postgresql/*/bin; do
                [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
        done
        command -v initdb >/dev/null && dirname "$(command -v initdb)" && return 0
        return 1
}

as_owner() {
        if [ "$(id -u)" = 0 ]; then
                runuser -u "${PG_TEST_USER:-nobody}" -- "$@"
        else
                "$@"
        fi
}

free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

conninfo() {
        local dir=$1
        echo "host=$dir/sock port=$(cat "$dir/port") dbname=postgres user=postgres connect_timeout=5"
}

cmd=${1:-}; dir=${2:-}
case "$cmd" in
available)
        pg_bin >/dev/null
        ;;
start)
        [ -n "$dir" ] || { echo "usage: $0 start DIR" >&2; exit 2; }
        bin=$(pg_bin) || { echo "pg-server.sh: initdb/pg_ctl not found; run contrib/dev.sh deps (postgresql-15)" >&2; exit 1; }
        dir=$(realpath -m "$dir")
        mkdir -p "$dir/sock"
        if [ "$(id -u)" = 0 ]; then
                chown "${PG_TEST_USER:-nobody}" "$dir" "$dir/sock"
                # The server user must be able to reach DIR: open the parents for traversal only.
                p=$(dirname "$dir")
                while [ "$p" != / ]; do
                        perm=$(stat -c %A "$p")
                        [ "${perm:9:1}" = x ] || [ "${perm:9:1}" = t ] || chmod o+x "$p"
                        p=$(dirname "$p")
                done
        fi
        if [ ! -f "$dir/data/PG_VERSION" ]; then
                as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
                        || { cat "$dir/initdb.log" >&2; exit 1; }
        fi
        [ -f "$dir/port" ] || free_port >"$dir/port"
        port=$(cat "$dir/port")
        # fsync off: the tests judge what the server returns, not crash durability of the disk.
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
                start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
        conninfo "$dir"
        ;;
stop)
        bin=$(pg_bin)
        dir=$(realpath -m "$dir")
        [ -f "$dir/data/postmaster.pid" ] || exit 0
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
        ;;
restart)
        "$0" stop "$dir"
        "$0" start "$dir"
        ;;
conninfo)
        conninfo "$(realpath -m "$dir")"
        ;;
*)
        echo "usage: $0 start|stop|restart|conninfo DIR | available" >&2
        exit 2
        ;;
esac
