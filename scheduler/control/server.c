/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/clock.h"
#include "basic/escape.h"
#include "control/protocol.h"
#include "core/metrics.h"
#include "control/server-cluster.h"
#include "core/cluster-control.h"
#include "control/server-jobops.h"
#include "control/server.h"
#include "basic/fs-util.h"
#include "basic/log.h"
#include "basic/socket-util.h"

/* How long new control connections wait after accept() ran out of descriptors. */
#define ACCEPT_PAUSE_USEC (100 * USEC_PER_MSEC)

typedef struct conn conn;

struct control {
        manager *m;
        int fd;
        char *path;
        int dir_fd;      /* the socket's directory, checked when it was opened */
        bool bound;      /* the name in dir_fd is ours to remove: never one another daemon answers on */
        char *base;      /* the socket's name in it */
        char *admin_group; /* as applied to the socket; NULL: none exists */
        gid_t admin_gid;
        bool have_admin_gid;
        sd_event_source *listen_source;
        sd_event_source *accept_resume; /* re-enables listen_source after an accept() out of descriptors */
        bool accept_failing;            /* said so; said again after an accept() that worked */
        conn *conns;
        unsigned n_conns;
};

struct conn {
        control *c;
        int fd;
        uid_t uid;
        bool privileged;
        sd_event_source *io_source, *timer_source;
        char *buf;
        size_t len;
        /* the reply being sent: queued, and written as the peer takes it */
        char *out;
        size_t out_len, out_sent;
        /* a list being streamed: the jobs after LIST_AFTER (by name) are still to come */
        bool listing;
        bool list_any;    /* an item was written: the next one needs a comma */
        char *list_after;
        size_t list_left; /* jobs still wanted (the request's limit), SIZE_MAX: all */
        usec_t request_deadline; /* CLOCK_MONOTONIC: the next request line must be complete by then */
        usec_t reply_deadline;   /* CLOCK_MONOTONIC: the whole reply must be taken by then */
        int64_t waiting_run; /* > 0: the reply waits for this run */
        conn *next, *prev;
};

static conn *conn_free(conn *x) {
        if (!x)
                return NULL;
        control *c = x->c;
        if (x->prev)
                x->prev->next = x->next;
        else if (c->conns == x)
                c->conns = x->next;
        if (x->next)
                x->next->prev = x->prev;
        c->n_conns--;
        sd_event_source_disable_unref(x->io_source);
        sd_event_source_disable_unref(x->timer_source);
        if (x->fd >= 0)
                close(x->fd);
        free(x->buf);
        free(x->out);
        free(x->list_after);
        free(x);
        return NULL;
}

static bool conn_replying(const conn *x) {
        return x->out_len > x->out_sent || x->listing;
}

/* Appends N bytes to the reply being sent. */
static int conn_append(conn *x, const char *p, size_t n) {
        if (x->out_sent > 0 && x->out_sent == x->out_len)
                x->out_len = x->out_sent = 0;
        char *t = realloc(x->out, x->out_len + n);
        if (!t)
                return -ENOMEM;
        memcpy(t + x->out_len, p, n);
        x->out = t;
        x->out_len += n;
        return 0;
}

static int conn_append_json(conn *x, json_t *v) {
        _cleanup_free_ char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        return s ? conn_append(x, s, strlen(s)) : -ENOMEM;
}

static void conn_arm(conn *x);
static void conn_flush(conn *x);

/* Queues REPLY (consumed) as one line; with NOW, sends what the socket takes at once (and, the
 * reply taken, serves the next request); else all of it goes out from the loop, as the peer
 * reads (conn_flush()), so a large reply is never cut and a slow reader never blocks the
 * daemon. */
