/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/clock.h"
#include "control/protocol.h"
#include "control/server-jobops.h"
#include "control/server.h"
#include "basic/fs-util.h"
#include "basic/log.h"

typedef struct conn conn;

struct control {
        manager *m;
        int fd;
        char *path;
        gid_t admin_gid;
        bool have_admin_gid;
        sd_event_source *listen_source;
        conn *conns;
        unsigned n_conns;
};

struct conn {
        control *c;
        int fd;
        uid_t uid;
        bool privileged;
        sd_event_source *io_source, *idle_source;
        char *buf;
        size_t len;
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
        sd_event_source_disable_unref(x->idle_source);
        if (x->fd >= 0)
                close(x->fd);
        free(x->buf);
        free(x);
        return NULL;
}

/* Replies are small; a peer that does not read them loses its connection rather than
 * blocking the daemon. */
static int conn_send(conn *x, json_t *reply) {
        _cleanup_free_ char *s = json_dumps(reply, JSON_COMPACT);
        json_decref(reply);
        if (!s)
                return -ENOMEM;
        size_t n = strlen(s);
        s[n] = '\n';
        const char *p = s;
        size_t left = n + 1;
        while (left > 0) {
                ssize_t w = send(x->fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                p += w;
                left -= (size_t) w;
        }
        return 0;
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
        if (timer_entry_queued(&j->retry.entry))
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
        if (o)
                control_jobops_job_fields(m, j, o, detail);
        if (!o || !detail)
                return o;

        const job_def *d = j->def;
        json_object_set_new(o, FIELD_DESCRIPTION, d->description ? json_string(d->description) : json_null());
        json_object_set_new(o, FIELD_PLUGIN, json_string(d->plugin_path));
        json_object_set_new(o, FIELD_SINGLETON, json_boolean(d->singleton));
        json_object_set_new(o, FIELD_TIMEOUT_USEC, usec_or_null(d->timeout));
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

/* Length of the valid UTF-8 sequence at P (N bytes left), or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *p, size_t n) {
        size_t len;
        uint32_t cp, min;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xE0) == 0xC0)
                len = 2, cp = p[0] & 0x1F, min = 0x80;
        else if ((p[0] & 0xF0) == 0xE0)
                len = 3, cp = p[0] & 0x0F, min = 0x800;
        else if ((p[0] & 0xF8) == 0xF0)
                len = 4, cp = p[0] & 0x07, min = 0x10000;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return len;
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

static json_t *run_row_json(const history_run *r) {
        return json_pack("{s:I, s:s, s:s, s:i, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:i}", FIELD_ID,
                         (json_int_t) r->id, FIELD_JOB, r->job, FIELD_TRIGGER, run_trigger_to_string(r->trigger), FIELD_ATTEMPT,
                         (int) r->attempt, FIELD_SCHEDULED_USEC, usec_or_null(r->scheduled_usec), FIELD_STARTED_USEC,
                         usec_or_null(r->started_usec), FIELD_FINISHED_USEC, usec_or_null(r->finished_usec), FIELD_STATUS,
                         run_status_to_string(r->status), FIELD_EXIT_CODE,
                         r->exit_code >= 0 ? json_integer(r->exit_code) : json_null(), FIELD_SIGNAL,
                         r->signal > 0 ? json_integer(r->signal) : json_null(), FIELD_DURATION_USEC,
                         usec_or_null(r->duration_usec), FIELD_MESSAGE, json_string_lossy(r->message, r->message ? strlen(r->message) : 0),
                         FIELD_OUTPUT, json_string_lossy(r->output, r->output_size), FIELD_PID,
                         (int) r->pid);
}

json_t *control_run_reply(const run *r) {
        return json_pack("{s:b, s:I, s:s, s:s, s:o, s:o, s:o, s:I}", FIELD_OK, 1, FIELD_RUN_ID, (json_int_t) r->id, FIELD_JOB,
                         r->def->name, FIELD_STATUS, run_status_to_string(r->status), FIELD_EXIT_CODE,
                         r->exit_code >= 0 ? json_integer(r->exit_code) : json_null(), FIELD_SIGNAL,
                         r->signal > 0 ? json_integer(r->signal) : json_null(), FIELD_MESSAGE,
                         json_string_lossy(r->message, strlen(r->message)),
                         FIELD_DURATION_USEC, (json_int_t) r->duration);
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
                json_t *jobs = json_array();
                for (size_t i = 0; i < m->n_jobs; i++)
                        json_array_append_new(jobs, job_json(m, m->jobs[i], false));
                return json_pack("{s:b, s:o, s:I}", FIELD_OK, 1, FIELD_JOBS, jobs, FIELD_NOW_USEC, (json_int_t) clock_now_realtime());
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
                return json_pack("{s:b, s:I}", FIELD_OK, 1, FIELD_JOBS, (json_int_t) m->n_jobs);
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
                if (st && (status = run_status_from_string(st)) < 0)
                        return error_reply(-EINVAL, "unknown status \"%s\"", st);
                if (name && !manager_find_job(m, name))
                        return error_reply(-ENOENT, "no job \"%s\" in the registry", name);
                q = history_list_runs(m->hist, name, since, status,
                                      json_is_integer(lim) ? (unsigned) json_integer_value(lim) : 20, &runs, &n);
                if (q < 0)
                        return error_reply(q, "reading history failed: %s", history_last_error(m->hist));
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, run_row_json(&runs[i]));
                history_runs_free(runs, n);
                return json_pack("{s:b, s:o}", FIELD_OK, 1, FIELD_RUNS, arr);
        }

        if (!name)
                return error_reply(-EINVAL, "\"%s\" needs a \"" FIELD_JOB "\" name", cmd);
        job_rt *j = manager_find_job(m, name);
        if (!j)
                return error_reply(-ENOENT, "no job \"%s\" in the registry; schedctl list shows the jobs", name);

        if (id == CONTROL_STATUS) {
                history_run *runs = NULL;
                size_t n = 0;
                json_t *o = job_json(m, j, true), *arr = json_array();
                if (history_list_runs(m->hist, name, 0, _RUN_STATUS_INVALID, 10, &runs, &n) >= 0)
                        for (size_t i = 0; i < n; i++)
                                json_array_append_new(arr, run_row_json(&runs[i]));
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

        if (!req)
                reply = error_reply(-EINVAL, "request is not valid JSON: %s (column %d)", e.text, e.column);
        else
                reply = control_dispatch(x->c->m, req, x->privileged, &wait);
        json_decref(req);
        manager_flush_history(x->c->m);
        if (!reply) {
                x->waiting_run = wait;
                (void) sd_event_source_set_enabled(x->idle_source, SD_EVENT_OFF);
                return;
        }
        /* a failed send shows up as EOF or an error on the next read, which closes the connection */
        (void) conn_send(x, reply);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        conn_free(userdata);
        return 0;
}

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn *x = userdata;
        char buf[4096];

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
                (void) conn_send(x, error_reply(-E2BIG, "request line longer than %u bytes", CONTROL_LINE_MAX));
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

        char *nl;
        while (x->waiting_run == 0 && (nl = memchr(x->buf, '\n', x->len))) {
                size_t l = (size_t) (nl - x->buf);
                handle_line(x, x->buf, l);
                memmove(x->buf, nl + 1, x->len - l - 1);
                x->len -= l + 1;
        }
        if (x->waiting_run == 0)
                (void) sd_event_source_set_time_relative(x->idle_source, CONTROL_IDLE_TIMEOUT);
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
        gid_t groups[256];
        l = sizeof(groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) < 0)
                return false;
        for (size_t i = 0; i < l / sizeof(gid_t); i++)
                if (groups[i] == c->admin_gid)
                        return true;
        return false;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        control *c = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (c->n_conns >= CONTROL_CONNECTIONS_MAX) {
                static const char busy[] = "{\"" FIELD_OK "\":false,\"" FIELD_ERROR "\":\"too many control connections; try again\",\""
                        FIELD_ERRNO "\":\"EBUSY\"}\n";
                (void) !send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                close(cfd);
                return 0;
        }
        conn *x = calloc(1, sizeof(conn));
        if (!x) {
                close(cfd);
                return 0;
        }
        x->c = c;
        x->fd = cfd;
        x->privileged = peer_privileged(c, cfd, &x->uid);
        x->next = c->conns;
        if (c->conns)
                c->conns->prev = x;
        c->conns = x;
        c->n_conns++;
        if (sd_event_add_io(sd_event_source_get_event(s), &x->io_source, cfd, EPOLLIN, on_conn, x) < 0 ||
            sd_event_add_time_relative(sd_event_source_get_event(s), &x->idle_source, CLOCK_MONOTONIC,
                                       CONTROL_IDLE_TIMEOUT, USEC_PER_SEC, on_idle, x) < 0)
                conn_free(x);
        return 0;
}

