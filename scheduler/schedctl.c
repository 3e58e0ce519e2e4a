/* SPDX-License-Identifier: MIT */
/* schedctl: the admin command. Offline verbs (check, next) work on files; the others talk to
 * the daemon over its control socket. Exit codes: 0 ok, 1 the action failed, 2 usage error,
 * 3 daemon not reachable. */

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>

#include "clock.h"
#include "diag.h"
#include "duration.h"
#include "jobctx.h"
#include "log.h"
#include "registry.h"
#include "schedule.h"
#include "timefmt.h"
#include "tz.h"

#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/schedulerd/schedulerd.yaml"

static int log_oom(void) {
        fputs("schedctl: out of memory\n", stderr);
        return EXIT_FAILURE;
}

static const char *arg_config = DEFAULT_CONFIG;
static const char *arg_socket = NULL;
static bool arg_json = false;

static void help(FILE *f) {
        fprintf(f,
                "Usage: schedctl [--config FILE] [--socket PATH] COMMAND [ARGS...]\n"
                "\n"
                "Offline commands:\n"
                "  check [FILE]                  validate a registry (default: --config) and load its plugins\n"
                "  next EXPR|JOB [--tz ZONE] [--from TIME] [-n N] [--json]\n"
                "                                show the next N (default 5) fire times\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE             registry (default %s)\n"
                "  -s, --socket PATH             control socket (default: from the registry)\n"
                "      --json                    machine-readable output\n"
                "  -h, --help                    this text\n"
                "\n"
                "Exit status: 0 ok, 1 action failed, 2 usage error, 3 daemon not reachable.\n",
                DEFAULT_CONFIG);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("schedctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'schedctl --help'.\n", stderr);
        return EXIT_USAGE;
}

/* --- check ------------------------------------------------------------------ */

