/* SPDX-License-Identifier: MIT */
/* Control and policies across the cluster, the daemon's side: see core/cluster-control.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/cluster-control.h"
#include "core/cluster.h"
#include "core/manager-internal.h"
#include "store/cluster-control-pg.h"
#include "store/cluster.h"
#include "store/pg-connect.h"

#define RECONNECT_MIN_USEC (100 * USEC_PER_MSEC)
#define RECONNECT_MAX_USEC (5 * USEC_PER_SEC)
/* run requests started per wake at most: a flood of them waits its turn behind the loop */
#define REQUESTS_PER_WAKE 64

struct cluster_control {
        manager *m;
        char *conninfo;
        char *node;
        PGconn *conn;
        sd_event_source *io, *timer;
        uint64_t generation;    /* every control row up to it is applied */
        usec_t backoff;         /* the next reconnect waits this long */
        usec_t reconnect_at;    /* CLOCK_MONOTONIC; 0: now */
        bool down_logged;       /* the outage is logged once, its end once */
        const void *digested;   /* the registry whose digest was recorded (NULL: none yet) */
        uint64_t digest_fence;  /* for the incarnation with this fencing token */
        /* run requests may be queued: set by a notification, the resync timer, or a take that
         * stopped at max_concurrent; cleared when none is left. Without it every run's end
         * queried the request queue, one round trip per run for nothing. */
        bool requests_waiting;
};

static int failed(cluster_control *cc, int q, const char *what);

/* A digest of what makes the registry's jobs fire: each job's name, schedule, zone, plugin and
 * enabled, in name order (FNV-1a, 64 bits): two nodes with the same digest fire the same jobs
 * at the same instants. */
static void registry_digest(const manager *m, char buf[static 17]) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (size_t i = 0; i < m->n_jobs; i++) {
                const job_def *d = m->by_name[i]->def;
                const char *parts[] = { d->name, d->schedule_expr, d->timezone, d->plugin_path, d->enabled ? "1" : "0" };
                for (size_t k = 0; k < ELEMENTSOF(parts); k++) {
                        for (const char *c = parts[k] ?: ""; ; c++) {
                                h = (h ^ (unsigned char) *c) * UINT64_C(0x100000001b3);
                                if (!*c)
                                        break;
                        }
                }
        }
        snprintf(buf, 17, "%016" PRIx64, h);
}

/* Records this node's registry digest when the registry in force or the incarnation changed. */
static void record_digest(cluster_control *cc) {
        manager *m = cc->m;
        uint64_t fence = cluster_fence(m->cluster);
        char d[17];

        if (!cluster_control_connected(cc) || fence == 0 || !m->reg || (cc->digested == m->reg && cc->digest_fence == fence))
                return;
        registry_digest(m, d);
        int q = cluster_ctl_set_digest(cc->conn, fence, d);
        if (q < 0) {
                (void) failed(cc, q, "recording the registry digest");
                return;
        }
        cc->digested = m->reg;
        cc->digest_fence = fence;
}

const char *cluster_control_node(const cluster_control *cc) {
        return cc->node;
}

bool cluster_control_connected(const cluster_control *cc) {
        return cc && cc->conn && PQstatus(cc->conn) == CONNECTION_OK;
}

static void disconnect(cluster_control *cc, int err, const char *what) {
        if (!cc->down_logged)
                log_full(LOG_WARNING, err, NULL, 0, -1,
                         "Cluster control connection lost while %s (%s); enable/disable of other nodes and run "
                         "requests wait, singleton fires do not start. Reconnecting with backoff.",
                         what, cc->conn ? PQerrorMessage(cc->conn) : "not connected");
        cc->down_logged = true;
        cc->io = sd_event_source_disable_unref(cc->io);
        if (cc->conn)
                PQfinish(cc->conn);
        cc->conn = NULL;
        cc->reconnect_at = clock_now_monotonic() + cc->backoff;
        cc->backoff = MIN(cc->backoff * 2, RECONNECT_MAX_USEC);
        manager_timer_at(cc->timer, cc->reconnect_at);
}

/* A call on the connection failed with Q: a lost connection is dropped (reconnected later). */
static int failed(cluster_control *cc, int q, const char *what) {
        if (q == -ECONNRESET || !cluster_control_connected(cc))
                disconnect(cc, q, what);
        else
                log_full(LOG_ERR, q, NULL, 0, -1, "Cluster control: %s failed: %s", what,
                         cc->conn ? PQerrorMessage(cc->conn) : "");
        return q;
}