static void conn_queue(conn *x, json_t *reply, bool now) {
        int q = reply ? conn_append_json(x, reply) : -ENOMEM;
        json_decref(reply);
        if (q >= 0)
                q = conn_append(x, "\n", 1);
        if (q < 0) {
                static const char oom[] = "{\"" FIELD_OK "\":false,\"" FIELD_ERROR "\":\"out of memory\",\"" FIELD_ERRNO
                        "\":\"ENOMEM\"}\n";
                (void) !send(x->fd, oom, sizeof(oom) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                conn_free(x);
                return;
        }
        x->reply_deadline = clock_now_monotonic() + CONTROL_REPLY_TIMEOUT;
        if (now)
                conn_flush(x);
        else
                conn_arm(x);
}

static void conn_send(conn *x, json_t *reply) {
        conn_queue(x, reply, true);
}

static json_t *error_reply(int err, const char *fmt, ...) _printf_(2, 3);
static json_t *error_reply(int err, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        const char *name = strerrorname_np(err < 0 ? -err : err);
        return json_pack("{s:b, s:s, s:s}", FIELD_OK, 0, FIELD_ERROR, msg, FIELD_ERRNO, name ?: "EIO");
}

static json_t *usec_or_null(usec_t u) {
        return u == USEC_INFINITY ? json_null() : json_integer((json_int_t) u);
}

static const char *job_state(const job_rt *j) {
        if (j->n_running > 0)
                return CONTROL_STATE_RUNNING;
        if (j->n_retrying > 0)
                return CONTROL_STATE_RETRYING;
        return CONTROL_STATE_IDLE;
}

static json_t *job_json(manager *m, job_rt *j, bool detail) {
        history_job_stats st = {};
        history_job_state js = {};
        (void) history_get_job_stats(m->hist, j->def->name, 0, &st);
        (void) history_get_job_state(m->hist, j->def->name, &js);

        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:b}", FIELD_NAME, j->def->name,
                              FIELD_SCHEDULE, j->def->schedule_expr, FIELD_TIMEZONE, j->def->timezone, FIELD_ENABLED,
                              job_rt_enabled(j), FIELD_STATE, job_state(j), FIELD_NEXT_USEC,
                              usec_or_null(job_rt_enabled(j) ? j->next_fire : USEC_INFINITY), FIELD_LAST_USEC,
                              usec_or_null(st.last_started_usec), FIELD_LAST_STATUS,
                              st.last_status >= 0 ? json_string(run_status_to_string(st.last_status)) : json_null(),
                              FIELD_RUNS, (json_int_t) js.runs_total, FIELD_FAILURES, (json_int_t) js.failures_total,
                              FIELD_AVERAGE_DURATION_USEC, usec_or_null(st.average_duration_usec), FIELD_ENABLED_OVERRIDE,
                              js.enabled_override < 0 ? json_null() : json_boolean(js.enabled_override), FIELD_RUNNING,
                              j->n_running > 0);
        if (o) {
                json_object_set_new(o, FIELD_MISSED, json_integer((json_int_t) js.missed_total));
                control_jobops_job_fields(m, j, o, detail);
                control_cluster_job_node(m, st.last_run_id, o);
        }
        if (!o || !detail)
                return o;

        const job_def *d = j->def;
        json_object_set_new(o, FIELD_DESCRIPTION, d->description ? json_string(d->description) : json_null());
        json_object_set_new(o, FIELD_PLUGIN, json_string(d->plugin_path));
        json_object_set_new(o, FIELD_SINGLETON, json_boolean(d->singleton));
        json_object_set_new(o, FIELD_TIMEOUT_USEC, usec_or_null(d->timeout));
        usec_t thr = d->misfire_threshold != MISFIRE_INHERIT ? d->misfire_threshold : m->reg->reg->misfire_threshold;
        json_object_set_new(o, FIELD_MISFIRE_THRESHOLD_USEC, thr == MISFIRE_AUTO ? json_null() : usec_or_null(thr));
        json_object_set_new(o, FIELD_RETRY, json_pack("{s:i, s:I, s:I}", FIELD_ATTEMPTS, (int) d->retry.attempts, FIELD_BACKOFF_USEC,
                                                  (json_int_t) d->retry.backoff, FIELD_MAX_BACKOFF_USEC,
                                                  (json_int_t) d->retry.max_backoff));
        json_object_set_new(o, FIELD_RUN_ON_STARTUP, json_boolean(d->run_on_startup));
        json_object_set_new(o, FIELD_CATCH_UP, json_boolean(d->catch_up));
        json_object_set_new(o, FIELD_SOURCE, json_pack("{s:s, s:i}", FIELD_FILE, d->file ?: "", FIELD_LINE, (int) d->line));

        /* the next few fires, as schedctl next would show them */
        json_t *next = json_array();
        if (d->schedule.kind == SCHEDULE_CRON) {
                int64_t t = (int64_t) (clock_now_realtime() / USEC_PER_SEC), n;
                for (int i = 0; i < 5 && schedule_next(&d->schedule, d->zone, t, &n) >= 0; i++) {
                        json_array_append_new(next, json_integer((json_int_t) n * (json_int_t) USEC_PER_SEC));
                        t = n;
                }
        } else if (j->next_fire != USEC_INFINITY)
                for (int i = 0; i < 5; i++)
                        json_array_append_new(next, json_integer((json_int_t) (j->next_fire + (usec_t) i * d->schedule.interval)));
        json_object_set_new(o, FIELD_NEXT_FIRES_USEC, next);
        return o;
}

/* Run output and plugin messages are whatever bytes a job wrote, and the output tail may start
 * inside a character; JSON strings must be UTF-8 or the whole reply fails to encode. Invalid
 * bytes become U+FFFD. NULL stays null. */
static json_t *json_string_lossy(const char *s, size_t n) {
        if (!s)
                return json_null();
        json_t *v = json_stringn(s, n);
        if (v)
                return v;
        _cleanup_free_ char *buf = malloc(n * 3 + 1);
        if (!buf)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < n;) {
                size_t k = utf8_sequence((const unsigned char *) s + i, n - i);
                if (k == 0) {
                        memcpy(buf + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i++;
                        continue;
                }
                memcpy(buf + o, s + i, k);
                o += k;
                i += k;
        }
        return json_stringn_nocheck(buf, o);
}

/* A run row; with the zone of its job, if the job is still in the registry, for showing its
 * times (so that a client needs no list of every job for that). */