static int verb_check(int argc, char **argv) {
        const char *path = argc > 1 ? argv[1] : arg_config;
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list diags = {};
        int q;

        if (argc > 2)
                return usage_error("check takes at most one FILE, found %d arguments", argc - 1);

        q = registry_load(path, REGISTRY_LOAD_PLUGINS, &r, &diags);
        if (q == -ENOENT && diags.n == 0) {
                fprintf(stderr, "%s: no such file; give the registry as schedctl check FILE\n", path);
                return EXIT_FAILURE;
        }
        if (q >= 0)
                q = jobctx_init_jobs(r, false, &diags);
        for (size_t i = 0; i < diags.n; i++) {
                _cleanup_free_ char *s = diag_format(&diags.items[i]);
                puts(s ?: diags.items[i].message);
        }
        if (q < 0 && diags.n == 0)
                printf("%s: %s\n", path, strerror(-q));
        if (q >= 0 && !arg_json)
                printf("%s: ok, %zu job%s\n", path, r->n_jobs, r->n_jobs == 1 ? "" : "s");
        diag_list_clear(&diags);
        return q < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* --- next ------------------------------------------------------------------- */

/* "3d 4h", "12m 5s", "now": the two largest units, as systemctl list-timers does. */
static char *format_left(usec_t d, char *buf, size_t n) {
        static const struct {
                const char *u;
                usec_t v;
        } units[] = { { "y", 365 * USEC_PER_DAY }, { "d", USEC_PER_DAY }, { "h", USEC_PER_HOUR },
                      { "min", USEC_PER_MINUTE }, { "s", USEC_PER_SEC } };
        size_t len = 0, shown = 0;

        buf[0] = '\0';
        if (d < USEC_PER_SEC) {
                snprintf(buf, n, "now");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(units) && shown < 2; i++) {
                if (d < units[i].v && shown == 0)
                        continue;
                usec_t k = d / units[i].v;
                d %= units[i].v;
                if (k == 0) {
                        shown++;
                        continue;
                }
                int w = snprintf(buf + len, n - len, "%s%" PRIu64 "%s", len ? " " : "", k, units[i].u);
                if (w < 0 || (size_t) w >= n - len)
                        break;
                len += (size_t) w;
                shown++;
        }
        return buf;
}

static bool looks_like_expression(const char *s) {
        return s[0] == '@' || strchr(s, ' ') || strchr(s, '*');
}

static int verb_next(int argc, char **argv) {
        static const struct option opts[] = {
                { "tz", required_argument, NULL, 'z' },
                { "from", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *zone_name = NULL, *from_s = NULL, *what;
        _cleanup_free_ char *expr = NULL;
        unsigned count = 5;
        int c;

        optind = 0; /* 0, not 1: glibc re-initialises (and permutes again) only then */
        while ((c = getopt_long(argc, argv, "n:z:f:jh", opts, NULL)) >= 0) {
                char *end;
                switch (c) {
                case 'n':
                        errno = 0;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (errno || *end || v == 0 || v > 100000)
                                return usage_error("-n: \"%s\" is not a count between 1 and 100000", optarg);
                        count = (unsigned) v;
                        break;
                case 'z':
                        zone_name = optarg;
                        break;
                case 'f':
                        from_s = optarg;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case 'h':
                        help(stdout);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1)
                return usage_error("next takes one EXPR or JOB, e.g. schedctl next \"0 7 * * *\" --tz Europe/Amsterdam");
        what = argv[optind];

        _cleanup_(registry_freep) registry *r = NULL;
        schedule s;
        parse_error e = {};
        if (looks_like_expression(what)) {
                if (schedule_parse(what, &s, &e) < 0) {
                        fprintf(stderr, "schedctl: schedule \"%s\": %s (at column %zu)\n", what, e.message, e.offset + 1);
                        return EXIT_USAGE;
                }
                expr = strdup(what);
        } else {
                diag_list diags = {};
                int q = registry_load(arg_config, REGISTRY_IGNORE_PLUGINS, &r, &diags);
                diag_list_clear(&diags);
                if (q < 0) {
                        if (schedule_parse(what, &s, &e) >= 0)
                                expr = strdup(what);
                        else {
                                fprintf(stderr,
                                        "schedctl: \"%s\" is not a schedule expression, and the registry %s could not be "
                                        "read to look it up as a job (%s); run schedctl check %s\n",
                                        what, arg_config, strerror(-q), arg_config);
                                return EXIT_USAGE;
                        }
                } else {
                        job_def *j = registry_find(r, what);
                        if (!j) {
                                fprintf(stderr, "schedctl: no job \"%s\" in %s, and it is not a schedule expression\n",
                                        what, arg_config);
                                return EXIT_USAGE;
                        }
                        s = j->schedule;
                        expr = strdup(j->schedule_expr);
                        if (!zone_name)
                                zone_name = j->timezone;
                }
        }
        if (!expr)
                return log_oom();

        const tz *z = NULL;
        tz *zz;
        int q = tz_load(zone_name ?: "UTC", &zz);
        if (q < 0) {
                fprintf(stderr, "schedctl: time zone \"%s\": %s\n", zone_name,
                        q == -ENOENT ? "unknown zone (no such file in the tzdata)" : "not a valid zone name");
                return EXIT_USAGE;
        }
        z = zz;

        usec_t from = clock_now_realtime();
        if (from_s && timefmt_parse(from_s, z, &from, &e) < 0) {
                fprintf(stderr, "schedctl: --from: %s\n", e.message);
                return EXIT_USAGE;
        }

        _cleanup_(json_decrefp) json_t *arr = json_array();
        if (!arr)
                return log_oom();
        if (!arg_json)
                printf("%-27s %-22s %s\n", s.kind == SCHEDULE_EVERY ? "NEXT (relative to FROM)" : "NEXT (local)", "UTC",
                       "LEFT");

        int64_t t = (int64_t) (from / USEC_PER_SEC);
        for (unsigned i = 0; i < count; i++) {
                usec_t fire;
                if (s.kind == SCHEDULE_EVERY)
                        fire = from + (usec_t) (i + 1) * s.interval;
                else {
                        int64_t next;
                        q = schedule_next(&s, z, t, &next);
                        if (q == -ERANGE)
                                break;
                        if (q < 0) {
                                fprintf(stderr, "schedctl: cannot evaluate \"%s\": %s\n", expr, strerror(-q));
                                return EXIT_FAILURE;
                        }
                        t = next;
                        fire = (usec_t) next * USEC_PER_SEC;
                }
                char lb[TIMEFMT_MAX], ub[TIMEFMT_MAX], left[64];
                timefmt_rfc3339(fire, z, false, lb, sizeof(lb));
                timefmt_rfc3339(fire, NULL, false, ub, sizeof(ub));
                format_left(fire - from, left, sizeof(left));
                if (arg_json) {
                        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "utc", ub, "local", lb, "zone", tz_name(z),
                                              "usec", (json_int_t) fire, "left_usec", (json_int_t) (fire - from));
                        if (!o || json_array_append_new(arr, o) < 0)
                                return log_oom();
                } else
                        printf("%-27s %-22s %s\n", lb, ub, left);
        }
        if (arg_json) {
                _cleanup_free_ char *out = json_dumps(arr, JSON_INDENT(2));
                if (!out)
                        return log_oom();
                puts(out);
        }
        return EXIT_SUCCESS;
}

/* --- main ------------------------------------------------------------------- */

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
} verbs[] = {
        { "check", verb_check },
        { "next", verb_next },
};

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        log_open("schedctl");
        /* '+': stop at the verb so its own options are parsed by the verb */
        while ((c = getopt_long(argc, argv, "+c:s:jh", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 's':
                        arg_socket = optarg;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case 'h':
                        help(stdout);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc)
                return usage_error("missing COMMAND");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name)) {
                        int r = verbs[i].fn(argc - optind, argv + optind);
                        tz_cache_clear();
                        return r;
                }
        return usage_error("unknown command \"%s\"", argv[optind]);
}
