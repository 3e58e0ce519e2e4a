/* SPDX-License-Identifier: MIT */
/* schedctl: the admin command. Offline verbs (check, next) work on files; the others talk to
 * the daemon over its control socket. Exit codes: 0 ok, 1 the action failed, 2 usage error,
 * 3 daemon not reachable. */

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>

#include "basic/clock.h"
#include "basic/diag.h"
#include "basic/duration.h"
#include "core/jobctx.h"
#include "basic/log.h"
#include "core/registry.h"
#include "core/state-dir.h"
#include "basic/run-status.h"
#include "schedctl/client.h"
#include "schedctl/crontab-import.h"
#include "schedctl/format.h"
#include "basic/schedule.h"
#include "basic/jitter.h"
#include "basic/timefmt.h"
#include "basic/tz.h"
#include "control/protocol.h"

/* --json output is for programs but lands on terminals too: everything past ASCII (the C1
 * controls U+0080-U+009F among it, which a terminal may take as commands) as \uXXXX. */
#define JSON_OUT_FLAGS (JSON_INDENT(2) | JSON_ENSURE_ASCII)

#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/schedulerd/schedulerd.yaml"
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#define DEFAULT_SOCKET RUNSTATEDIR "/schedulerd/control.sock"

static int log_oom(void) {
        fputs("schedctl: out of memory\n", stderr);
        return EXIT_FAILURE;
}

static const char *arg_config = DEFAULT_CONFIG;
static const char *arg_socket = NULL;
static bool arg_json = false;
static bool arg_utc = false;

static void help(FILE *f) {
        fprintf(f,
                "Usage: schedctl [--config FILE] [--socket PATH] COMMAND [ARGS...]\n"
                "\n"
                "Commands talking to schedulerd:\n"
                "  list                          every job: NEXT, LEFT, LAST, PASSED, last status, runs\n"
                "  status JOB                    a job's definition, state, next fires and last runs\n"
                "  run JOB [--at TIME] [--wait [--timeout D]]\n"
                "                                start a run now (standing for TIME), optionally wait for it\n"
                "  enable JOB, disable JOB       let a job fire on its schedule, or not (persisted)\n"
                "  history [JOB] [-n N] [--since TIME] [--status S] [--output]\n"
                "                                past runs, newest first\n"
                "  reload                        re-read the registry (as SIGHUP) and say whether it was taken\n"
                "  metrics                       the daemon's metrics, Prometheus text format\n"
                "  pause JOB [--until TIME], resume JOB\n"
                "                                hold back a job's fires, or let them run again (persisted)\n"
                "  backfill JOB --from TIME --to TIME [--dry-run]\n"
                "                                run every fire instant of a past range, oldest first\n"
                "  nodes                         the cluster's nodes: lease, clock offset, registry, runs\n"
                "\n"
                "Offline commands:\n"
                "  check [FILE]                  validate a registry (default: --config) and load its plugins\n"
                "  next EXPR|JOB [--tz ZONE] [--from TIME] [-n N]\n"
                "                                show the next N (default 5) fire times\n"
                "  import-crontab [FILE|-]       a crontab as registry YAML to review (jobs running commands)\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE             registry (default %s)\n"
                "  -s, --socket PATH             control socket (default: the registry's control_socket)\n"
                "      --json                    machine-readable output (fields in schedctl(1))\n"
                "      --utc                     show times in UTC instead of each job's zone\n"
                "  -h, --help                    this text; COMMAND -h: that command's\n"
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

/* What start-up would refuse beyond the registry: the state directory and the socket's. */
static int check_startup(const char *path, const registry *r) {
        _cleanup_free_ char *sock_dir = r->control_socket ? strdup(r->control_socket) : NULL;
        const char *dirs[2] = { r->state_dir, NULL };
        const char *what[2] = { "state_dir", "control_socket's directory" };
        int q = 0;

        if (sock_dir && strrchr(sock_dir, '/')) {
                *strrchr(sock_dir, '/') = '\0';
                dirs[1] = sock_dir;
        }
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *why = NULL;
                if (isempty(dirs[i]) || state_dir_check(dirs[i], &why) >= 0)
                        continue;
                printf("%s: %s %s\n", path, what[i], why ?: dirs[i]);
                q = -EINVAL;
        }
        return q;
}

static int verb_check(int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list diags = {};
        int q, c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "jh", opts, NULL)) >= 0)
                switch (c) {
                case 'j':
                        arg_json = true;
                        break;
                case 'h':
                        printf("Usage: schedctl [--config FILE] check [FILE]\n\n"
                               "Validates a registry (default: --config, %s) and loads its plugins, printing\n"
                               "every error with its file, line and column. Exit status 0 if it is valid, else 1.\n",
                               arg_config);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_USAGE;
                }
        if (argc - optind > 1)
                return usage_error("check takes at most one FILE, found %d arguments", argc - optind);
        const char *path = optind < argc ? argv[optind] : arg_config;

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
        if (q >= 0 && check_startup(path, r) < 0) {
                diag_list_clear(&diags);
                return EXIT_FAILURE;
        }
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

/* A random_delay as seconds with milliseconds ("29.779s"): microseconds are noise here. */
static char *fmt_delay(usec_t d, char *buf, size_t n) {
        snprintf(buf, n, "%" PRIu64 ".%03us", d / USEC_PER_SEC, (unsigned) (d % USEC_PER_SEC / USEC_PER_MSEC));
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
        _cleanup_free_ char *expr = NULL, *job_name = NULL;
        usec_t random_delay = 0; /* of the job named: each fire's own delay is shown */
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
                        random_delay = j->random_delay;
                        if (random_delay > 0 && !(job_name = strdup(j->name)))
                                return log_oom();
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

        usec_t now = clock_now_realtime(), from = now;
        if (from_s && timefmt_parse(from_s, z, &from, &e) < 0) {
                fprintf(stderr, "schedctl: --from: %s\n", e.message);
                return EXIT_USAGE;
        }

        _cleanup_(json_decrefp) json_t *arr = json_array();
        if (!arr)
                return log_oom();
        if (!arg_json && random_delay > 0)
                printf("%-27s %-22s %-10s %s\n", s.kind == SCHEDULE_EVERY ? "NEXT (relative to FROM)" : "NEXT (local)",
                       "UTC", "DELAY", "LEFT");
        else if (!arg_json)
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
                char lb[TIMEFMT_MAX], ub[TIMEFMT_MAX], left[64], db[DURATION_MAX];
                /* the same delay the daemon (any node) gives this fire: a function of (job, instant) */
                usec_t delay = job_name ? jitter_delay(job_name, fire, random_delay) : 0;
                timefmt_rfc3339(fire, z, false, lb, sizeof(lb));
                timefmt_rfc3339(fire, NULL, false, ub, sizeof(ub));
                /* LEFT is from now, whatever --from says: it is when the fire comes (after its
                 * random_delay), not a gap */
                usec_t at = fire + delay;
                if (at + USEC_PER_SEC > now)
                        format_left(at > now ? at - now : 0, left, sizeof(left));
                else {
                        char ago[64];
                        snprintf(left, sizeof(left), "%s ago", format_left(now - at, ago, sizeof(ago)));
                }
                if (arg_json) {
                        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "utc", ub, "local", lb, "zone", tz_name(z),
                                              "usec", (json_int_t) fire, "left_usec", (json_int_t) at - (json_int_t) now,
                                              "delay_usec", (json_int_t) delay);
                        if (!o || json_array_append_new(arr, o) < 0)
                                return log_oom();
                } else if (random_delay > 0)
                        printf("%-27s %-22s %-10s %s\n", lb, ub, fmt_delay(delay, db, sizeof(db)), left);
                else
                        printf("%-27s %-22s %s\n", lb, ub, left);
        }
        if (arg_json) {
                _cleanup_free_ char *out = json_dumps(arr, JSON_OUT_FLAGS);
                if (!out)
                        return log_oom();
                puts(out);
        }
        return EXIT_SUCCESS;
}

/* --- talking to the daemon ----------------------------------------------------- */

/* How long a command other than run --wait waits for its reply: a daemon that does not answer
 * in this time is as good as unreachable. */
#define CALL_TIMEOUT (60 * USEC_PER_SEC)

static char *socket_path = NULL;
static char *admin_group = NULL;
static bool socket_from_default = false;