static json_t *run_row_json(manager *m, const history_run *r, const char *node) {
        job_rt *j = manager_find_job(m, r->job);
        json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:i}", FIELD_ID,
                         (json_int_t) r->id, FIELD_JOB, r->job, FIELD_TRIGGER, run_trigger_to_string(r->trigger), FIELD_ATTEMPT,
                         (int) r->attempt, FIELD_SCHEDULED_USEC, usec_or_null(r->scheduled_usec), FIELD_STARTED_USEC,
                         usec_or_null(r->started_usec), FIELD_FINISHED_USEC, usec_or_null(r->finished_usec), FIELD_STATUS,
                         run_status_to_string(r->status), FIELD_EXIT_CODE,
                         r->exit_code >= 0 ? json_integer(r->exit_code) : json_null(), FIELD_SIGNAL,
                         r->signal > 0 ? json_integer(r->signal) : json_null(), FIELD_DURATION_USEC,
                         usec_or_null(r->duration_usec), FIELD_MESSAGE, json_string_lossy(r->message, r->message ? strlen(r->message) : 0),
                         FIELD_OUTPUT, json_string_lossy(r->output, r->output_size), FIELD_PID,
                         (int) r->pid);
        if (o && j)
                json_object_set_new(o, FIELD_TIMEZONE, json_string(j->def->timezone));
        if (o && r->status == RUN_STATUS_MISSED) {
                json_object_set_new(o, FIELD_MISSED_COUNT, json_integer((json_int_t) r->missed_count));
                json_object_set_new(o, FIELD_MISSED_LAST_USEC, usec_or_null(r->missed_last_usec));
        }
        if (o)
                json_object_set_new(o, FIELD_NODE, json_string(node ?: ""));
        return o;
}

json_t *control_run_reply(const run *r) {
        return json_pack("{s:b, s:I, s:s, s:s, s:o, s:o, s:o, s:I}", FIELD_OK, 1, FIELD_RUN_ID, (json_int_t) r->id, FIELD_JOB,
                         r->def->name, FIELD_STATUS, run_status_to_string(r->status), FIELD_EXIT_CODE,
                         r->exit_code >= 0 ? json_integer(r->exit_code) : json_null(), FIELD_SIGNAL,
                         r->signal > 0 ? json_integer(r->signal) : json_null(), FIELD_MESSAGE,
                         json_string_lossy(r->message, strlen(r->message)),
                         FIELD_DURATION_USEC, (json_int_t) r->duration);
}

