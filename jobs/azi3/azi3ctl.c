/* SPDX-License-Identifier: MIT */
/* azi3ctl: a read-only report over the azi-3 store, the window history for audit and
 * debugging (issue 6):
 *
 *   azi3ctl [--config FILE | --store DB] sessions [--day YYYY-MM-DD] [--robot ID] [--json]
 *   azi3ctl [--config FILE | --store DB] windows SESSION [--json]
 *
 * Times are shown in the rule's zone when the configuration names the rule, else in UTC.
 * Exit codes: 0 ok, 1 the report could not be made (no store, no such session), 2 usage. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "azi3/service.h"
#include "basic/timefmt.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/schedulerd/azi3.yaml"

static const char usage_text[] =
        "usage: azi3ctl [--config FILE | --store DB] sessions [--day YYYY-MM-DD] [--robot ID] [--json]\n"
        "       azi3ctl [--config FILE | --store DB] windows SESSION [--json]\n"
        "Reports the azi-3 monitoring sessions and their window history (read-only).\n"
        "  --config FILE  the azi-3 configuration naming the store (default " DEFAULT_CONFIG ")\n"
        "  --store DB     the store itself, a file or a PostgreSQL connection string\n"
        "                 (times are then shown in UTC)\n";

_printf_(1, 2) static int usage(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "azi3ctl: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n%s", usage_text);
        return 2;
}

static const tz *session_zone(const azi3_config *c, const azi3_session *se) {
        const azi3_rule *r = c ? azi3_config_find_rule(c, se->robot_id, se->rule_id) : NULL;

        return r ? r->zone : NULL;
}

static char *fmt_time(usec_t t, const tz *z, char buf[static TIMEFMT_MAX]) {
        if (t == 0)
                return strcpy(buf, "-");
        return timefmt_rfc3339(t, z, false, buf, TIMEFMT_MAX);
}

static json_t *json_time(usec_t t, const tz *z) {
        char buf[TIMEFMT_MAX];

        if (t == 0)
                return json_null();
        return json_string(timefmt_rfc3339(t, z, true, buf, sizeof(buf)));
}

static int count_alarms(azi3_store *s, int64_t session_id, size_t *ret_windows, size_t *ret_alarmed, size_t *ret_owed) {
        _cleanup_free_ azi3_window *w = NULL;
        size_t n = 0, alarmed = 0, owed = 0;
        int r;

        r = azi3_store_windows_list(s, session_id, &w, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                alarmed += w[i].alarm == WINDOW_ALARM_ALARMED;
                owed += w[i].alarm == WINDOW_ALARM_OWED;
        }
        *ret_windows = n;
        *ret_alarmed = alarmed;
        *ret_owed = owed;
        return 0;
}

static int cmd_sessions(azi3_store *s, const azi3_config *c, const char *day, int64_t robot, bool json) {
        _cleanup_free_ azi3_session *v = NULL;
        json_t *arr = NULL;
        size_t n = 0;
        int r;

        r = azi3_store_sessions_list(s, day, robot, &v, &n);
        if (r < 0) {
                fprintf(stderr, "azi3ctl: cannot list sessions: %s\n", azi3_store_last_error(s));
                return 1;
        }
        if (json)
                arr = json_array();
        else
                printf("%-4s %-6s %-18s %-10s %-25s %-25s %-9s %-13s %-6s %-7s %s\n", "ID", "ROBOT", "RULE", "DAY", "A",
                       "B", "STATE", "RESULT", "SUB", "WINDOWS", "ALARMS");
        for (size_t i = 0; i < n; i++) {
                const azi3_session *se = &v[i];
                const tz *z = session_zone(c, se);
                size_t nw = 0, alarmed = 0, owed = 0;
                char a[TIMEFMT_MAX], b[TIMEFMT_MAX];
                const char *result = se->completed ? session_result_to_string(se->result) : "-";

                r = count_alarms(s, se->id, &nw, &alarmed, &owed);
                if (r < 0) {
                        fprintf(stderr, "azi3ctl: cannot read the windows of session %" PRId64 ": %s\n", se->id,
                                azi3_store_last_error(s));
                        json_decref(arr);
                        return 1;
                }
                if (json) {
                        json_t *o = json_pack("{sI sI ss ss so so ss so so sI sI sI so so}", "id", (json_int_t) se->id,
                                              "robot_id", (json_int_t) se->robot_id, "rule_id", se->rule_id,
                                              "local_day", se->local_day, "a", json_time(se->params.a, z), "b",
                                              json_time(se->params.b, z), "state", se->completed ? "completed" : "open",
                                              "result", se->completed ? json_string(result) : json_null(),
                                              "subscription_id",
                                              se->subscription_id ? json_integer(se->subscription_id) : json_null(),
                                              "windows", (json_int_t) nw, "alarms_posted", (json_int_t) alarmed,
                                              "alarms_owed", (json_int_t) owed, "created",
                                              json_time(se->created_usec, z), "completed",
                                              json_time(se->completed_usec, z));
                        json_array_append_new(arr, o);
                } else {
                        char sub[24] = "-", alarms[32];

                        if (se->subscription_id)
                                snprintf(sub, sizeof(sub), "%" PRId64, se->subscription_id);
                        snprintf(alarms, sizeof(alarms), owed ? "%zu (+%zu owed)" : "%zu", alarmed, owed);
                        printf("%-4" PRId64 " %-6" PRId64 " %-18s %-10s %-25s %-25s %-9s %-13s %-6s %-7zu %s\n", se->id,
                               se->robot_id, se->rule_id, se->local_day, fmt_time(se->params.a, z, a),
                               fmt_time(se->params.b, z, b), se->completed ? "completed" : "open", result, sub, nw,
                               alarms);
                }
        }
        if (json) {
                json_dumpf(arr, stdout, JSON_INDENT(2));
                putchar('\n');
                json_decref(arr);
        } else if (n == 0)
                printf("(no sessions)\n");
        return 0;
}

static const char *how_closed(const azi3_window *w) {
        if (w->current)
                return "current";
        return window_close_reason_to_string(w->reason);
}

static int cmd_windows(azi3_store *s, const azi3_config *c, int64_t session_id, bool json) {
        _cleanup_free_ azi3_window *w = NULL;
        azi3_session se;
        json_t *arr = NULL;
        const tz *z;
        size_t n = 0;
        int r;

        r = azi3_store_session_get(s, session_id, &se);
        if (r == -ENOENT) {
                fprintf(stderr, "azi3ctl: no session %" PRId64 " in the store (see `azi3ctl sessions`)\n", session_id);
                return 1;
        }
        if (r >= 0)
                r = azi3_store_windows_list(s, session_id, &w, &n);
        if (r < 0) {
                fprintf(stderr, "azi3ctl: cannot read session %" PRId64 ": %s\n", session_id, azi3_store_last_error(s));
                return 1;
        }
        z = session_zone(c, &se);
        if (json)
                arr = json_array();
        else
                printf("%-5s %-25s %-25s %-8s %-25s %-22s %s\n", "ID", "SINCE", "UNTIL", "CLOSED", "CLOSED AT", "BY",
                       "ALARM");
        for (size_t i = 0; i < n; i++) {
                const azi3_window *x = &w[i];
                const char *alarm = window_alarm_state_to_string(x->alarm);

                if (json) {
                        json_t *o = json_pack(
                                "{sI so so ss so so so ss ss so so}", "id", (json_int_t) x->id, "since",
                                json_time(x->span.since, z), "until", json_time(x->span.until, z), "closed",
                                how_closed(x), "closed_at", json_time(x->closed_usec, z), "closing_event_id",
                                x->closing_event_id ? json_integer(x->closing_event_id) : json_null(), "alarm_event_id",
                                x->alarm_event_id ? json_integer(x->alarm_event_id) : json_null(), "alarm", alarm,
                                "alarm_reference_id", x->alarm_reference_id, "alarm_posted",
                                json_time(x->alarm_posted_usec, z), "until_usec", json_integer((json_int_t) x->span.until));
                        json_object_set_new(o, "since_usec", json_integer((json_int_t) x->span.since));
                        json_array_append_new(arr, o);
                } else {
                        char since[TIMEFMT_MAX], until[TIMEFMT_MAX], closed[TIMEFMT_MAX], by[64] = "-",
                                al[AZI3_REFERENCE_ID_MAX + 64] = "-";

                        if (x->closing_event_id)
                                snprintf(by, sizeof(by), "event %" PRId64, x->closing_event_id);
                        else if (!x->current)
                                snprintf(by, sizeof(by), "expiration step");
                        if (x->alarm == WINDOW_ALARM_ALARMED)
                                snprintf(al, sizeof(al), "alarmed: event %" PRId64 " (%s)", x->alarm_event_id,
                                         x->alarm_reference_id);
                        else if (x->alarm != WINDOW_ALARM_NONE)
                                snprintf(al, sizeof(al), "%s (%s)", window_alarm_state_to_string(x->alarm),
                                         x->alarm_reference_id);
                        printf("%-5" PRId64 " %-25s %-25s %-8s %-25s %-22s %s\n", x->id,
                               fmt_time(x->span.since, z, since), fmt_time(x->span.until, z, until), how_closed(x),
                               fmt_time(x->closed_usec, z, closed), by, al);
                }
        }
        if (json) {
                json_dumpf(arr, stdout, JSON_INDENT(2));
                putchar('\n');
                json_decref(arr);
        }
        return 0;
}

static int parse_id(const char *s, int64_t *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "store", required_argument, NULL, 's' },
                { "day", required_argument, NULL, 'd' },    { "robot", required_argument, NULL, 'r' },
                { "json", no_argument, NULL, 'j' },         { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(azi3_config_freep) azi3_config *config = NULL;
        _cleanup_(azi3_store_closep) azi3_store *store = NULL;
        const char *config_path = NULL, *store_path = NULL, *day = NULL, *cmd;
        int64_t robot = -1, session = 0;
        bool json = false;
        char err[512] = "";
        int c, r;

        /* GNU getopt permutes: options may come before or after the command */
        while ((c = getopt_long(argc, argv, "c:s:d:r:jh", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 's':
                        store_path = optarg;
                        break;
                case 'd': {
                        day_date d;
                        if (day_date_parse(optarg, &d) < 0)
                                return usage("--day '%s' is not a date (expected YYYY-MM-DD)", optarg);
                        day = optarg;
                        break;
                }
                case 'r':
                        if (parse_id(optarg, &robot) < 0)
                                return usage("--robot '%s' is not a robot id (expected an integer >= 0)", optarg);
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        fputs(usage_text, stdout);
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind >= argc)
                return usage("%s", "missing command (sessions or windows)");
        cmd = argv[optind++];
        if (strcmp(cmd, "windows") == 0) {
                if (optind >= argc)
                        return usage("%s", "windows needs a SESSION id (see `azi3ctl sessions`)");
                if (parse_id(argv[optind], &session) < 0 || session == 0)
                        return usage("'%s' is not a session id (expected an integer > 0)", argv[optind]);
                optind++;
        }
        if (optind < argc)
                return usage("unexpected argument '%s'", argv[optind]);
        if (strcmp(cmd, "sessions") != 0 && strcmp(cmd, "windows") != 0)
                return usage("unknown command '%s' (expected sessions or windows)", cmd);
        if (strcmp(cmd, "windows") == 0 && (day || robot >= 0))
                return usage("%s", "--day and --robot apply to sessions only");
        if (config_path && store_path)
                return usage("%s", "give --config or --store, not both");

        if (!store_path) {
                azi3_config_errors errors = {};

                if (!config_path)
                        config_path = DEFAULT_CONFIG;
                r = azi3_config_load(config_path, &config, &errors);
                if (r >= 0)
                        azi3_config_errors_clear(&errors); /* holds the file name even without errors */
                if (r < 0) {
                        for (size_t i = 0; i < errors.n; i++) {
                                _cleanup_free_ char *line = azi3_config_error_format(&errors, i);
                                fprintf(stderr, "azi3ctl: %s\n", line ? line : "(out of memory)");
                        }
                        if (errors.n == 0)
                                fprintf(stderr, "azi3ctl: cannot load %s: %s\n", config_path, strerror(-r));
                        azi3_config_errors_clear(&errors);
                        return 1;
                }
                store_path = config->store;
        }
        /* a report must not create a store where there was none (a PostgreSQL store is a
         * database the operator made; its schema azi3 is created by whoever opens it first) */
        if (!azi3_store_is_conninfo(store_path) && access(store_path, F_OK) < 0) {
                fprintf(stderr, "azi3ctl: no azi-3 store at %s (%m); the jobs create it on their first run\n",
                        store_path);
                return 1;
        }
        r = azi3_store_open(store_path, err, sizeof(err), &store);
        if (r < 0) {
                fprintf(stderr, "azi3ctl: %s\n", err[0] ? err : strerror(-r));
                return 1;
        }
        if (strcmp(cmd, "sessions") == 0)
                return cmd_sessions(store, config, day, robot, json);
        return cmd_windows(store, config, session, json);
}