/* The socket: --socket, else the registry's control_socket, else the compiled-in default. */
static const char *resolve_socket(void) {
        if (socket_path)
                return socket_path;
        if (arg_socket) {
                socket_path = strdup(arg_socket);
                return socket_path ?: arg_socket;
        }
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list diags = {};
        int q = registry_load(arg_config, REGISTRY_IGNORE_PLUGINS, &r, &diags);
        diag_list_clear(&diags);
        if (q >= 0 && r->control_socket) {
                socket_path = strdup(r->control_socket);
                if (r->admin_group)
                        admin_group = strdup(r->admin_group);
        }
        if (!socket_path) {
                socket_from_default = true;
                socket_path = strdup(DEFAULT_SOCKET);
        }
        return socket_path ?: DEFAULT_SOCKET;
}

static int unreachable(const char *path, int err) {
        fprintf(stderr, "schedctl: cannot reach schedulerd at %s: %s.\n", path, strerror(-err));
        if ((err == -EACCES || err == -EPERM) && !admin_group) {
                /* with --socket the registry was not read yet: it names the group */
                _cleanup_(registry_freep) registry *r = NULL;
                diag_list diags = {};
                if (registry_load(arg_config, REGISTRY_IGNORE_PLUGINS, &r, &diags) >= 0 && r->admin_group)
                        admin_group = strdup(r->admin_group);
                diag_list_clear(&diags);
        }
        if (err == -EACCES || err == -EPERM)
                fprintf(stderr,
                        "The socket is open to root and group \"%s\"; run as one of them (e.g. with sudo).\n",
                        admin_group ?: "schedulerd");
        else
                fprintf(stderr, "Is the daemon running? Check with 'systemctl status schedulerd'%s.\n",
                        socket_from_default ? ", or give the socket with --socket PATH" : "");
        return EXIT_UNREACHABLE;
}

static void print_json(json_t *v) {
        _cleanup_free_ char *s = json_dumps(v, JSON_OUT_FLAGS | JSON_PRESERVE_ORDER);
        if (s)
                puts(s);
}

/* Sends REQ (consumed) and waits up to TIMEOUT. Returns EXIT_SUCCESS with *ret_reply (an object
 * with "ok": true, which is removed), or an exit status after saying what went wrong: 1 when
 * the daemon refused or the action failed (its message and any "errors" printed), 3 when it
 * could not be reached or did not answer. -ETIMEDOUT is passed to the caller as
 * EXIT_FAILURE with *ret_timed_out set when RET_TIMED_OUT is given. */
static int call(json_t *req, usec_t timeout, json_t **ret_reply, bool *ret_timed_out) {
        _cleanup_(json_decrefp) json_t *rq = req;
        const char *path = resolve_socket();
        json_t *reply = NULL;

        if (!rq) {
                fputs("schedctl: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        _cleanup_close_ int fd = ctl_connect(path);
        if (fd < 0)
                return unreachable(path, fd);
        int q = ctl_call(fd, rq, timeout, &reply);
        if (q == -ETIMEDOUT && ret_timed_out) {
                *ret_timed_out = true;
                return EXIT_FAILURE;
        }
        if (q == -ETIMEDOUT) {
                fprintf(stderr, "schedctl: schedulerd at %s did not answer within %us; check 'systemctl status schedulerd'.\n",
                        path, (unsigned) (timeout / USEC_PER_SEC));
                return EXIT_UNREACHABLE;
        }
        if (q == -EBADMSG) {
                fprintf(stderr, "schedctl: the reply from %s is not one JSON object per line; is that schedulerd's socket?\n",
                        path);
                return EXIT_FAILURE;
        }
        if (q < 0)
                return unreachable(path, q);

        if (!json_is_true(json_object_get(reply, FIELD_OK))) {
                json_t *err = json_object_get(reply, FIELD_ERROR), *errs = json_object_get(reply, FIELD_ERRORS), *v;
                size_t i;
                /* messages quote what they refuse: a job's name, a request, a file's text */
                fputs("schedctl: ", stderr);
                (void) print_escaped(stderr, json_is_string(err) ? json_string_value(err) : "the daemon refused", "");
                fputc('\n', stderr);
                json_array_foreach(errs, i, v)
                        if (json_is_string(v)) {
                                fputs("  ", stderr);
                                (void) print_escaped(stderr, json_string_value(v), "");
                                fputc('\n', stderr);
                        }
                if (arg_json)
                        print_json(reply);
                json_decref(reply);
                return EXIT_FAILURE;
        }
        json_object_del(reply, FIELD_OK);
        *ret_reply = reply;
        return EXIT_SUCCESS;
}

/* --- reading replies ----------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static usec_t jusec(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) && json_integer_value(v) >= 0 ? (usec_t) json_integer_value(v) : USEC_INFINITY;
}

static long long jint(json_t *o, const char *key, long long def) {
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (long long) json_integer_value(v) : def;
}

/* The zone a job's times are shown in: its own, or UTC with --utc or when it cannot be loaded. */
static const tz *zone_of(const char *name) {
        tz *z;
        if (arg_utc || !name || tz_load(name, &z) < 0)
                return NULL;
        return z;
}

static const char *status_color(const char *s) {
        if (!s)
                return NULL;
        if (streq(s, "succeeded"))
                return COLOR_GREEN;
        if (streq(s, "failed") || streq(s, "crashed") || streq(s, "timed_out"))
                return COLOR_RED;
        if (streq(s, "running"))
                return COLOR_BOLD;
        return COLOR_YELLOW;
}

static const char *state_color(const char *s) {
        if (!s)
                return NULL;
        if (streq(s, CONTROL_STATE_RUNNING))
                return COLOR_GREEN;
        if (streq(s, CONTROL_STATE_RETRYING))
                return COLOR_YELLOW;
        return NULL;
}

/* Whether any object of ARR names a node: a cluster (with SQLite "node" is ""), where list,
 * status and history show a NODE column. */
static bool any_node(json_t *arr) {
        json_t *o;
        size_t i;
        json_array_foreach(arr, i, o) {
                const char *n = jstr(o, FIELD_NODE);
                if (n && *n)
                        return true;
        }
        return false;
}

static char *fmt_ts(usec_t t, const tz *z, char *buf, size_t n) {
        if (t == USEC_INFINITY)
                return NULL;
        return format_timestamp(t, z, buf, n);
}

/* "5h 3min" until T (LEFT) or "2min ago" since T (PASSED), relative to NOW. */
static char *fmt_left(usec_t t, usec_t now, char *buf, size_t n) {
        if (t == USEC_INFINITY)
                return NULL;
        if (t <= now)
                return strcpy(buf, "now");
        return format_relative(t - now, buf, n);
}

/* ENABLED of list: "(override)" when schedctl enable/disable decides, not the registry. */
static const char *enabled_text(bool enabled, bool override) {
        return override ? (enabled ? "yes (override)" : "no (override)") : enabled ? "yes" : "no";
}

static char *fmt_passed(usec_t t, usec_t now, char *buf, size_t n) {
        if (t == USEC_INFINITY)
                return NULL;
        char rel[FORMAT_RELATIVE_MAX];
        snprintf(buf, n, "%s ago", t >= now ? "0" : format_relative(now - t, rel, sizeof(rel)));
        return buf;
}

static char *fmt_duration(usec_t d, char *buf, size_t n) {
        if (d == USEC_INFINITY)
                return NULL;
        return format_relative(d, buf, n);
}

/* The zone of JOB, from the daemon: for times given without an offset (run --at, history
 * --since). One status request for that job, never a list of every job. */
static const tz *zone_of_job(const char *job) {
        json_t *reply = NULL;
        if (arg_utc)
                return NULL;
        if (call(json_pack("{s:s, s:s}", FIELD_COMMAND, control_command_name(CONTROL_STATUS), FIELD_JOB, job), CALL_TIMEOUT,
                 &reply, NULL) != EXIT_SUCCESS)
                return NULL;
        const tz *z = zone_of(jstr(json_object_get(reply, FIELD_JOB), FIELD_TIMEZONE));
        json_decref(reply);
        return z;
}

/* --- per-command option parsing ---------------------------------------------------- */

enum {
        OPT_JSON = 0x100,
        OPT_UTC,
        OPT_AT,
        OPT_WAIT,
        OPT_TIMEOUT,
        OPT_SINCE,
        OPT_STATUS,
        OPT_OUTPUT,
        OPT_UNTIL,
        OPT_FROM,
        OPT_TO,
        OPT_DRY_RUN,
};

typedef struct verb_help {
        const char *usage;
        const char *text;
} verb_help;

static int verb_usage(const verb_help *h, FILE *f) {
        fprintf(f, "Usage: schedctl [--config FILE] [--socket PATH] %s\n\n%s", h->usage, h->text);
        fputs("\nCommon options: --json (machine-readable output), -h/--help (this text).\n"
              "Exit status: 0 ok, 1 action failed, 2 usage error, 3 daemon not reachable.\n",
              f);
        return EXIT_SUCCESS;
}

/* Parses the options every online command shares plus EXTRA (getopt_long entries), calling
 * HANDLE for the extra ones. Returns -1 to go on (optind at the first operand), or an exit
 * status. */
static int parse_verb_options(int argc, char **argv, const verb_help *h, const struct option *extra,
                              int (*handle)(int opt, const char *arg)) {
        struct option opts[16] = {
                { "json", no_argument, NULL, OPT_JSON },
                { "utc", no_argument, NULL, OPT_UTC },
                { "help", no_argument, NULL, 'h' },
        };
        size_t n = 3;
        for (; extra && extra[n - 3].name && n < ELEMENTSOF(opts) - 1; n++)
                opts[n] = extra[n - 3];
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "+hn:", opts, NULL)) >= 0) {
                switch (c) {
                case OPT_JSON:
                        arg_json = true;
                        break;
                case OPT_UTC:
                        arg_utc = true;
                        break;
                case 'h':
                        return verb_usage(h, stdout);
                case '?':
                        fprintf(stderr, "Try 'schedctl %s -h'.\n", argv[0]);
                        return EXIT_USAGE;
                default:
                        if (!handle) {
                                fprintf(stderr, "schedctl: %s does not take -%c; try 'schedctl %s -h'.\n", argv[0], c,
                                        argv[0]);
                                return EXIT_USAGE;
                        }
                        int r = handle(c, optarg);
                        if (r >= 0)
                                return r;
                }
        }
        /* options may follow the operands too: parse again past them */
        return -1;
}