/* The first job of BY_NAME (N, sorted) whose name sorts after AFTER (NULL: the first). */
static size_t first_after(job_rt **by_name, size_t n, const char *after) {
        size_t lo = 0, hi = n;
        if (!after)
                return 0;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(by_name[mid]->def->name, after) <= 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* Adds the next few jobs of the list being streamed, or its end. A cursor by name, not a
 * pointer or an index, so that a reload between two batches neither frees what is being
 * listed nor shifts it: the list is in name order. */
static int list_continue(conn *x) {
        manager *m = x->c->m;
        size_t i = first_after(m->by_name, m->n_jobs, x->list_after);
        usec_t started = clock_now_monotonic();
        int q;

        for (unsigned k = 0; i < m->n_jobs && x->list_left > 0 && k < CONTROL_LIST_BATCH; i++, k++) {
                job_rt *j = m->by_name[i];
                json_t *o = job_json(m, j, false);
                if (!o)
                        return -ENOMEM;
                q = x->list_any ? conn_append(x, ",", 1) : 0;
                x->list_any = true;
                if (q >= 0)
                        q = conn_append_json(x, o);
                json_decref(o);
                if (q < 0)
                        return q;
                char *n = strdup(j->def->name);
                if (!n)
                        return -ENOMEM;
                free(x->list_after);
                x->list_after = n;
                if (x->list_left != SIZE_MAX)
                        x->list_left--;
                /* the stats of a job come from history: keep one batch short on a slow disk */
                if (clock_now_monotonic() - started > CONTROL_BATCH_USEC)
                        break;
        }
        if (i < m->n_jobs && x->list_left > 0)
                return 0;
        x->listing = false;
        q = conn_append(x, "],\"" FIELD_MORE "\":", strlen("],\"" FIELD_MORE "\":"));
        if (q >= 0)
                q = conn_append(x, i < m->n_jobs ? "true}\n" : "false}\n", i < m->n_jobs ? 6 : 7);
        return q;
}

/* Starts streaming the list: {"ok":true,"now_usec":N,"jobs":[...],"more":B}. */
static void list_start(conn *x, json_t *req) {
        json_t *after = json_object_get(req, FIELD_AFTER), *lim = json_object_get(req, FIELD_LIMIT);
        if ((after && !json_is_null(after) && !json_is_string(after)) ||
            (lim && !json_is_null(lim) && (!json_is_integer(lim) || json_integer_value(lim) < 1))) {
                conn_send(x, error_reply(-EINVAL, "\"" FIELD_AFTER "\" must be a job name and \"" FIELD_LIMIT
                                                  "\" a count of at least 1"));
                return;
        }
        x->list_left = json_is_integer(lim) ? (size_t) json_integer_value(lim) : SIZE_MAX;
        free(x->list_after);
        x->list_after = json_is_string(after) ? strdup(json_string_value(after)) : NULL;
        char head[128];
        int n = snprintf(head, sizeof(head), "{\"" FIELD_OK "\":true,\"" FIELD_NOW_USEC "\":%" PRIu64 ",\"" FIELD_JOBS "\":[",
                         clock_now_realtime());
        if ((json_is_string(after) && !x->list_after) || conn_append(x, head, (size_t) n) < 0) {
                conn_send(x, NULL);
                return;
        }
        x->listing = true;
        x->list_any = false;
        x->reply_deadline = clock_now_monotonic() + CONTROL_REPLY_TIMEOUT;
        conn_flush(x);
}

static const char *req_string(json_t *req, const char *key) {
        json_t *v = json_object_get(req, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool req_usec(json_t *req, const char *key, usec_t *ret) {
        json_t *v = json_object_get(req, key);
        if (!v || json_is_null(v))
                return true;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return false;
        *ret = (usec_t) json_integer_value(v);
        return true;
}

static json_t *metrics_reply(manager *m) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int q = manager_metrics_text(m, &text, &len);
        if (q == -E2BIG)
                return error_reply(q, "the metrics exposition is larger than %u bytes", METRICS_TEXT_MAX);
        if (q < 0)
                return error_reply(q, "cannot render the metrics: %s", strerror(-q));
        return json_pack("{s:b, s:s%}", FIELD_OK, 1, FIELD_TEXT, text, len);
}

json_t *control_dispatch(manager *m, json_t *req, bool privileged, int64_t *ret_wait_run_id) {
        const char *cmd = req_string(req, FIELD_COMMAND), *name = req_string(req, FIELD_JOB);
        const control_command *c = control_command_find(cmd);
        control_command_id id = c ? c->id : _CONTROL_COMMAND_MAX;
        int q;

        if (!json_is_object(req) || !cmd)
                return error_reply(-EINVAL, "expected a JSON object with a \"" FIELD_COMMAND "\" string");

        if (c && c->admin && !privileged)
                return error_reply(-EPERM, "\"%s\" changes the scheduler and needs root or membership of group \"%s\"",
                                   cmd, m->reg->reg->admin_group ?: "(none)");

        if (id == CONTROL_LIST) {
                /* the socket streams a list (list_start()); this whole reply at once is for tests */
                json_t *jobs = json_array();
                for (size_t i = 0; i < m->n_jobs; i++)
                        json_array_append_new(jobs, job_json(m, m->by_name[i], false));
                return json_pack("{s:b, s:o, s:I, s:b}", FIELD_OK, 1, FIELD_JOBS, jobs, FIELD_NOW_USEC,
                                 (json_int_t) clock_now_realtime(), FIELD_MORE, 0);
        }
        if (id == CONTROL_RELOAD) {
                diag_list d = {};
                q = manager_reload(m, &d);
                if (q < 0) {
                        json_t *errs = json_array();
                        for (size_t i = 0; i < d.n; i++) {
                                _cleanup_free_ char *s = diag_format(&d.items[i]);
                                json_array_append_new(errs, json_string(s ?: d.items[i].message));
                        }
                        diag_list_clear(&d);
                        json_t *r = error_reply(q, "the new registry was not taken; the running one stays");
                        json_object_set_new(r, FIELD_ERRORS, errs);
                        return r;
                }
                json_t *changed = json_array();
                for (size_t i = 0; i < m->n_reload_plugins_changed; i++)
                        json_array_append_new(changed, json_string(m->reload_plugins_changed[i]));
                return json_pack("{s:b, s:I, s:o}", FIELD_OK, 1, FIELD_JOBS, (json_int_t) m->n_jobs,
                                 FIELD_PLUGINS_CHANGED, changed);
        }
        if (id == CONTROL_HISTORY) {
                usec_t since = 0;
                json_t *lim = json_object_get(req, FIELD_LIMIT);
                const char *st = req_string(req, FIELD_STATUS);
                run_status status = _RUN_STATUS_INVALID;
                history_run *runs = NULL;
                size_t n = 0;

                if (!req_usec(req, FIELD_SINCE, &since))
                        return error_reply(-EINVAL, "\"" FIELD_SINCE "\" must be microseconds since the epoch");
                /* each run carries up to HISTORY_OUTPUT_MAX bytes of output: the rows of one reply
                 * are held in memory at once */
                if (lim && !json_is_null(lim) &&
                    (!json_is_integer(lim) || json_integer_value(lim) < 1 || json_integer_value(lim) > CONTROL_HISTORY_MAX))
                        return error_reply(-EINVAL, "\"" FIELD_LIMIT "\" must be a count from 1 to %u; ask again with "
                                                    "\"" FIELD_SINCE "\" for more", CONTROL_HISTORY_MAX);
                if (st && (status = run_status_from_string(st)) < 0)
                        return error_reply(-EINVAL, "unknown status \"%s\"", st);
                /* a removed job's rows are kept: shown, saying it is gone */
                bool known = !name || manager_find_job(m, name);
                history_job_state js;
                if (!known && history_get_job_state(m->hist, name, &js) <= 0)
                        return error_reply(-ENOENT, "no job \"%s\" in the registry or in history", name);
                q = history_list_runs(m->hist, name, since, status,
                                      json_is_integer(lim) ? (unsigned) json_integer_value(lim) : 20, &runs, &n);
                if (q < 0)
                        return error_reply(q, "reading history failed: %s", history_last_error(m->hist));
                json_t *arr = json_array();
                char **nodes = n ? calloc(n, sizeof(char *)) : NULL;
                if (nodes)
                        control_cluster_run_nodes(m, runs, n, nodes);
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, run_row_json(m, &runs[i], nodes ? nodes[i] : NULL));
                if (nodes)
                        control_cluster_nodes_free(nodes, n);
                free(nodes);
                history_runs_free(runs, n);
                return json_pack("{s:b, s:o, s:b}", FIELD_OK, 1, FIELD_RUNS, arr, FIELD_IN_REGISTRY, known);
        }

        if (id == CONTROL_METRICS)
                return metrics_reply(m);
        if (id == CONTROL_NODES)
                return control_cluster_nodes_reply(m);
        if (!name && id == CONTROL_STATUS) {
                /* the daemon's own status: its jobs, runs in flight and the history's size */
                uint64_t rows = 0, bytes = 0;
                manager_flush_history(m);
                if ((q = history_get_size(m->hist, &rows, &bytes)) < 0)
                        return error_reply(q, "reading history failed: %s", history_last_error(m->hist));
                return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", FIELD_OK, 1, FIELD_JOBS, (json_int_t) m->n_jobs,
                                 FIELD_RUNNING_RUNS, (json_int_t) m->n_running, FIELD_WAITING_FIRES,
                                 (json_int_t) fire_queue_size(&m->fire_queue), FIELD_HISTORY_RUNS, (json_int_t) rows,
                                 FIELD_HISTORY_BYTES, (json_int_t) bytes, FIELD_NOW_USEC,
                                 (json_int_t) clock_now_realtime(), FIELD_NODE,
                                 m->cluster_control ? cluster_control_node(m->cluster_control) : "");
        }
        if (!name)
                return error_reply(-EINVAL, "\"%s\" needs a \"" FIELD_JOB "\" name", cmd);
        job_rt *j = manager_find_job(m, name);
        if (!j && id == CONTROL_RUN && m->cluster_control) {
                /* a job of the cluster (it has a row in the shared jobs table) that this node's
                 * registry lacks, during a rollout: a node that defines it runs it */
                history_job_state js;
                usec_t at = USEC_INFINITY;
                if (!req_usec(req, FIELD_AT, &at))
                        return error_reply(-EINVAL, "\"" FIELD_AT "\" must be microseconds since the epoch");
                if (history_get_job_state(m->hist, name, &js) > 0) {
                        if (json_is_true(json_object_get(req, FIELD_WAIT)))
                                return error_reply(-EOPNOTSUPP, "job \"%s\" is not in this node's registry; run it "
                                                                "without --wait, or from a node that defines it", name);
                        return control_cluster_run_elsewhere(m, name, at);
                }
        }
        if (!j)
                return error_reply(-ENOENT, "no job \"%s\" in the registry; schedctl list shows the jobs", name);

        if (id == CONTROL_STATUS) {
                history_run *runs = NULL;
                size_t n = 0;
                json_t *o = job_json(m, j, true), *arr = json_array();
                if (history_list_runs(m->hist, name, 0, _RUN_STATUS_INVALID, 10, &runs, &n) >= 0) {
                        char *nodes[10];
                        control_cluster_run_nodes(m, runs, n, nodes);
                        for (size_t i = 0; i < n; i++)
                                json_array_append_new(arr, run_row_json(m, &runs[i], nodes[i]));
                        control_cluster_nodes_free(nodes, n);
                }
                history_runs_free(runs, n);
                json_object_set_new(o, FIELD_LAST_RUNS, arr);
                return json_pack("{s:b, s:o}", FIELD_OK, 1, FIELD_JOB, o);
        }
        if (id == CONTROL_ENABLE || id == CONTROL_DISABLE) {
                q = manager_set_enabled(m, name, id == CONTROL_ENABLE);
                if (q < 0)
                        return error_reply(q, "could not persist the change: %s", history_last_error(m->hist));
                return json_pack("{s:b, s:s, s:b}", FIELD_OK, 1, FIELD_JOB, name, FIELD_ENABLED, id == CONTROL_ENABLE);
        }
        json_t *op = control_jobops_dispatch(m, id, j, req);
        if (op)
                return op;
        if (id == CONTROL_RUN) {
                usec_t at = USEC_INFINITY;
                int64_t run_id;
                if (!req_usec(req, FIELD_AT, &at))
                        return error_reply(-EINVAL, "\"" FIELD_AT "\" must be microseconds since the epoch");
                q = manager_run_now(m, name, at, &run_id);
                if (q == -EBUSY)
                        return error_reply(q, "job \"%s\" cannot start now (singleton run in flight or max_concurrent "
                                              "reached); the attempt is recorded as skipped",
                                           name);
                if (q < 0)
                        return error_reply(q, "could not start job \"%s\": %s", name, strerror(-q));
                if (json_is_true(json_object_get(req, FIELD_WAIT))) {
                        *ret_wait_run_id = run_id;
                        return NULL;
                }
                return json_pack("{s:b, s:I, s:s}", FIELD_OK, 1, FIELD_RUN_ID, (json_int_t) run_id, FIELD_JOB, name);
        }
        return error_reply(-EOPNOTSUPP, "unknown command \"%s\"; expected " CONTROL_COMMANDS_EXPECTED,
                           cmd);
}