static int apply_control(const char *job, int override, uint64_t generation, void *userdata) {
        cluster_control *cc = userdata;
        job_rt *j = manager_find_job(cc->m, job);
        if (j && j->enabled_override != override) {
                j->enabled_override = override;
                log_full(LOG_INFO, 0, job, 0, -1, "%s cluster-wide (generation %" PRIu64 ")",
                         override < 0 ? "Enable override removed" : override ? "Enabled" : "Disabled", generation);
                manager_status_changed(cc->m);
        }
        return 0;
}

/* Applies every control row past the generation applied (SINCE_ZERO: all of them). */
static int resync(cluster_control *cc, bool since_zero) {
        uint64_t g;
        if (!cluster_control_connected(cc))
                return -ENOTCONN;
        int q = cluster_ctl_read_control(cc->conn, since_zero ? 0 : cc->generation, apply_control, cc, &g);
        if (q < 0)
                return failed(cc, q, "reading enable/disable changes");
        cc->generation = MAX(cc->generation, g);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        cluster_control *cc = userdata;
        unsigned n = 0;
        int q = cluster_ctl_drain_notifies(cc->conn, &n);
        if (q < 0 || (revents & (EPOLLHUP | EPOLLERR))) {
                (void) failed(cc, q < 0 ? q : -ECONNRESET, "waiting for notifications");
                return 0;
        }
        if (n > 0 && resync(cc, false) >= 0) {
                cc->requests_waiting = true;
                cluster_control_take_requests(cc);
        }
        return 0;
}

static int connect_now(cluster_control *cc) {
        char err[512];
        PGconn *c;
        int q;

        /* bounded like every connection of the daemon (a host that drops packets costs the loop
         * seconds, not TCP's minutes); said here, once per outage, as disconnect() would */
        usec_t t = clock_now_monotonic();
        q = pg_connect_bounded(cc->conninfo, "schedulerd-control", err, sizeof err, &c);
        if (q < 0) {
                /* it held the loop that long: the next attempt waits a multiple of it */
                cc->backoff = MAX(cc->backoff, PG_CONNECT_BACKOFF_FACTOR * (clock_now_monotonic() - t));
                if (!cc->down_logged)
                        log_full(LOG_WARNING, q, NULL, 0, -1,
                                 "Cluster control cannot connect (%s); enable/disable of other nodes and run requests "
                                 "wait, singleton fires do not start. Reconnecting with backoff.", err);
                cc->down_logged = true;
                return q == -ENOMEM ? q : -ECONNRESET;
        }
        cc->conn = c;
        q = cluster_ctl_listen(c);
        if (q < 0)
                return q;
        q = sd_event_add_io(cc->m->event, &cc->io, PQsocket(c), EPOLLIN, on_io, cc);
        if (q < 0)
                return q;
        /* after the LISTEN: a change committed from here on is either read now or notified */
        q = resync(cc, true);
        if (q < 0)
                return q;
        cc->backoff = RECONNECT_MIN_USEC;
        if (cc->down_logged)
                log_info("Cluster control connection is back; enable/disable state resynchronized (generation %" PRIu64 ").",
                         cc->generation);
        cc->down_logged = false;
        return 0;
}

/* After a failure that left the connection up (a statement refused, not a lost connection,
 * which disconnect() handles with its reconnect): the periodic resync goes on, or enable/disable
 * of other nodes and run requests would from now on arrive only by NOTIFY, if at all. */
static void resync_later(cluster_control *cc) {
        if (cluster_control_connected(cc))
                manager_timer_at(cc->timer, clock_now_monotonic() + CLUSTER_RESYNC_USEC);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        cluster_control *cc = userdata;
        if (!cluster_control_connected(cc)) {
                if (cc->conn || cc->io)
                        disconnect(cc, -ECONNRESET, "reconnecting");
                int q = connect_now(cc);
                if (q < 0) {
                        (void) failed(cc, q, "connecting");
                        resync_later(cc);
                        return 0;
                }
        } else if (resync(cc, false) < 0) {
                resync_later(cc);
                return 0;
        }
        record_digest(cc);
        cc->requests_waiting = true; /* a notification may have been lost */
        cluster_control_take_requests(cc);
        manager_timer_at(cc->timer, clock_now_monotonic() + CLUSTER_RESYNC_USEC);
        return 0;
}