/* Operands and options in any order: collect operands, letting getopt see the rest. */
static int collect_operands(int argc, char **argv, const verb_help *h, const struct option *extra,
                            int (*handle)(int opt, const char *arg), char ***ret_operands, int *ret_n) {
        static char *operands[8];
        int n = 0;
        /* work on a copy so that operand removal does not disturb the caller */
        _cleanup_free_ char **v = calloc((size_t) argc + 1, sizeof(char *));
        if (!v)
                return log_oom();
        memcpy(v, argv, (size_t) argc * sizeof(char *));
        int vc = argc;
        for (;;) {
                int r = parse_verb_options(vc, v, h, extra, handle);
                if (r >= 0)
                        return r;
                if (optind >= vc)
                        break;
                if (n == (int) ELEMENTSOF(operands))
                        return usage_error("%s: too many arguments", argv[0]);
                operands[n++] = v[optind];
                /* drop the operand and parse the rest again */
                memmove(v + optind, v + optind + 1, (size_t) (vc - optind) * sizeof(char *));
                vc--;
        }
        *ret_operands = operands;
        *ret_n = n;
        return -1;
}

/* --- list ------------------------------------------------------------------------ */

static const verb_help list_help = {
        "list [--json] [--utc]",
        "One row per job, in the style of 'systemctl list-timers': NEXT and LEFT (the next fire,\n"
        "in the job's zone), LAST and PASSED (the last start), the last run's STATUS, the job's\n"
        "STATE (idle, running, retrying), whether it is ENABLED (yes, no, paused [until TIME]),\n"
        "RUNS, FAILED and AVG duration.\n"
        "\n"
        "  --utc    times in UTC instead of each job's zone\n",
};

static int verb_list(int argc, char **argv) {
        char **ops;
        int n, r = collect_operands(argc, argv, &list_help, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 0)
                return usage_error("list takes no arguments, found \"%s\"", ops[0]);

        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s}", FIELD_COMMAND, control_command_name(CONTROL_LIST)), CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json) {
                print_json(reply);
                return EXIT_SUCCESS;
        }

        static const table_column cols[] = {
                { "NEXT", false }, { "LEFT", false }, { "LAST", false }, { "PASSED", false }, { "JOB", false }, { "STATUS", false }, { "STATE", false },
                { "ENABLED", false }, { "RUNS", true }, { "FAILED", true }, { "MISSED", true }, { "AVG", true }, { "SCHEDULE", false }, { "ZONE", false },
                { "NODE", false },
        };
        bool cluster = any_node(json_object_get(reply, FIELD_JOBS));
        _cleanup_(table_freep) table *t = table_new(cols, ELEMENTSOF(cols) - !cluster);
        if (!t)
                return log_oom();
        usec_t now = jusec(reply, FIELD_NOW_USEC);
        if (now == USEC_INFINITY)
                now = clock_now_realtime();
        json_t *j;
        size_t i;
        json_array_foreach(json_object_get(reply, FIELD_JOBS), i, j) {
                char next[FORMAT_TIMESTAMP_MAX], left[FORMAT_RELATIVE_MAX], last[FORMAT_TIMESTAMP_MAX],
                        passed[FORMAT_RELATIVE_MAX + 8], avg[FORMAT_RELATIVE_MAX], runs[24], fails[24], missed[24];
                const tz *z = zone_of(jstr(j, FIELD_TIMEZONE));
                bool enabled = json_is_true(json_object_get(j, FIELD_ENABLED));
                bool paused = json_is_true(json_object_get(j, FIELD_PAUSED));
                usec_t nx = jusec(j, FIELD_NEXT_USEC), ls = jusec(j, FIELD_LAST_USEC);
                const char *st = jstr(j, FIELD_LAST_STATUS);
                char pause[FORMAT_TIMESTAMP_MAX + 16];
                if (paused && jusec(j, FIELD_PAUSED_UNTIL_USEC) != USEC_INFINITY) {
                        char u[FORMAT_TIMESTAMP_MAX];
                        snprintf(pause, sizeof(pause), "paused until %s",
                                 fmt_ts(jusec(j, FIELD_PAUSED_UNTIL_USEC), z, u, sizeof(u)));
                } else
                        snprintf(pause, sizeof(pause), "paused");
                snprintf(runs, sizeof(runs), "%lld", jint(j, FIELD_RUNS, 0));
                snprintf(fails, sizeof(fails), "%lld", jint(j, FIELD_FAILURES, 0));
                snprintf(missed, sizeof(missed), "%lld", jint(j, FIELD_MISSED, 0));
                if (table_add(t, fmt_ts(nx, z, next, sizeof(next)), NULL) < 0 ||
                    table_add(t, fmt_left(nx, now, left, sizeof(left)), NULL) < 0 ||
                    table_add(t, fmt_ts(ls, z, last, sizeof(last)), NULL) < 0 ||
                    table_add(t, fmt_passed(ls, now, passed, sizeof(passed)), NULL) < 0 ||
                    table_add(t, jstr(j, FIELD_NAME), COLOR_BOLD) < 0 || table_add(t, st, status_color(st)) < 0 ||
                    table_add(t, jstr(j, FIELD_STATE), state_color(jstr(j, FIELD_STATE))) < 0 ||
                    table_add(t, enabled && paused ? pause
                                                   : enabled_text(enabled, json_is_boolean(json_object_get(j, FIELD_ENABLED_OVERRIDE))),
                              enabled && !paused ? NULL : COLOR_GREY) < 0 ||
                    table_add(t, runs, NULL) < 0 ||
                    table_add(t, fails, jint(j, FIELD_FAILURES, 0) > 0 ? COLOR_RED : NULL) < 0 ||
                    table_add(t, missed, jint(j, FIELD_MISSED, 0) > 0 ? COLOR_YELLOW : NULL) < 0 ||
                    table_add(t, fmt_duration(jusec(j, FIELD_AVERAGE_DURATION_USEC), avg, sizeof(avg)), NULL) < 0 ||
                    table_add(t, jstr(j, FIELD_SCHEDULE), NULL) < 0 || table_add(t, jstr(j, FIELD_TIMEZONE), NULL) < 0 ||
                    (cluster && table_add(t, jstr(j, FIELD_NODE), NULL) < 0))
                        return log_oom();
        }
        bool color = colors_enabled(stdout);
        if (table_print(t, stdout, color) < 0)
                return EXIT_FAILURE;
        size_t k = table_rows(t);
        printf("\n%zu job%s listed.\n", k, k == 1 ? "" : "s");
        return EXIT_SUCCESS;
}