static void handle_line(conn *x, const char *line, size_t n) {
        json_error_t e;
        int64_t wait = 0;
        json_t *req = json_loadb(line, n, JSON_REJECT_DUPLICATES, &e), *reply;

        if (req && json_is_object(req) && control_command_find(req_string(req, FIELD_COMMAND)) &&
            control_command_find(req_string(req, FIELD_COMMAND))->id == CONTROL_LIST) {
                list_start(x, req);
                json_decref(req);
                return;
        }
        if (!req)
                reply = error_reply(-EINVAL, "request is not valid JSON: %s (column %d)", e.text, e.column);
        else
                reply = control_dispatch(x->c->m, req, x->privileged, &wait);
        json_decref(req);
        manager_flush_history(x->c->m);
        if (!reply && wait > 0) {
                x->waiting_run = wait;
                conn_arm(x);
                return;
        }
        /* no reply and no run to wait for: making it failed (out of memory, or text the reply
         * cannot carry): said, not left for the client's timeout */
        if (!reply)
                reply = error_reply(-ENOMEM, "the reply could not be made (out of memory, or text that is not "
                                             "UTF-8); the daemon's log may say more");
        conn_send(x, reply);
}

/* Serves the complete request lines received so far, one at a time: the next waits until the
 * reply to the previous one is sent. Returns false if X was freed. */
