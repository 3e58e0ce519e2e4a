/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "store/pg-connect.h"

void pg_message_line(const char *msg, char *buf, size_t len) {
        snprintf(buf, len, "%s", isempty(msg) ? "unknown error" : msg);
        for (char *p = buf; *p; p++)
                if (*p == '\n') {
                        if (p[1] == '\0')
                                *p = '\0';
                        else
                                *p = ' ';
                }
}

int pg_connect_bounded(const char *conninfo, const char *app, char *err, size_t errlen, PGconn **ret) {
        char timeout[16], sql[96];
        const char *keywords[8], *values[8];
        size_t n = 0;
        PGconn *c;

        /* ours first: the string (and libpq's environment) override them */
        snprintf(timeout, sizeof timeout, "%d", PG_CONNECT_TIMEOUT_S);
        if (!getenv("PGCONNECT_TIMEOUT")) {
                keywords[n] = "connect_timeout";
                values[n++] = timeout;
        }
        if (app && !getenv("PGAPPNAME")) {
                keywords[n] = "application_name";
                values[n++] = app;
        }
        keywords[n] = "keepalives_idle";
        values[n++] = "5";
        keywords[n] = "keepalives_interval";
        values[n++] = "2";
        keywords[n] = "tcp_user_timeout";
        values[n++] = "10000";
        keywords[n] = "dbname";
        values[n++] = conninfo;
        keywords[n] = NULL;
        values[n] = NULL;

        c = PQconnectdbParams(keywords, values, 1);
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        if (PQstatus(c) != CONNECTION_OK) {
                pg_message_line(PQerrorMessage(c), err, errlen);
                PQfinish(c);
                return -ENOTCONN;
        }
        snprintf(sql, sizeof sql, "SET statement_timeout = %d; SET client_min_messages = warning",
                 PG_STATEMENT_TIMEOUT_MS);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                char line[512];
                pg_message_line(res ? PQresultErrorMessage(res) : PQerrorMessage(c), line, sizeof line);
                snprintf(err, errlen, "setting up the session: %s", line);
                PQclear(res);
                PQfinish(c);
                return -EIO;
        }
        PQclear(res);
        *ret = c;
        return 0;
}