/* --- status ---------------------------------------------------------------------- */

static const verb_help status_help = {
        "status [JOB] [--json] [--utc]",
        "Without JOB: the daemon's jobs, runs in flight and the size of its history.\n"
        "A job's definition (schedule, zone, plugin, policies, where it is defined), its state,\n"
        "the next fires and its last runs with their messages.\n"
        "\n"
        "  --utc    times in UTC instead of the job's zone\n",
};

/* Rows of runs; each in its job's zone (the row's "timezone"), else ZONE. */
static int print_runs_table(json_t *runs, bool with_job, bool with_output, const tz *zone) {
        static const table_column cols_job[] = {
                { "ID", true }, { "STARTED", false }, { "JOB", false }, { "TRIGGER", false }, { "STATUS", false }, { "DURATION", true }, { "MESSAGE", false },
                { "NODE", false },
        };
        static const table_column cols[] = {
                { "ID", true }, { "STARTED", false }, { "TRIGGER", false }, { "STATUS", false }, { "DURATION", true }, { "MESSAGE", false },
                { "NODE", false },
        };
        bool cluster = any_node(runs);
        _cleanup_(table_freep) table *t = with_job ? table_new(cols_job, ELEMENTSOF(cols_job) - !cluster)
                                                   : table_new(cols, ELEMENTSOF(cols) - !cluster);
        if (!t)
                return log_oom();
        bool color = colors_enabled(stdout);
        json_t *r;
        size_t i;
        json_array_foreach(runs, i, r) {
                char id[24], started[FORMAT_TIMESTAMP_MAX], dur[FORMAT_RELATIVE_MAX], trig[48];
                const char *st = jstr(r, FIELD_STATUS), *msg = jstr(r, FIELD_MESSAGE);
                const tz *z = jstr(r, FIELD_TIMEZONE) ? zone_of(jstr(r, FIELD_TIMEZONE)) : zone;
                snprintf(id, sizeof(id), "%lld", jint(r, FIELD_ID, 0));
                long long attempt = jint(r, FIELD_ATTEMPT, 0);
                if (attempt > 0)
                        snprintf(trig, sizeof(trig), "%s #%lld", jstr(r, FIELD_TRIGGER) ?: "-", attempt);
                else
                        snprintf(trig, sizeof(trig), "%s", jstr(r, FIELD_TRIGGER) ?: "-");
                if (table_add(t, id, NULL) < 0 || table_add(t, fmt_ts(jusec(r, FIELD_STARTED_USEC), z, started, sizeof(started)), NULL) < 0 ||
                    (with_job && table_add(t, jstr(r, FIELD_JOB), COLOR_BOLD) < 0) || table_add(t, trig, NULL) < 0 ||
                    table_add(t, st, status_color(st)) < 0 ||
                    table_add(t, fmt_duration(jusec(r, FIELD_DURATION_USEC), dur, sizeof(dur)), NULL) < 0 ||
                    table_add(t, msg && *msg ? msg : NULL, NULL) < 0 ||
                    (cluster && table_add(t, jstr(r, FIELD_NODE), NULL) < 0))
                        return log_oom();
        }
        if (!with_output)
                return table_print(t, stdout, color) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        /* with the output tails: one small table per run, each followed by its output */
        if (table_print(t, stdout, color) < 0)
                return EXIT_FAILURE;
        json_array_foreach(runs, i, r) {
                const char *out = jstr(r, FIELD_OUTPUT);
                printf("\n-- output of run %lld (%s) --\n", jint(r, FIELD_ID, 0), jstr(r, FIELD_JOB) ?: "?");
                /* what the job wrote, as text: its lines, but no terminal commands */
                if (out && *out) {
                        if (print_escaped(stdout, out, "\n\t") < 0)
                                return log_oom();
                        fputs(out[strlen(out) - 1] == '\n' ? "" : "\n", stdout);
                } else
                        puts("(none)");
        }
        return EXIT_SUCCESS;
}