static bool conn_serve(conn *x) {
        char *nl;
        while (x->waiting_run == 0 && !conn_replying(x) && (nl = memchr(x->buf, '\n', x->len))) {
                size_t l = (size_t) (nl - x->buf);
                control *c = x->c;
                unsigned before = c->n_conns;
                /* the request is taken out of the buffer first: a reply sent at once may free X */
                _cleanup_free_ char *line = malloc(l + 1);
                if (line)
                        memcpy(line, x->buf, l);
                memmove(x->buf, nl + 1, x->len - l - 1);
                x->len -= l + 1;
                if (!line) {
                        conn_free(x);
                        return false;
                }
                handle_line(x, line, l);
                if (c->n_conns != before)
                        return false;
        }
        conn_arm(x);
        return true;
}

/* Sends what the socket takes of the queued reply, and the next batch of a list once the
 * queue is short. When the reply is complete, the next request is served. */
static void conn_flush(conn *x) {
        /* what a client sees in a reply was logged before it (log_batch_start()) */
        log_flush();
        while (x->out_len > x->out_sent) {
                ssize_t w = send(x->fd, x->out + x->out_sent, x->out_len - x->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN)
                        break;
                if (w < 0) {
                        conn_free(x);
                        return;
                }
                x->out_sent += (size_t) w;
        }
        if (x->out_len == x->out_sent) {
                x->out_len = x->out_sent = 0;
                /* one batch per wake-up: due fires and other peers get their turn in between */
                if (x->listing && list_continue(x) < 0) {
                        conn_free(x);
                        return;
                }
        }
        if (!conn_replying(x)) {
                free(x->out);
                x->out = NULL;
                /* the reply is taken: the next request has its own deadline */
                x->request_deadline = clock_now_monotonic() + CONTROL_REQUEST_TIMEOUT;
                (void) conn_serve(x);
                return;
        }
        conn_arm(x);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        conn *x = userdata;
        if (conn_replying(x))
                log_notice("Control connection of uid %u closed: it did not take its reply in time.", (unsigned) x->uid);
        conn_free(x);
        return 0;
}

/* Sets what X waits for: the rest of a request (EPOLLIN, by its absolute deadline: a byte now
 * and then does not keep a connection), room for its reply (EPOLLOUT), or a run (no
 * deadline). */
static void conn_arm(conn *x) {
        bool replying = conn_replying(x);
        (void) sd_event_source_set_io_events(x->io_source, replying ? EPOLLOUT : EPOLLIN);
        if (x->waiting_run > 0 && !replying) {
                (void) sd_event_source_set_enabled(x->timer_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(x->timer_source, replying ? x->reply_deadline : x->request_deadline);
        (void) sd_event_source_set_enabled(x->timer_source, SD_EVENT_ONESHOT);
}

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn *x = userdata;
        char buf[4096];

        if (conn_replying(x)) {
                if (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                        conn_flush(x);
                return 0;
        }
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                conn_free(x);
                return 0;
        }
        if (x->waiting_run > 0) /* one request at a time while a run is awaited */
                return 0;
        if (x->len + (size_t) n > CONTROL_LINE_MAX) {
                /* nothing after it can be read as a request: a short last word, and close */
                static const char big[] = "{\"" FIELD_OK "\":false,\"" FIELD_ERROR "\":\"request line longer than "
                        STRINGIFY(CONTROL_LINE_MAX) " bytes\",\"" FIELD_ERRNO "\":\"E2BIG\"}\n";
                (void) !send(x->fd, big, sizeof(big) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                conn_free(x);
                return 0;
        }
        char *nb = realloc(x->buf, x->len + (size_t) n);
        if (!nb) {
                conn_free(x);
                return 0;
        }
        x->buf = nb;
        memcpy(x->buf + x->len, buf, (size_t) n);
        x->len += (size_t) n;
        (void) conn_serve(x);
        return 0;
}

static bool peer_privileged(control *c, int fd, uid_t *ret_uid) {
        struct ucred cred;
        socklen_t l = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0)
                return false;
        *ret_uid = cred.uid;
        if (cred.uid == 0 || cred.uid == getuid())
                return true;
        if (!c->have_admin_gid)
                return false;
        if (cred.gid == c->admin_gid)
                return true;
        /* a member of many groups: the kernel says how much room it needs (ERANGE) */
        _cleanup_free_ gid_t *groups = NULL;
        l = 64 * sizeof(gid_t);
        for (;;) {
                gid_t *n = realloc(groups, l);
                if (!n)
                        return false;
                groups = n;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) >= 0)
                        break;
                if (errno != ERANGE)
                        return false;
        }
        for (size_t i = 0; i < l / sizeof(gid_t); i++)
                if (groups[i] == c->admin_gid)
                        return true;
        return false;
}