int cluster_control_new(manager *m, const char *conninfo, const char *node, cluster_control **ret) {
        cluster_control *cc = calloc(1, sizeof(*cc));
        int q;

        if (!cc)
                return -ENOMEM;
        cc->m = m;
        cc->backoff = RECONNECT_MIN_USEC;
        cc->conninfo = strdup(conninfo);
        if (node)
                cc->node = strdup(node);
        else {
                char host[256] = "localhost";
                (void) gethostname(host, sizeof(host) - 1);
                if (asprintf(&cc->node, "%s:%d", host, (int) getpid()) < 0)
                        cc->node = NULL;
        }
        if (!cc->conninfo || !cc->node) {
                cluster_control_free(cc);
                return -ENOMEM;
        }
        q = sd_event_add_time(m->event, &cc->timer, CLOCK_MONOTONIC, USEC_INFINITY, 1, on_timer, cc);
        if (q < 0) {
                cluster_control_free(cc);
                return q;
        }
        q = connect_now(cc);
        if (q < 0) {
                (void) failed(cc, q, "connecting");
                resync_later(cc);
        } else {
                record_digest(cc);
                manager_timer_at(cc->timer, clock_now_monotonic() + CLUSTER_RESYNC_USEC);
        }
        *ret = cc;
        return 0;
}

cluster_control *cluster_control_free(cluster_control *cc) {
        if (!cc)
                return NULL;
        sd_event_source_disable_unref(cc->io);
        sd_event_source_disable_unref(cc->timer);
        if (cc->conn)
                PQfinish(cc->conn);
        free(cc->conninfo);
        free(cc->node);
        free(cc);
        return NULL;
}

int cluster_control_set_enabled(cluster_control *cc, const char *job, int override) {
        uint64_t g;
        if (!cluster_control_connected(cc))
                return -ENOTCONN;
        int q = cluster_ctl_set_enabled(cc->conn, job, override, &g);
        if (q < 0)
                return failed(cc, q, "storing an enable/disable");
        /* this node applies it now; the rows before it come with the next resync */
        (void) apply_control(job, override, g, cc);
        return 0;
}

int cluster_control_request_run(cluster_control *cc, const char *job, usec_t at, int64_t *ret_id) {
        if (!cluster_control_connected(cc))
                return -ENOTCONN;
        int q = cluster_ctl_request_run(cc->conn, job, at, cc->node, ret_id);
        if (q < 0)
                return failed(cc, q, "queueing a run request");
        return 0;
}

void cluster_control_take_requests(cluster_control *cc) {
        manager *m = cc->m;

        if (!cc->requests_waiting || !cluster_control_connected(cc) || m->shutting_down || m->n_jobs == 0)
                return;
        /* a node that may not claim fires (an outage, its lease, its clock) would take requests
         * only to drop them unrun: they wait for a node that can (this one, once it can: the
         * periodic resync looks again) */
        if (m->cluster && !cluster_may_claim(m->cluster))
                return;
        _cleanup_free_ const char **names = calloc(m->n_jobs, sizeof(char *));
        if (!names)
                return;
        for (size_t i = 0; i < m->n_jobs; i++)
                names[i] = m->jobs[i]->def->name;
        for (unsigned k = 0; k < REQUESTS_PER_WAKE && m->n_running < m->reg->reg->max_concurrent; k++) {
                _cleanup_free_ char *job = NULL;
                int64_t id, run_id = 0;
                usec_t at;
                int q = cluster_ctl_take_request(cc->conn, names, m->n_jobs, cc->node, &id, &job, &at);
                if (q < 0) {
                        (void) failed(cc, q, "taking a run request");
                        return;
                }
                if (q == 0) {
                        cc->requests_waiting = false;
                        return;
                }
                job_rt *j = manager_find_job(m, job);
                if (j)
                        run_id = manager_fire(m, j, RUN_TRIGGER_MANUAL, at);
                log_full(run_id > 0 ? LOG_INFO : LOG_WARNING, 0, job, (uint64_t) MAX(run_id, (int64_t) 0), -1,
                         "Run request %" PRId64 " taken: %s", id, run_id > 0 ? "started" : "could not start");
                q = cluster_ctl_request_done(cc->conn, id, MAX(run_id, (int64_t) 0));
                if (q < 0) {
                        (void) failed(cc, q, "recording a taken run request");
                        return;
                }
        }
}