static int verb_status(int argc, char **argv) {
        char **ops;
        int n, r = collect_operands(argc, argv, &status_help, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 1)
                return usage_error("status takes at most one JOB, e.g. schedctl status hello");

        _cleanup_(json_decrefp) json_t *reply = NULL;
        if (n == 0) {
                r = call(json_pack("{s:s}", FIELD_COMMAND, control_command_name(CONTROL_STATUS)), CALL_TIMEOUT, &reply,
                         NULL);
                if (r != EXIT_SUCCESS)
                        return r;
                if (arg_json) {
                        print_json(reply);
                        return EXIT_SUCCESS;
                }
                printf("        Jobs: %lld\n     Running: %lld\n     Waiting: %lld fires for a slot (max_concurrent)\n"
                       "     History: %lld runs, %.1f MiB\n",
                       jint(reply, FIELD_JOBS, 0), jint(reply, FIELD_RUNNING_RUNS, 0), jint(reply, FIELD_WAITING_FIRES, 0),
                       jint(reply, FIELD_HISTORY_RUNS, 0),
                       (double) jint(reply, FIELD_HISTORY_BYTES, 0) / (1024.0 * 1024.0));
                return EXIT_SUCCESS;
        }
        r = call(json_pack("{s:s, s:s}", FIELD_COMMAND, control_command_name(CONTROL_STATUS), FIELD_JOB, ops[0]), CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        json_t *j = json_object_get(reply, FIELD_JOB);
        if (arg_json) {
                print_json(j);
                return EXIT_SUCCESS;
        }

        bool color = colors_enabled(stdout);
        const tz *z = zone_of(jstr(j, FIELD_TIMEZONE));
        usec_t now = clock_now_realtime(), nx = jusec(j, FIELD_NEXT_USEC), ls = jusec(j, FIELD_LAST_USEC);
        char a[FORMAT_TIMESTAMP_MAX], b[FORMAT_RELATIVE_MAX + 8], d[DURATION_MAX], e[DURATION_MAX];
        const char *desc = jstr(j, FIELD_DESCRIPTION), *st = jstr(j, FIELD_LAST_STATUS), *state = jstr(j, FIELD_STATE);
        bool enabled = json_is_true(json_object_get(j, FIELD_ENABLED));
        json_t *ov = json_object_get(j, FIELD_ENABLED_OVERRIDE), *src = json_object_get(j, FIELD_SOURCE);
        json_t *retry = json_object_get(j, FIELD_RETRY);

        printf("%s%s%s%s", color ? COLOR_BOLD : "", jstr(j, FIELD_NAME), color ? COLOR_RESET : "", desc ? " - " : "");
        if (desc && print_escaped(stdout, desc, "") < 0)
                return log_oom();
        putchar('\n');
        printf("    Schedule: %s (zone %s)\n", jstr(j, FIELD_SCHEDULE), jstr(j, FIELD_TIMEZONE));
        printf("     Enabled: %s%s\n", enabled ? "yes" : "no",
               json_is_boolean(ov) ? " (set with schedctl enable/disable)" : "");
        printf("       State: %s%s%s\n", color && state_color(state) ? state_color(state) : "", state ?: "-",
               color && state_color(state) ? COLOR_RESET : "");
        usec_t delay = jusec(j, FIELD_NEXT_DELAY_USEC);
        if (json_is_true(json_object_get(j, FIELD_PAUSED))) {
                usec_t pu = jusec(j, FIELD_PAUSED_UNTIL_USEC);
                printf("      Paused: %s%s (schedctl resume %s)\n", pu == USEC_INFINITY ? "until resumed" : "until ",
                       pu == USEC_INFINITY ? "" : format_timestamp(pu, z, a, sizeof(a)), jstr(j, FIELD_NAME));
        }
        if (nx != USEC_INFINITY && delay != USEC_INFINITY && delay > 0)
                printf("        Next: %s, starting %s later by random_delay (in %s)\n", format_timestamp(nx, z, a, sizeof(a)),
                       fmt_delay(delay, d, sizeof(d)), fmt_left(nx + delay, now, b, sizeof(b)));
        else if (nx != USEC_INFINITY)
                printf("        Next: %s (in %s)\n", format_timestamp(nx, z, a, sizeof(a)),
                       fmt_left(nx, now, b, sizeof(b)));
        else
                printf("        Next: -%s\n", enabled ? "" : " (disabled)");
        if (ls != USEC_INFINITY)
                printf("        Last: %s (%s), %s%s%s\n", format_timestamp(ls, z, a, sizeof(a)),
                       fmt_passed(ls, now, b, sizeof(b)), color && status_color(st) ? status_color(st) : "", st ?: "-",
                       color && status_color(st) ? COLOR_RESET : "");
        else
                printf("        Last: never\n");
        usec_t avg = jusec(j, FIELD_AVERAGE_DURATION_USEC);
        printf("        Runs: %lld, %lld failed%s%s; %lld fire%s missed\n", jint(j, FIELD_RUNS, 0), jint(j, FIELD_FAILURES, 0),
               avg != USEC_INFINITY ? ", average " : "", avg != USEC_INFINITY ? format_relative(avg, b, sizeof(b)) : "",
               jint(j, FIELD_MISSED, 0), jint(j, FIELD_MISSED, 0) == 1 ? "" : "s");
        usec_t mt = jusec(j, FIELD_MISFIRE_THRESHOLD_USEC);
        printf("     Misfire: %s\n", mt == USEC_INFINITY ? "auto (a fire may start until the next one is due)"
                                                         : duration_format(mt, d, sizeof(d)));
        printf("      Plugin: %s\n", jstr(j, FIELD_PLUGIN) ?: "-");
        usec_t to = jusec(j, FIELD_TIMEOUT_USEC);
        printf("     Timeout: %s\n", to == USEC_INFINITY || to == 0 ? "none" : duration_format(to, d, sizeof(d)));
        if (jstr(j, FIELD_USER))
                printf("     Runs as: user %s%s%s\n", jstr(j, FIELD_USER), jstr(j, FIELD_GROUP) ? ", group " : "",
                       jstr(j, FIELD_GROUP) ?: "");
        if (jusec(j, FIELD_RANDOM_DELAY_USEC) > 0 && jusec(j, FIELD_RANDOM_DELAY_USEC) != USEC_INFINITY)
                printf("Random delay: up to %s, the same for a fire on every node\n",
                       duration_format(jusec(j, FIELD_RANDOM_DELAY_USEC), d, sizeof(d)));
        json_t *bf = json_object_get(j, FIELD_BACKFILL);
        if (json_is_object(bf))
                printf("    Backfill: in progress, next at or after %s, up to %s\n",
                       format_timestamp(jusec(bf, FIELD_NEXT_USEC), z, a, sizeof(a)),
                       format_timestamp(jusec(bf, FIELD_TO), z, e, sizeof(e)));
        if (jusec(j, FIELD_QUEUED_USEC) != USEC_INFINITY)
                printf("      Queued: the fire at %s waits for the run in flight\n",
                       format_timestamp(jusec(j, FIELD_QUEUED_USEC), z, a, sizeof(a)));
        printf("    Policies: overlap %s%s%s\n", jstr(j, FIELD_OVERLAP) ?: (json_is_true(json_object_get(j, FIELD_SINGLETON)) ? "skip" : "allow"),
               json_is_true(json_object_get(j, FIELD_CATCH_UP)) ? ", catch_up" : "",
               json_is_true(json_object_get(j, FIELD_RUN_ON_STARTUP)) ? ", run_on_startup" : "");
        if (jint(retry, FIELD_ATTEMPTS, 0) > 0)
                printf("       Retry: %lld attempt%s, backoff %s up to %s\n", jint(retry, FIELD_ATTEMPTS, 0),
                       jint(retry, FIELD_ATTEMPTS, 0) == 1 ? "" : "s",
                       duration_format(jusec(retry, FIELD_BACKOFF_USEC), d, sizeof(d)),
                       duration_format(jusec(retry, FIELD_MAX_BACKOFF_USEC), e, sizeof(e)));
        else
                printf("       Retry: no\n");
        if (jstr(src, FIELD_FILE) && *jstr(src, FIELD_FILE))
                printf("      Source: %s:%lld\n", jstr(src, FIELD_FILE), jint(src, FIELD_LINE, 0));
        json_t *f;
        size_t i;
        json_array_foreach(json_object_get(j, FIELD_NEXT_FIRES_USEC), i, f)
                printf("%s%s\n", i == 0 ? "  Next fires: " : "              ",
                       format_timestamp((usec_t) json_integer_value(f), z, a, sizeof(a)));

        json_t *runs = json_object_get(j, FIELD_LAST_RUNS);
        if (json_array_size(runs) == 0) {
                puts("\nNo runs recorded.");
                return EXIT_SUCCESS;
        }
        puts("");
        return print_runs_table(runs, false, false, z);
}

/* --- run ------------------------------------------------------------------------- */

static const verb_help run_help = {
        "run JOB [--at TIME] [--wait [--timeout D]] [--json]",
        "Starts a run of JOB now, outside its schedule (also when the job is disabled).\n"
        "\n"
        "  --at TIME      the run stands for the logical instant TIME (RFC 3339, e.g.\n"
        "                 2026-03-29T07:30:00+02:00; without an offset, local to the job's zone):\n"
        "                 the job sees TIME as its scheduled instant\n"
        "  --wait         wait for the run to end; exit 0 only if it succeeded, else 1\n"
        "  --timeout D    give up waiting after the duration D (e.g. 30s, 5m); the run goes on\n",
};

static const char *run_at = NULL, *run_timeout = NULL;
static bool run_wait = false;

static int run_option(int opt, const char *arg) {
        switch (opt) {
        case OPT_AT:
                run_at = arg;
                return -1;
        case OPT_WAIT:
                run_wait = true;
                return -1;
        case OPT_TIMEOUT:
                run_timeout = arg;
                return -1;
        }
        return usage_error("run: unexpected option");
}

static int verb_run(int argc, char **argv) {
        static const struct option extra[] = {
                { "at", required_argument, NULL, OPT_AT },
                { "wait", no_argument, NULL, OPT_WAIT },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                {},
        };
        char **ops;
        int n, r = collect_operands(argc, argv, &run_help, extra, run_option, &ops, &n);
        if (r >= 0)
                return r;
        if (n != 1)
                return usage_error("run takes one JOB, e.g. schedctl run hello --wait");
        const char *name = ops[0];

        usec_t timeout = USEC_INFINITY;
        parse_error e = {};
        if (run_timeout && !run_wait)
                return usage_error("run: --timeout bounds --wait; give --wait too");
        if (run_timeout && (duration_parse(run_timeout, &timeout, &e) < 0 || timeout == 0))
                return usage_error("run --timeout: \"%s\": %s; expected a duration such as 30s or 5m", run_timeout,
                                   e.message[0] ? e.message : "must be more than zero");

        json_t *at = json_null();
        char at_note[256] = "";
        if (run_at) {
                usec_t t;
                /* an offset-less TIME is local to the job's zone, like its schedule */
                if (timefmt_parse(run_at, NULL, &t, &e) < 0) {
                        tz_local_kind kind;
                        e = (parse_error) {};
                        const tz *z = zone_of_job(name);
                        if (!z && tz_load("UTC", (tz **) &z) < 0)
                                return log_oom();
                        if (timefmt_parse_local(run_at, z, &t, &kind, &e) < 0)
                                return usage_error("run --at: \"%s\": %s; expected RFC 3339 such as 2026-03-29T07:30:00+02:00",
                                                   run_at, e.message);
                        /* accepted as SPEC section 4 resolves it, but never silently */
                        char b[TIMEFMT_MAX];
                        if (kind == TZ_LOCAL_GAP)
                                snprintf(at_note, sizeof(at_note),
                                         "%s does not exist in %s (the clocks sprang forward over it); the run stands "
                                         "for %s, the first instant after the gap",
                                         run_at, tz_name(z), timefmt_rfc3339(t, z, false, b, sizeof(b)));
                        else if (kind == TZ_LOCAL_REPEATED)
                                snprintf(at_note, sizeof(at_note),
                                         "%s occurs twice in %s (the clocks fell back); the run stands for the first, "
                                         "%s",
                                         run_at, tz_name(z), timefmt_rfc3339(t, z, false, b, sizeof(b)));
                }
                at = json_integer((json_int_t) t);
        }

        _cleanup_(json_decrefp) json_t *reply = NULL;
        bool timed_out = false;
        r = call(json_pack("{s:s, s:s, s:o, s:b}", FIELD_COMMAND, control_command_name(CONTROL_RUN), FIELD_JOB, name, FIELD_AT, at, FIELD_WAIT, run_wait),
                 run_wait ? timeout : CALL_TIMEOUT, &reply, run_wait ? &timed_out : NULL);
        if (timed_out) {
                char d[DURATION_MAX];
                fprintf(stderr,
                        "schedctl: the run of %s has not finished after %s; it goes on (see schedctl history %s).\n",
                        name, duration_format(timeout, d, sizeof(d)), name);
                return EXIT_FAILURE;
        }
        if (r != EXIT_SUCCESS)
                return r;
        if (at_note[0]) {
                if (arg_json)
                        json_object_set_new(reply, "note", json_string(at_note));
                else
                        printf("Note: %s.\n", at_note);
        }

        const char *st = jstr(reply, FIELD_STATUS);
        bool ok = !run_wait || (st && streq(st, "succeeded"));
        if (arg_json) {
                print_json(reply);
                return ok ? EXIT_SUCCESS : EXIT_FAILURE;
        }
        if (!run_wait) {
                printf("Started run %lld of %s.\n", jint(reply, FIELD_RUN_ID, 0), name);
                return EXIT_SUCCESS;
        }
        bool color = colors_enabled(stdout);
        char d[FORMAT_RELATIVE_MAX];
        const char *msg = jstr(reply, FIELD_MESSAGE);
        printf("Run %lld of %s %s%s%s after %s", jint(reply, FIELD_RUN_ID, 0), name, color ? status_color(st) : "",
               st ?: "ended", color ? COLOR_RESET : "", format_relative(jusec(reply, FIELD_DURATION_USEC), d, sizeof(d)));
        if (jint(reply, FIELD_SIGNAL, 0) > 0)
                printf(" (signal %lld)", jint(reply, FIELD_SIGNAL, 0));
        else if (jint(reply, FIELD_EXIT_CODE, 0) > 0)
                printf(" (exit code %lld)", jint(reply, FIELD_EXIT_CODE, 0));
        fputs(msg && *msg ? ": " : ".", stdout);
        if (msg && *msg && print_escaped(stdout, msg, "") < 0)
                return log_oom();
        putchar('\n');
        return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* --- enable, disable ---------------------------------------------------------------- */

static const verb_help enable_help = {
        "enable JOB [--json]",
        "Lets JOB fire on its schedule again. The setting is kept in the history database and\n"
        "survives restarts and reloads.\n",
};

static const verb_help disable_help = {
        "disable JOB [--json]",
        "Stops JOB from firing on its schedule; it can still be started with schedctl run. The\n"
        "setting is kept in the history database and survives restarts and reloads.\n",
};

static int set_enabled(int argc, char **argv, bool enable) {
        const verb_help *h = enable ? &enable_help : &disable_help;
        char **ops;
        int n, r = collect_operands(argc, argv, h, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n != 1)
                return usage_error("%s takes one JOB, e.g. schedctl %s hello", argv[0], argv[0]);

        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s, s:s}", FIELD_COMMAND,
                           control_command_name(enable ? CONTROL_ENABLE : CONTROL_DISABLE), FIELD_JOB, ops[0]), CALL_TIMEOUT, &reply,
                 NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json)
                print_json(reply);
        else if (enable)
                printf("Enabled %s: it fires on its schedule.\n", ops[0]);
        else
                printf("Disabled %s: it no longer fires on its schedule (schedctl run still starts it).\n", ops[0]);
        return EXIT_SUCCESS;
}