static void refuse(int fd, const char *message) {
        _cleanup_(json_decrefp) json_t *r = error_reply(-EBUSY, "%s", message);
        _cleanup_free_ char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
        if (t) {
                size_t n = strlen(t);
                t[n] = '\n';
                (void) !send(fd, t, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        close(fd);
}

static int on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        control *c = userdata;
        (void) sd_event_source_set_enabled(c->listen_source, SD_EVENT_ON);
        return 0;
}

/* accept() failed for want of a resource (ERR): new connections wait ACCEPT_PAUSE_USEC. */
static void accept_pause(control *c, int err) {
        int q = sd_event_source_set_enabled(c->listen_source, SD_EVENT_OFF);
        if (q >= 0) {
                if (c->accept_resume)
                        q = sd_event_source_set_time_relative(c->accept_resume, ACCEPT_PAUSE_USEC);
                else
                        q = sd_event_add_time_relative(sd_event_source_get_event(c->listen_source), &c->accept_resume,
                                                       CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC, 10 * USEC_PER_MSEC,
                                                       on_accept_resume, c);
        }
        if (q >= 0)
                q = sd_event_source_set_enabled(c->accept_resume, SD_EVENT_ONESHOT);
        if (q < 0)
                (void) sd_event_source_set_enabled(c->listen_source, SD_EVENT_ON); /* as before: no pause */
        if (!c->accept_failing)
                log_warning_errno(-err, "Cannot accept a control connection (%m); new connections wait, tried again "
                                        "every %s. Too many open files? (LimitNOFILE=, runs' and clients' descriptors)",
                                  "100ms");
        c->accept_failing = true;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        control *c = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                /* Out of descriptors, the peer stays in the backlog and the socket readable: the
                 * loop would spin on it. Accepting pauses a moment instead. */
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        accept_pause(c, errno);
                return 0;
        }
        c->accept_failing = false;
        uid_t uid = (uid_t) -1;
        bool privileged = peer_privileged(c, cfd, &uid);
        /* No one peer may take every slot: each uid but root gets a few, and the last slots are
         * root's, so that root can always reach the daemon. */
        unsigned mine = 0;
        for (conn *y = c->conns; y; y = y->next)
                mine += y->uid == uid;
        if (c->n_conns >= CONTROL_CONNECTIONS_MAX ||
            (uid != 0 && c->n_conns >= CONTROL_CONNECTIONS_MAX - CONTROL_CONNECTIONS_ROOT_RESERVED)) {
                refuse(cfd, "too many control connections; try again");
                return 0;
        }
        if (uid != 0 && mine >= CONTROL_CONNECTIONS_PER_UID) {
                log_notice("Refused a control connection of uid %u: it holds %u already.", (unsigned) uid, mine);
                refuse(cfd, "too many control connections of this user (" STRINGIFY(CONTROL_CONNECTIONS_PER_UID)
                            "); close some and try again");
                return 0;
        }
        conn *x = calloc(1, sizeof(conn));
        if (!x) {
                close(cfd);
                return 0;
        }
        x->c = c;
        x->fd = cfd;
        x->uid = uid;
        x->privileged = privileged;
        x->next = c->conns;
        if (c->conns)
                c->conns->prev = x;
        c->conns = x;
        c->n_conns++;
        x->request_deadline = clock_now_monotonic() + CONTROL_REQUEST_TIMEOUT;
        if (sd_event_add_io(sd_event_source_get_event(s), &x->io_source, cfd, EPOLLIN, on_conn, x) < 0 ||
            sd_event_add_time(sd_event_source_get_event(s), &x->timer_source, CLOCK_MONOTONIC, x->request_deadline,
                              USEC_PER_SEC, on_deadline, x) < 0)
                conn_free(x);
        return 0;
}

static void on_run_finished(manager *m, const run *r, void *userdata) {
        control *c = userdata;
        bool flushed = false;
        for (conn *x = c->conns, *next; x; x = next) {
                next = x->next;
                if (x->waiting_run != r->id)
                        continue;
                x->waiting_run = 0;
                /* whoever waits on this run may read history next: its row visible first. Only
                 * then: a commit at every run's end, waited on or not, cost a WAL write each. */
                if (!flushed) {
                        manager_flush_history(m);
                        flushed = true;
                }
                /* Sent from the loop, not from here: the requests behind it on X must not be
                 * served inside the run's ending (a reload there freed the job state the ending
                 * goes on to use, and counted the ending run as running). May free X, never
                 * another connection. */
                conn_queue(x, control_run_reply(r), false);
        }
}

/* The group that may use the socket: resolved from the registry's admin_group and given to the
 * socket, at start and at every reload, so that rights follow the registry in force. */