int cluster_control_singleton_take(cluster_control *cc, job_rt *j, usec_t scheduled, int64_t run_id, char *why,
                                   size_t n) {
        _cleanup_free_ char *holder = NULL;
        usec_t held_for = USEC_INFINITY;
        int64_t held_run = 0;

        if (!cluster_control_connected(cc))
                return -ENOTCONN;
        int q = cluster_ctl_singleton_acquire(cc->conn, j->def->name, cc->node, scheduled, run_id, &holder, &held_for,
                                              &held_run);
        if (q < 0)
                return failed(cc, q, "taking a singleton slot");
        if (q == 1)
                return 1;
        snprintf(why, n, "run %" PRId64 " on node %s still running (singleton, cluster-wide)", held_run,
                 holder ?: "(released just now)");
        return holder && held_for == scheduled && !streq(holder, cc->node) ? -EALREADY : -EBUSY;
}

void cluster_control_singleton_bind(cluster_control *cc, const char *job, int64_t run_id) {
        if (run_id <= 0) {
                cluster_control_singleton_release(cc, job);
                return;
        }
        if (!cluster_control_connected(cc))
                return; /* unbound, it is free again CLUSTER_SINGLETON_PENDING_SEC after it was taken */
        int q = cluster_ctl_singleton_bind(cc->conn, job, cc->node, run_id);
        if (q == -ESTALE)
                log_full(LOG_WARNING, 0, job, (uint64_t) run_id, -1,
                         "The singleton slot was taken over before the run was bound to it (more than %d s "
                         "between its slot and its claim)", CLUSTER_SINGLETON_PENDING_SEC);
        else if (q < 0)
                (void) failed(cc, q, "binding a singleton slot");
}

void cluster_control_singleton_release(cluster_control *cc, const char *job) {
        if (!cluster_control_connected(cc))
                return; /* its run is over in runs: the slot is stale, the next taker takes it */
        int q = cluster_ctl_singleton_release(cc->conn, job, cc->node);
        if (q < 0)
                (void) failed(cc, q, "giving a singleton slot back");
}

bool cluster_control_catch_up_once(cluster_control *cc, const char *job, usec_t missed) {
        usec_t mark;
        if (!cluster_control_connected(cc)) {
                log_full(LOG_WARNING, 0, job, 0, -1, "Catch-up not run: the cluster store is not reachable");
                return false;
        }
        int q = cluster_ctl_catch_up_get(cc->conn, job, &mark);
        if (q >= 0 && mark != USEC_INFINITY && mark >= missed) {
                log_full(LOG_INFO, 0, job, 0, -1, "Catch-up of the fire at %" PRIu64 " was handled by another node", missed);
                return false;
        }
        if (q >= 0)
                q = cluster_ctl_catch_up_advance(cc->conn, job, mark, missed);
        if (q < 0) {
                (void) failed(cc, q, "advancing the catch-up mark");
                return false;
        }
        if (q == 0)
                log_full(LOG_INFO, 0, job, 0, -1, "Catch-up of the fire at %" PRIu64 " was taken by another node", missed);
        return q == 1;
}

usec_t cluster_control_claim_delay(const manager *m) {
        unsigned max = m->reg->reg->max_concurrent;
        if (!m->cluster_control || max == 0)
                return 0;
        if (m->n_running >= max)
                return CLUSTER_SPREAD_USEC;
        return CLUSTER_SPREAD_USEC * m->n_running / max;
}

int cluster_control_run_nodes(cluster_control *cc, const int64_t *ids, size_t n, char **nodes) {
        for (size_t i = 0; i < n; i++)
                nodes[i] = NULL;
        if (n == 0)
                return 0;
        if (!cluster_control_connected(cc))
                return -ENOTCONN;
        int q = cluster_ctl_run_nodes(cc->conn, ids, n, nodes);
        if (q < 0)
                return failed(cc, q, "reading the nodes of runs");
        return 0;
}

int cluster_control_list_nodes(cluster_control *cc, cluster_node_row **ret_rows, size_t *ret_n) {
        if (!cluster_control_connected(cc))
                return -ENOTCONN;
        int q = cluster_pg_list_nodes(cc->conn, ret_rows, ret_n);
        if (q < 0)
                return failed(cc, q, "listing the nodes");
        return 0;
}