static void on_run_finished(manager *m, const run *r, void *userdata) {
        control *c = userdata;
        for (conn *x = c->conns, *next; x; x = next) {
                next = x->next;
                if (x->waiting_run != r->id)
                        continue;
                x->waiting_run = 0;
                if (conn_send(x, control_run_reply(r)) < 0) {
                        conn_free(x);
                        continue;
                }
                (void) sd_event_source_set_time_relative(x->idle_source, CONTROL_IDLE_TIMEOUT);
                (void) sd_event_source_set_enabled(x->idle_source, SD_EVENT_ONESHOT);
        }
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
        c->path = strdup(reg->control_socket);
        if (!c->path) {
                control_free(c);
                return -ENOMEM;
        }
        if (reg->admin_group) {
                struct group *g = getgrnam(reg->admin_group);
                if (g) {
                        c->admin_gid = g->gr_gid;
                        c->have_admin_gid = true;
                } else
                        log_notice("admin_group \"%s\" does not exist; only root and the daemon's user may change jobs.",
                                   reg->admin_group);
        }

        strcpy(sa.sun_path, c->path);
        q = mkdir_parent(c->path, 0755);
        if (q < 0) {
                log_error_errno(q, "Cannot create the directory of control socket %s: %m", c->path);
                control_free(c);
                return q;
        }
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
                q = log_error_errno(-errno, "Cannot create control socket: %m");
                control_free(c);
                return q;
        }
        (void) unlink(c->path); /* a stale socket from a previous life */
        if (bind(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(c->fd, 128) < 0) {
                q = log_error_errno(-errno, "Cannot listen on control socket %s: %m", c->path);
                control_free(c);
                return q;
        }
        (void) chmod(c->path, 0660);
        if (c->have_admin_gid && chown(c->path, (uid_t) -1, c->admin_gid) < 0)
                log_warning_errno(-errno, "Cannot give control socket %s to group %s: %m", c->path, reg->admin_group);

        q = sd_event_add_io(m->event, &c->listen_source, c->fd, EPOLLIN, on_accept, c);
        if (q < 0) {
                log_error_errno(q, "Cannot watch control socket: %m");
                control_free(c);
                return q;
        }
        m->control = c;
        m->run_waiter = on_run_finished;
        m->run_waiter_data = c;
        *ret = c;
        return 0;
}

control *control_free(control *c) {
        if (!c)
                return NULL;
        while (c->conns)
                conn_free(c->conns);
        sd_event_source_disable_unref(c->listen_source);
        if (c->fd >= 0) {
                close(c->fd);
                (void) unlink(c->path);
        }
        if (c->m && c->m->control == c) {
                c->m->control = NULL;
                c->m->run_waiter = NULL;
        }
        free(c->path);
        free(c);
        return NULL;
}