static void apply_admin_group(control *c, const char *group) {
        gid_t gid = getgid();
        bool have = false;

        if (group) {
                struct group *g = getgrnam(group);
                if (g) {
                        gid = g->gr_gid;
                        have = true;
                } else
                        log_notice("admin_group \"%s\" does not exist; only root and the daemon's user may use the control "
                                   "socket.", group);
        }
        /* by its name in the checked directory, never following a link put in its place */
        if (fchownat(c->dir_fd, c->base, (uid_t) -1, gid, AT_SYMLINK_NOFOLLOW) < 0) {
                log_warning_errno(-errno, "Cannot give control socket %s to group %s: %m; keeping the previous group's "
                                          "rights.", c->path, group ?: "(none)");
                return;
        }
        if (c->have_admin_gid && (!have || gid != c->admin_gid))
                log_info("Control socket %s: group %s no longer has rights; %s does.", c->path,
                         c->admin_group ?: "(none)", have ? group : "only root");
        c->admin_gid = gid;
        c->have_admin_gid = have;
        free(c->admin_group);
        c->admin_group = have ? strdup(group) : NULL;
}

static void on_reloaded(manager *m, void *userdata) {
        control *c = userdata;
        if (!streq_ptr(m->reg->reg->admin_group, c->admin_group))
                apply_admin_group(c, m->reg->reg->admin_group);
}

/* Opens the socket's directory and checks that only root (or the daemon's user) can change
 * what is in it: the owner of the directory could otherwise swap the socket for a link
 * between bind() and fchownat(), or put up a socket of their own for root's schedctl. */
static int open_socket_dir(const char *path, int *ret_fd) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        const char *dir = dirname(copy);
        _cleanup_close_ int fd = open(dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_PATH);
        struct stat st;
        if (fd < 0)
                return log_error_errno(-errno, "Cannot open %s, the directory of control socket %s: %m", dir, path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(-errno, "Cannot stat %s: %m", dir);
        if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return log_error_errno(-EPERM,
                                       "Refusing control socket %s: its directory %s is owned by uid %u with mode %04o; "
                                       "expected a directory owned by root and writable by no one else (e.g. chown root "
                                       "%s; chmod go-w %s, or a control_socket in a directory of its own).",
                                       path, dir, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777), dir, dir);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int control_new(manager *m, control **ret) {
        const registry *reg = m->reg->reg;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        control *c;
        int q;

        if (isempty(reg->control_socket)) {
                *ret = NULL;
                return 0;
        }
        if (strlen(reg->control_socket) >= sizeof(sa.sun_path))
                return log_error_errno(-ENAMETOOLONG, "control_socket %s: path longer than %zu bytes", reg->control_socket,
                                       sizeof(sa.sun_path) - 1);
        c = calloc(1, sizeof(control));
        if (!c)
                return -ENOMEM;
        c->m = m;
        c->fd = -EBADF;
        c->dir_fd = -EBADF;
        c->path = strdup(reg->control_socket);
        _cleanup_free_ char *copy = strdup(reg->control_socket);
        if (!c->path || !copy || !(c->base = strdup(basename(copy)))) {
                control_free(c);
                return -ENOMEM;
        }

        strcpy(sa.sun_path, c->path);
        q = mkdir_parent(c->path, 0755);
        if (q < 0) {
                log_error_errno(q, "Cannot create the directory of control socket %s: %m", c->path);
                control_free(c);
                return q;
        }
        q = open_socket_dir(c->path, &c->dir_fd);
        if (q < 0) {
                control_free(c);
                return q;
        }
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
                q = log_error_errno(-errno, "Cannot create control socket: %m");
                control_free(c);
                return q;
        }
        /* the directory is checked: a path here is ours. Remove a socket of a previous life,
         * never one something still answers on (another daemon) */
        q = socket_remove_stale(c->path);
        if (q < 0) {
                control_free(c);
                return q;
        }
        /* created 0660 (root and admin_group only, see server.h): no window with another mode,
         * and no chmod() by path that a link could redirect */
        mode_t old = umask(0117);
        q = bind(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        c->bound = q >= 0;
        if (q < 0 || listen(c->fd, 128) < 0) {
                q = log_error_errno(q < 0 ? q : -errno, "Cannot listen on control socket %s: %m", c->path);
                control_free(c);
                return q;
        }
        apply_admin_group(c, reg->admin_group);

        q = sd_event_add_io(m->event, &c->listen_source, c->fd, EPOLLIN, on_accept, c);
        if (q < 0) {
                log_error_errno(q, "Cannot watch control socket: %m");
                control_free(c);
                return q;
        }
        m->control = c;
        m->run_waiter = on_run_finished;
        m->run_waiter_data = c;
        m->reloaded = on_reloaded;
        *ret = c;
        return 0;
}

control *control_free(control *c) {
        if (!c)
                return NULL;
        while (c->conns)
                conn_free(c->conns);
        sd_event_source_disable_unref(c->listen_source);
        sd_event_source_disable_unref(c->accept_resume);
        if (c->fd >= 0)
                close(c->fd);
        if (c->bound)
                (void) unlinkat(c->dir_fd, c->base, 0);
        if (c->dir_fd >= 0)
                close(c->dir_fd);
        if (c->m && c->m->control == c) {
                c->m->control = NULL;
                c->m->run_waiter = NULL;
                c->m->reloaded = NULL;
        }
        free(c->path);
        free(c->base);
        free(c->admin_group);
        free(c);
        return NULL;
}