static int verb_enable(int argc, char **argv) {
        return set_enabled(argc, argv, true);
}

static int verb_disable(int argc, char **argv) {
        return set_enabled(argc, argv, false);
}

/* --- history ---------------------------------------------------------------------- */

static const verb_help history_help = {
        "history [JOB] [-n N] [--since TIME] [--status S] [--output] [--json] [--utc]",
        "Past and running runs, newest first (of JOB, or of every job).\n"
        "\n"
        "  -n N           at most N runs (default 20, at most 10000)\n"
        "  --since TIME   runs started at or after TIME: RFC 3339 (without an offset, local to\n"
        "                 JOB's zone, else UTC) or a duration back from now (2h, 7d)\n"
        "  --status S     only runs with status S: running, succeeded, failed, timed_out, crashed,\n"
        "                 skipped, cancelled, interrupted, missed\n"
        "  --output       also print each run's output tail\n"
        "  --utc          times in UTC instead of each job's zone\n",
};

static const char *hist_since = NULL, *hist_status = NULL, *hist_n = NULL;
static bool hist_output = false;

static int history_option(int opt, const char *arg) {
        switch (opt) {
        case 'n':
                hist_n = arg;
                return -1;
        case OPT_SINCE:
                hist_since = arg;
                return -1;
        case OPT_STATUS:
                hist_status = arg;
                return -1;
        case OPT_OUTPUT:
                hist_output = true;
                return -1;
        }
        return usage_error("history: unexpected option");
}

static int verb_history(int argc, char **argv) {
        static const struct option extra[] = {
                { "since", required_argument, NULL, OPT_SINCE },
                { "status", required_argument, NULL, OPT_STATUS },
                { "output", no_argument, NULL, OPT_OUTPUT },
                {},
        };
        char **ops;
        int n, r = collect_operands(argc, argv, &history_help, extra, history_option, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 1)
                return usage_error("history takes at most one JOB, found %d", n);
        const char *name = n == 1 ? ops[0] : NULL;

        unsigned long limit = 20;
        if (hist_n) {
                char *end;
                errno = 0;
                limit = strtoul(hist_n, &end, 10);
                if (errno || *end || limit == 0 || limit > 10000 || hist_n[0] == '-')
                        return usage_error("history -n: \"%s\" is not a count between 1 and 10000", hist_n);
        }
        if (hist_status && run_status_from_string(hist_status) < 0)
                return usage_error("history --status: unknown status \"%s\"; expected running, succeeded, failed, "
                                   "timed_out, crashed, skipped, cancelled, interrupted or missed",
                                   hist_status);
        usec_t since = 0;
        if (hist_since) {
                parse_error e = {};
                usec_t ago;
                if (duration_parse(hist_since, &ago, NULL) >= 0) {
                        usec_t now = clock_now_realtime();
                        since = ago < now ? now - ago : 0;
                } else if (timefmt_parse(hist_since, NULL, &since, &e) < 0) {
                        const tz *z = name ? zone_of_job(name) : NULL;
                        e = (parse_error) {};
                        if (!z && tz_load("UTC", (tz **) &z) < 0)
                                return log_oom();
                        if (timefmt_parse(hist_since, z, &since, &e) < 0)
                                return usage_error("history --since: \"%s\": %s; expected RFC 3339 such as "
                                                   "2026-03-29T07:30:00Z or a duration such as 2h",
                                                   hist_since, e.message);
                }
        }

        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s, s:o, s:I, s:I, s:o}", FIELD_COMMAND, control_command_name(CONTROL_HISTORY), FIELD_JOB, name ? json_string(name) : json_null(),
                           FIELD_LIMIT, (json_int_t) limit, FIELD_SINCE, (json_int_t) since, FIELD_STATUS,
                           hist_status ? json_string(hist_status) : json_null()),
                 CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (name && json_is_false(json_object_get(reply, FIELD_IN_REGISTRY)))
                fprintf(stderr, "schedctl: job \"%s\" is no longer in the registry; these are its runs kept in history.\n",
                        name);
        json_t *runs = json_object_get(reply, FIELD_RUNS);
        if (arg_json) {
                print_json(runs);
                return EXIT_SUCCESS;
        }
        if (json_array_size(runs) == 0) {
                puts("No runs recorded.");
                return EXIT_SUCCESS;
        }
        return print_runs_table(runs, true, hist_output, NULL);
}

/* --- reload ---------------------------------------------------------------------- */

static const verb_help reload_help = {
        "reload [--json]",
        "Re-reads the registry, as SIGHUP does. A registry with errors is not taken (the running\n"
        "one stays): the errors are printed and the exit status is 1.\n",
};

static int verb_reload(int argc, char **argv) {
        char **ops;
        int n, r = collect_operands(argc, argv, &reload_help, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 0)
                return usage_error("reload takes no arguments, found \"%s\"", ops[0]);
        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s}", FIELD_COMMAND, control_command_name(CONTROL_RELOAD)), CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json)
                print_json(reply);
        else {
                printf("Reloaded the registry: %lld job%s.\n", jint(reply, FIELD_JOBS, 0), jint(reply, FIELD_JOBS, 0) == 1 ? "" : "s");
                json_t *changed = json_object_get(reply, FIELD_PLUGINS_CHANGED), *v;
                size_t i;
                json_array_foreach(changed, i, v)
                        if (json_is_string(v)) {
                                fputs("Plugin changed, loaded anew: ", stdout);
                                (void) print_escaped(stdout, json_string_value(v), "");
                                putchar('\n');
                        }
        }
        return EXIT_SUCCESS;
}

/* --- metrics --------------------------------------------------------------------- */

static const verb_help metrics_help = {
        "metrics [--json]",
        "Prints the daemon's metrics in the Prometheus text exposition format, as its\n"
        "scheduler.metrics_listen endpoint serves them (which may be off). --json: {\"text\": ...}.\n",
};

static int verb_metrics(int argc, char **argv) {
        char **ops;
        int n, r = collect_operands(argc, argv, &metrics_help, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 0)
                return usage_error("metrics takes no arguments, found \"%s\"", ops[0]);
        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s}", FIELD_COMMAND, control_command_name(CONTROL_METRICS)), CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json)
                print_json(reply);
        else
                fputs(jstr(reply, FIELD_TEXT) ?: "", stdout);
        return EXIT_SUCCESS;
}

/* --- nodes ------------------------------------------------------------------------ */

static const verb_help nodes_help = {
        "nodes [--json]",
        "The nodes of the cluster (scheduler.store is PostgreSQL): each incarnation alive or ended\n"
        "within the hour, its STATE, when its LEASE expires (by the database's clock), its clock\n"
        "OFFSET to the database, its REGISTRY digest (\"differs\" when it is not the registry most\n"
        "alive nodes run: a rollout in progress, or a node left behind) and its RUNS in flight.\n"
        "The node answering is marked with *. A daemon on SQLite is not a cluster: exit status 1.\n",
};

static int verb_nodes(int argc, char **argv) {
        char **ops;
        int n, r = collect_operands(argc, argv, &nodes_help, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 0)
                return usage_error("nodes takes no arguments, found \"%s\"", ops[0]);
        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s}", FIELD_COMMAND, control_command_name(CONTROL_NODES)), CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json) {
                print_json(reply);
                return EXIT_SUCCESS;
        }
        static const table_column cols[] = {
                { "NODE", false }, { "STATE", false }, { "LEASE", false }, { "OFFSET", true }, { "REGISTRY", false }, { "RUNS", true },
        };
        _cleanup_(table_freep) table *t = table_new(cols, ELEMENTSOF(cols));
        if (!t)
                return log_oom();
        usec_t now = jusec(reply, FIELD_NOW_USEC);
        json_t *o;
        size_t i;
        unsigned differ = 0;
        json_array_foreach(json_object_get(reply, FIELD_NODES), i, o) {
                char node[300], lease[FORMAT_RELATIVE_MAX + 16], offset[40], reg[80], runs[24];
                const char *state = jstr(o, FIELD_STATE) ?: "?";
                bool alive = streq(state, "alive"), differs = json_is_true(json_object_get(o, FIELD_REGISTRY_DIFFERS));
                usec_t exp = jusec(o, FIELD_LEASE_EXPIRES_USEC);
                long long off = jint(o, FIELD_CLOCK_OFFSET_USEC, 0);
                snprintf(node, sizeof(node), "%s%s", jstr(o, FIELD_NODE) ?: "?",
                         json_is_true(json_object_get(o, FIELD_SELF)) ? " *" : "");
                if (!alive || exp == USEC_INFINITY)
                        snprintf(lease, sizeof(lease), "-");
                else if (json_is_true(json_object_get(o, FIELD_LEASE_EXPIRED)))
                        snprintf(lease, sizeof(lease), "expired");
                else {
                        char rel[FORMAT_RELATIVE_MAX];
                        /* the lease is on the database's clock: this node's offset makes it local */
                        snprintf(lease, sizeof(lease), "in %s", exp > now ? format_relative(exp - now, rel, sizeof(rel)) : "0");
                }
                snprintf(offset, sizeof(offset), "%+.3fs", (double) off / 1e6);
                const char *dg = jstr(o, FIELD_REGISTRY_DIGEST) ?: "";
                snprintf(reg, sizeof(reg), "%.12s%s", *dg ? dg : "-", differs ? " (differs)" : "");
                snprintf(runs, sizeof(runs), "%lld", jint(o, FIELD_RUNS_IN_FLIGHT, 0));
                differ += differs;
                if (table_add(t, node, alive ? COLOR_BOLD : COLOR_GREY) < 0 || table_add(t, state, alive ? NULL : COLOR_GREY) < 0 ||
                    table_add(t, lease, NULL) < 0 || table_add(t, offset, NULL) < 0 ||
                    table_add(t, reg, differs ? COLOR_YELLOW : NULL) < 0 || table_add(t, runs, NULL) < 0)
                        return log_oom();
        }
        if (table_print(t, stdout, colors_enabled(stdout)) < 0)
                return EXIT_FAILURE;
        size_t k = table_rows(t);
        printf("\n%zu node%s listed", k, k == 1 ? "" : "s");
        if (differ)
                printf("; %u with another registry than most alive nodes: a job fires only from the nodes that "
                       "define it", differ);
        puts(".");
        return EXIT_SUCCESS;
}

/* --- import-crontab ------------------------------------------------------------------ */

static const verb_help import_crontab_help = {
        "import-crontab [FILE|-] [--json]",
        "Turns a crontab (default: standard input) into registry YAML on standard output, for you to\n"
        "review and save as a drop-in (e.g. jobs.d/crontab.yaml), then `schedctl check`. Every line it\n"
        "could not carry over is kept as a comment saying why; MAILTO and SHELL are noted as\n"
        "unsupported. --json: {\"yaml\", \"jobs\", \"skipped\", \"notes\"}. Works offline.\n",
};

#define CRONTAB_MAX (4U * 1024U * 1024U)

static int verb_import_crontab(int argc, char **argv) {
        char **ops;
        int n, r = collect_operands(argc, argv, &import_crontab_help, NULL, NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n > 1)
                return usage_error("import-crontab takes at most one FILE, found %d arguments", n);
        const char *path = n == 1 ? ops[0] : "-";
        bool from_stdin = streq(path, "-");
        _cleanup_fclose_ FILE *in = from_stdin ? NULL : fopen(path, "re");
        if (!from_stdin && !in) {
                fprintf(stderr, "schedctl: cannot open %s: %m\n", path);
                return EXIT_FAILURE;
        }
        _cleanup_free_ char *text = malloc(CRONTAB_MAX + 1);
        if (!text)
                return log_oom();
        size_t len = fread(text, 1, CRONTAB_MAX + 1, from_stdin ? stdin : in);
        if (ferror(from_stdin ? stdin : in)) {
                fprintf(stderr, "schedctl: cannot read %s: %m\n", from_stdin ? "standard input" : path);
                return EXIT_FAILURE;
        }
        if (len > CRONTAB_MAX) {
                fprintf(stderr, "schedctl: %s is larger than %u bytes; expected a crontab\n",
                        from_stdin ? "standard input" : path, CRONTAB_MAX);
                return EXIT_FAILURE;
        }
        if (memchr(text, '\0', len)) {
                fprintf(stderr, "schedctl: %s holds a NUL byte; expected a text crontab\n", from_stdin ? "standard input" : path);
                return EXIT_FAILURE;
        }
        text[len] = '\0';

        _cleanup_free_ char *yaml = NULL;
        size_t ylen = 0;
        crontab_import_stats st;
        FILE *out = open_memstream(&yaml, &ylen);
        if (!out)
                return log_oom();
        r = crontab_import(text, from_stdin ? "standard input" : path, out, &st);
        if (fclose(out) != 0 || r < 0)
                return log_oom();
        if (arg_json) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s, s:i, s:i, s:i}", "yaml", yaml, "jobs", (int) st.jobs,
                                                             "skipped", (int) st.skipped, "notes", (int) st.notes);
                print_json(o);
        } else
                fputs(yaml, stdout);
        fprintf(stderr, "schedctl: %u job%s; %u line%s not carried over, %u noted (see the comments)\n", st.jobs,
                st.jobs == 1 ? "" : "s", st.skipped, st.skipped == 1 ? "" : "s", st.notes);
        return EXIT_SUCCESS;
}

/* --- pause, resume, backfill ------------------------------------------------------- */

/* TIME as run --at takes it: RFC 3339, or without an offset local to JOB's zone. */
static int parse_job_time(const char *job, const char *what, const char *s, usec_t *ret) {
        parse_error e = {};
        if (timefmt_parse(s, NULL, ret, &e) >= 0)
                return 0;
        e = (parse_error) {};
        const tz *z = zone_of_job(job);
        if (!z && tz_load("UTC", (tz **) &z) < 0)
                return log_oom();
        if (timefmt_parse(s, z, ret, &e) < 0)
                return usage_error("%s: \"%s\": %s; expected RFC 3339 such as 2026-03-29T07:30:00+02:00", what, s,
                                   e.message);
        return 0;
}

static const verb_help pause_help = {
        "pause JOB [--until TIME] [--json]",
        "Holds back JOB's fires (schedule, catch-up, start-up, backfill) until TIME, or until\n"
        "schedctl resume. Fires held back are not run later. Manual runs still go. Kept in the\n"
        "history database: survives restarts and reloads; schedctl list shows it.\n"
        "\n"
        "  --until TIME   fires before TIME are held back (RFC 3339; without an offset, local to\n"
        "                 the job's zone)\n",
};

static const verb_help resume_help = {
        "resume JOB [--json]",
        "Ends a pause of JOB: its next fires run again.\n",
};

static const char *pause_until = NULL;

static int pause_option(int opt, const char *arg) {
        if (opt == OPT_UNTIL) {
                pause_until = arg;
                return -1;
        }
        return usage_error("pause: unexpected option");
}

static int set_paused(int argc, char **argv, bool pause) {
        static const struct option extra[] = { { "until", required_argument, NULL, OPT_UNTIL }, {} };
        const verb_help *h = pause ? &pause_help : &resume_help;
        char **ops;
        int n, r = collect_operands(argc, argv, h, pause ? extra : NULL, pause ? pause_option : NULL, &ops, &n);
        if (r >= 0)
                return r;
        if (n != 1)
                return usage_error("%s takes one JOB, e.g. schedctl %s hello", argv[0], argv[0]);
        json_t *until = json_null();
        if (pause_until) {
                usec_t t;
                if ((r = parse_job_time(ops[0], "pause --until", pause_until, &t)) != 0)
                        return r;
                until = json_integer((json_int_t) t);
        }
        _cleanup_(json_decrefp) json_t *reply = NULL;
        json_t *req = pause ? json_pack("{s:s, s:s, s:o}", FIELD_COMMAND, control_command_name(CONTROL_PAUSE), FIELD_JOB,
                                        ops[0], FIELD_UNTIL, until)
                            : json_pack("{s:s, s:s}", FIELD_COMMAND, control_command_name(CONTROL_RESUME), FIELD_JOB, ops[0]);
        r = call(req, CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json)
                print_json(reply);
        else if (!pause)
                printf("Resumed %s: its next fires run.\n", ops[0]);
        else if (pause_until) {
                char a[FORMAT_TIMESTAMP_MAX];
                printf("Paused %s until %s.\n", ops[0],
                       format_timestamp(jusec(reply, FIELD_PAUSED_UNTIL_USEC), zone_of_job(ops[0]), a, sizeof(a)));
        } else
                printf("Paused %s until schedctl resume %s.\n", ops[0], ops[0]);
        return EXIT_SUCCESS;
}

static int verb_pause(int argc, char **argv) {
        return set_paused(argc, argv, true);
}

static int verb_resume(int argc, char **argv) {
        return set_paused(argc, argv, false);
}

static const verb_help backfill_help = {
        "backfill JOB --from TIME --to TIME [--dry-run] [--json] [--utc]",
        "Runs every fire instant of JOB's cron schedule from --from to --to (both included), oldest\n"
        "first, one after the other, each standing for its instant (what sched_job_scheduled()\n"
        "returns). Each is claimed in history like any fire: an instant that ran before (or was\n"
        "skipped) does not run again, and a backfill cut short by a restart resumes where it was.\n"
        "It waits while the job runs, is disabled or paused. Runs have the trigger catch_up.\n"
        "\n"
        "  --from TIME, --to TIME   the range (RFC 3339; without an offset, local to the job's zone)\n"
        "  --dry-run                list the instants and which of them ran before; run nothing\n",
};

static const char *bf_from = NULL, *bf_to = NULL;
static bool bf_dry = false;

static int backfill_option(int opt, const char *arg) {
        switch (opt) {
        case OPT_FROM:
                bf_from = arg;
                return -1;
        case OPT_TO:
                bf_to = arg;
                return -1;
        case OPT_DRY_RUN:
                bf_dry = true;
                return -1;
        }
        return usage_error("backfill: unexpected option");
}

static int verb_backfill(int argc, char **argv) {
        static const struct option extra[] = {
                { "from", required_argument, NULL, OPT_FROM },
                { "to", required_argument, NULL, OPT_TO },
                { "dry-run", no_argument, NULL, OPT_DRY_RUN },
                {},
        };
        char **ops;
        usec_t from, to;
        int n, r = collect_operands(argc, argv, &backfill_help, extra, backfill_option, &ops, &n);
        if (r >= 0)
                return r;
        if (n != 1)
                return usage_error("backfill takes one JOB, e.g. schedctl backfill report --from 2026-03-01T00:00 "
                                   "--to 2026-03-02T00:00");
        if (!bf_from || !bf_to)
                return usage_error("backfill needs --from TIME and --to TIME");
        if ((r = parse_job_time(ops[0], "backfill --from", bf_from, &from)) != 0 ||
            (r = parse_job_time(ops[0], "backfill --to", bf_to, &to)) != 0)
                return r;
        if (from > to)
                return usage_error("backfill: --from %s is after --to %s; expected the older instant first", bf_from,
                                   bf_to);

        _cleanup_(json_decrefp) json_t *reply = NULL;
        r = call(json_pack("{s:s, s:s, s:I, s:I, s:b}", FIELD_COMMAND, control_command_name(CONTROL_BACKFILL), FIELD_JOB,
                           ops[0], FIELD_FROM, (json_int_t) from, FIELD_TO, (json_int_t) to, FIELD_DRY_RUN, bf_dry),
                 CALL_TIMEOUT, &reply, NULL);
        if (r != EXIT_SUCCESS)
                return r;
        if (arg_json) {
                print_json(reply);
                return EXIT_SUCCESS;
        }
        json_t *v = json_object_get(reply, FIELD_INSTANTS_USEC), *x;
        size_t total = json_array_size(v), i;
        long long claimed = jint(reply, FIELD_CLAIMED, 0);
        if (bf_dry) {
                const tz *z = zone_of_job(ops[0]);
                json_array_foreach(v, i, x) {
                        char a[FORMAT_TIMESTAMP_MAX];
                        printf("%s\n", format_timestamp((usec_t) json_integer_value(x), z, a, sizeof(a)));
                }
                printf("\n%zu instant%s; %lld ran before and would be left out (dry run: nothing started).\n", total,
                       total == 1 ? "" : "s", claimed);
        } else
                printf("Backfilling %s: %zu instant%s, %lld ran before and are left out; the rest run oldest first "
                       "(schedctl status %s shows progress).\n",
                       ops[0], total, total == 1 ? "" : "s", claimed, ops[0]);
        return EXIT_SUCCESS;
}

/* --- main ------------------------------------------------------------------- */

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
} verbs[] = {
        { "check", verb_check },     { "next", verb_next },       { "list", verb_list },
        { "status", verb_status },   { "run", verb_run },         { "enable", verb_enable },
        { "disable", verb_disable }, { "history", verb_history }, { "reload", verb_reload },
        { "metrics", verb_metrics }, { "import-crontab", verb_import_crontab },
        { "pause", verb_pause },     { "resume", verb_resume },   { "backfill", verb_backfill },
        { "nodes", verb_nodes },
};

int main(int argc, char **argv) {
        enum { ARG_UTC = 0x100 };
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "utc", no_argument, NULL, ARG_UTC },
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
                case ARG_UTC:
                        arg_utc = true;
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
                        free(socket_path);
                        free(admin_group);
                        tz_cache_clear();
                        return r;
                }
        return usage_error("unknown command \"%s\"", argv[optind]);
}
