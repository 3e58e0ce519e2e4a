/* SPDX-License-Identifier: MIT */
/* The daemon's side of isolation: worker (worker-pool.h); the worker process is worker.c. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/jobctx.h"
#include "core/worker-pool.h"
#include "core/worker-zygote.h"
#include "core/worker.h"

/* Output read per dispatch of a worker's pipe at most, and after its run ended (bounded: a
 * process the run left behind may keep writing), as for a process run (run.c). */
#define WORKER_OUTPUT_READ_MAX (64 * 1024)
#define WORKER_OUTPUT_DRAIN_MAX (256 * 1024)
/* the default pool size (the number of CPUs) at most */
#define WORKERS_DEFAULT_MAX 64
/* Answered runs whose done callbacks wait behind the dispatch of the next runs: handled this
 * many per turn of the event loop, and at once beyond the bound (so they cannot pile up). */
#define ENDED_BATCH 64
#define ENDED_MAX 16384
/* While runs wait for a worker or in one's pipeline (a herd being handed out), the done
 * callbacks of the runs answered meanwhile wait too. Each costs the daemon more than sending a
 * worker its next run; done in between, they kept the daemon from the workers' replies, and on
 * a core of its own a worker woken by the daemon's send waited behind them (the wake-up of a
 * socket's reader is put on the writer's core) with its pipeline full. They wait this long at
 * most; older ones are handled two per reply while the herd lasts, so a queue that never empties
 * (overload) does not starve them. */
#define ENDED_HOLD_MAX (200 * USEC_PER_MSEC)
#define ENDED_AGED_PER_REPLY 2
/* A busy worker takes a run behind its current one (pipelining: it starts the next as soon as
 * it has answered, without waiting for the daemon to read the answer and send more) only when
 * its last run and the current one so far both took less than this: a run queued behind a
 * long one would wait for it while another worker may be free. */
#define PIPELINE_RUN_MAX (1 * USEC_PER_MSEC)
/* Runs queued in one worker behind its current one at most (fewer when its runs are longer:
 * worker_room() keeps the wait a queue adds under twice PIPELINE_RUN_MAX): deep enough that a
 * worker of short runs never waits for the daemon between two, and that the daemon sends
 * (sendmmsg) and reads (recvmmsg) them in batches; shallow enough that none waits long. */
#define PIPELINE_DEPTH 64
/* Runs of an instant decided ahead of it are sent to the workers then, each to start at the
 * instant by its worker's own clock (fire.c): a worker of short runs takes this many of them,
 * beyond PIPELINE_DEPTH, as none of them waits for the ones before it to be answered. */
#define AHEAD_DEPTH 4096
/* Requests sent to a worker per sendmmsg() at most. */
#define SEND_BATCH 256
/* How soon a pool with runs waiting tries again to fork a worker, or to send to one, after a
 * failure that no worker's answer or exit will follow (a full pids.max or RLIMIT_NPROC, or
 * memory short for a socket buffer, is often over in a moment). */
#define POOL_RETRY_USEC (1 * USEC_PER_SEC)
/* The daemon's send buffer of a worker's socket (the kernel caps it at net.core.wmem_max unless
 * the daemon may force it): room for a herd's requests sent ahead. */
#define WORKER_SNDBUF (4 * 1024 * 1024)
/* The worker's send buffer: room for the replies of a read pause (below). A reply takes about
 * REPLY_TRUESIZE of it (the kernel counts its buffer, not its 50 bytes). */
#define WORKER_REPLY_SNDBUF (4 * 1024 * 1024)
#define REPLY_TRUESIZE 1024
/* Its output pipe, for the same pause: a marker per run, and what its runs print. */
#define WORKER_OUTPUT_PIPE (1024 * 1024)
#define OUTPUT_PER_RUN 64
/* While a worker works through a deep queue (a herd sent ahead of its instant), its replies are
 * left unread until it nears the queue's end. Read as they came, they woke the daemon for every
 * run (a wake-up, an epoll round and a recvmmsg of one, ~10 µs), and read in batches they still
 * took ~3 µs each: either way on a core a worker wanted, and the worker sharing it lost 2 ms of a
 * 4 ms herd. What waits is bookkeeping the herd holds back anyway (pools_handing_out()); deadlines
 * and signals do not wait. The pause lasts for the runs its queue holds at the worker's pace,
 * less READ_PAUSE_KEEP of them, as many as its socket holds replies and its output pipe holds
 * OUTPUT_PER_RUN bytes each, READ_PAUSE_MAX at most; a queue shorter than READ_PAUSE_MIN
 * (pipelining, not a herd) is read as it comes. Before runs are handed out, a paused worker is
 * read first (pool_pump()), so none is judged on a queue it has run since. */
#define READ_PAUSE_MIN 128
#define READ_PAUSE_KEEP 16
#define READ_PAUSE_MAX (20 * USEC_PER_MSEC)
#define READ_PAUSE_RUN_MIN 2 /* µs: a run's turn in a worker at least */

typedef struct pool pool;
typedef struct worker worker;

/* A run waiting for a worker of its pool, or sent to one behind its current run. */
typedef struct pending {
        run *r;
        size_t index;
        worker_request *cause; /* the cause part of its request, or NULL */
        uint64_t seq;          /* sent: its request's number */
        usec_t sent;           /* sent: the wall clock then */
        usec_t not_before;     /* sent ahead of its instant: the worker starts it then; 0: at once */
} pending;

struct worker {
        pool *pool;
        pid_t pid;
        int fd;     /* its socket; -1 once closed (it then exits) */
        int out_fd; /* its stdout and stderr */
        sd_event_source *io, *out, *child;
        sd_event_source *read_pause; /* the end of a pause in reading io and out, see READ_PAUSE_MIN */
        run *run;   /* the current run (started, its deadline armed), or NULL */
        worker_request *run_cause; /* its cause part (on_failure, on_success), kept to hand it on */
        /* sent behind it, not started yet, in order (a ring): their pid, start and deadline come
         * when each becomes the current run */
        pending *queued;
        unsigned q_head, q_len, q_cap;
        unsigned handed_back; /* queued runs handed back since it was stopped (kept in order) */
        uint64_t seq, run_seq; /* request numbers: the last given, the current run's */
        usec_t last_answered;  /* wall clock: the last reply's */
        usec_t last_run_usec; /* how long its last run took (monotonic), USEC_INFINITY before one */
        usec_t turn_usec;     /* a run's turn in it, reply to reply when it ran back to back (average) */
        unsigned reply_room;  /* replies its socket holds unread, about */
        unsigned out_room;    /* runs' output its pipe holds unread, about */
        bool paused;          /* its io and out are off until read_pause */
        bool retiring;  /* takes no more runs; its socket closes once its slots are empty */
        /* signalled for a run (its deadline, a cancellation): it answers that run, or the one it
         * had moved on to, and refuses the rest; no queued run becomes current any more (each
         * reply says whether it ran), and what it still runs is killed after RUN_KILL_GRACE */
        bool stopping;
        sd_event_source *stop_timer;
        /* While a batch of its replies is handled, a run cancelled or killed while it was queued
         * here that became current waits here for its signal: a later reply of the same batch
         * may show the worker already answered it and moved on, and the signal would stop the
         * run it moved on to (see worker_begin()). */
        bool in_reply_batch;
        run *signal_owed;
        /* output: the end markers read for the runs in its slots (in order), the markers still
         * to come for runs already ended without theirs, and a tail that may begin a marker */
        unsigned markers_seen, markers_owed;
        uint8_t marker[WORKER_MARKER_SIZE];
        uint8_t carry[WORKER_MARKER_SIZE];
        size_t carry_len;
        unsigned n_runs;
        worker *next;
};

struct pool {
        worker_pools *owner;
        const registry *reg; /* alive while a run of it is (the runs hold it), or it is in force */
        const job_def *proto; /* the group's first job */
        unsigned size;
        worker *workers;
        unsigned n_workers;
        usec_t last_run_usec; /* how long the last run any of its workers answered took; USEC_INFINITY before one */
        pending *q; /* ring, oldest at head */
        size_t q_head, q_len, q_cap;
        worker_zygote *zygote; /* forks its workers; NULL before the first, or after it failed */
        bool zygote_failed;    /* then they fork from the daemon, until the next reload */
        bool retired;
        /* No worker could be forked while runs waited, or runs could not be sent to one (not
         * for a full socket): said once (until it works again), and, where no worker's answer
         * or exit is coming to pump the queue, tried again by RETRY (POOL_RETRY_USEC later) so
         * that the runs do not wait for ever. */
        bool spawn_failing, send_failing;
        sd_event_source *retry;
        pool *next;
};

struct worker_pools {
        sd_event *event;
        worker_dispatched_fn dispatched;
        worker_slots_wanted_fn slots_wanted;
        void *userdata;
        pool *pools;
        /* the pool of each job of the registry in force, found once */
        const registry *cache_reg;
        pool **by_job;
        sd_event_source *sweep; /* ends the runs cancelled while they waited */
        sd_event_source *pump;  /* sends the runs submitted during a turn of the loop */
        unsigned ncpu;
        usec_t pipeline_max;   /* PIPELINE_RUN_MAX, or the tests' SCHEDULERD_TEST_PIPELINE_USEC */
        uint64_t n_pipelined;  /* runs sent to a busy worker behind its current one */
        uint64_t n_read_pauses; /* pauses in reading a worker working through a herd */
        /* Runs answered by their worker, finished (run_finish()) but not yet handed to their done
         * callback: a FIFO, drained by `ended_src` at a lower priority than the workers' replies.
         * The daemon's bookkeeping of an ended run (history, log, metrics, retries) costs more than
         * sending a worker its next run; done first, it held every other idle worker back. */
        struct ended {
                run *r;
                usec_t at; /* monotonic: when it was answered (started: begun) */
                pid_t pid; /* started: its worker */
        } *ended;
        size_t ended_head, n_ended, ended_cap;
        /* Runs a worker began while a herd was handed out, whose dispatched callback (their
         * "Started" line, a third of the daemon's time per run at a herd) waits as the done
         * callbacks do: a FIFO, always emptied before any run's done callback (ended_flush(),
         * worker_pools_flush_started()), so a run's start is said before its end. */
        struct ended *started;
        size_t started_head, n_started, started_cap;
        sd_event_source *ended_src;
        sd_event_source *ended_timer; /* the end of the oldest one's hold (ENDED_HOLD_MAX) */
};

static bool strv_same(char **a, size_t na, char **b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool worker_group_same(const job_def *a, const job_def *b) {
        const job_identity *x = &a->identity, *y = &b->identity;
        return a->plugin == b->plugin && streq_ptr(a->plugin_path, b->plugin_path) && streq_ptr(x->user, y->user) &&
               streq_ptr(x->group, y->group) && x->uid == y->uid && x->gid == y->gid &&
               a->limits.address_space == b->limits.address_space && a->limits.cpu == b->limits.cpu &&
               a->limits.open_files == b->limits.open_files &&
               strv_same(a->environment, a->n_environment, b->environment, b->n_environment) &&
               strv_same(a->credentials, a->n_credentials, b->credentials, b->n_credentials);
}

/* --- workers -------------------------------------------------------------------------- */

static void pool_pump(pool *p);
static void pool_maybe_free(pool *p);

static void pending_free(pending *e) {
        free(e->cause);
        e->cause = NULL;
}

static pending *worker_queued(worker *w, unsigned i) {
        return &w->queued[(w->q_head + i) % w->q_cap];
}

/* The first run queued in W, taken out of its queue. */
static pending worker_queued_pop(worker *w) {
        pending e = w->queued[w->q_head];
        w->queued[w->q_head] = (pending) {};
        w->q_head = (w->q_head + 1) % w->q_cap;
        w->q_len--;
        return e;
}

/* Room in W's queue for N more runs (behind its current one, if any). Returns how many it has
 * room for, N or fewer when memory is short. */
static unsigned worker_queue_reserve(worker *w, unsigned n) {
        unsigned want = w->q_len + n;
        if (want <= w->q_cap)
                return n;
        unsigned cap = MAX(MAX(w->q_cap * 2, want), (unsigned) PIPELINE_DEPTH);
        pending *v = calloc(cap, sizeof(pending));
        if (!v)
                return w->q_cap - w->q_len;
        for (unsigned i = 0; i < w->q_len; i++)
                v[i] = *worker_queued(w, i);
        free(w->queued);
        w->queued = v;
        w->q_cap = cap;
        w->q_head = 0;
        return n;
}

/* Closes W's socket: it exits at EOF, once its run (if any) is answered. */
static void worker_close(worker *w) {
        w->io = sd_event_source_disable_unref(w->io);
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
}

static void worker_free(worker *w) {
        pool *p = w->pool;
        for (worker **x = &p->workers; *x; x = &(*x)->next)
                if (*x == w) {
                        *x = w->next;
                        break;
                }
        p->n_workers--;
        while (w->q_len > 0) {
                pending e = worker_queued_pop(w);
                pending_free(&e);
        }
        w->run_cause = mfree(w->run_cause);
        worker_close(w);
        sd_event_source_disable_unref(w->stop_timer);
        sd_event_source_disable_unref(w->read_pause);
        sd_event_source_disable_unref(w->out);
        sd_event_source_disable_unref(w->child);
        if (w->out_fd >= 0)
                close(w->out_fd);
        free(w->queued);
        free(w);
}

/* The runs in W's slots, in the order they run: the current one, then the queued ones. */
static unsigned worker_n_slots(const worker *w) {
        return !!w->run + w->q_len;
}

static run *worker_slot(worker *w, unsigned i) {
        if (w->run && i == 0)
                return w->run;
        i -= !!w->run;
        return i < w->q_len ? worker_queued(w, i)->r : NULL;
}

/* Output bytes go to the first run whose end marker has not been read (dropped while a marker
 * of a run that already ended is still to come, or when no run is in a slot: something a run
 * left behind). */
static void worker_route_output(worker *w, const char *p, size_t n) {
        run *t = w->markers_owed > 0 ? NULL : worker_slot(w, w->markers_seen);
        if (t && n > 0)
                run_consume_output(t, p, n);
}

static void worker_marker_read(worker *w) {
        if (w->markers_owed > 0)
                w->markers_owed--;
        else if (w->markers_seen < worker_n_slots(w))
                w->markers_seen++;
}

/* DATA (N bytes) split at W's end markers; a tail that may begin a marker waits in w->carry. */
static void worker_take_output(worker *w, const char *data, size_t n) {
        size_t i = 0, keep = 0;
        for (const char *m; (m = memmem(data + i, n - i, w->marker, sizeof(w->marker)));) {
                worker_route_output(w, data + i, (size_t) (m - (data + i)));
                worker_marker_read(w);
                i = (size_t) (m - data) + sizeof(w->marker);
        }
        for (size_t k = MIN(n - i, sizeof(w->marker) - 1); k > 0 && keep == 0; k--)
                if (memcmp(data + n - k, w->marker, k) == 0)
                        keep = k;
        worker_route_output(w, data + i, n - i - keep);
        memcpy(w->carry, data + n - keep, keep);
        w->carry_len = keep;
}

/* Reads what W wrote, MAX bytes at most, into its runs' output. Returns false at EOF. */
static bool worker_read_output(worker *w, size_t max) {
        char buf[WORKER_MARKER_SIZE + 16384];
        for (size_t done = 0; done < max;) {
                memcpy(buf, w->carry, w->carry_len);
                size_t want = MIN(sizeof(buf) - WORKER_MARKER_SIZE, max - done);
                ssize_t n = read(w->out_fd, buf + w->carry_len, want);
                if (n > 0) {
                        size_t total = w->carry_len + (size_t) n;
                        w->carry_len = 0;
                        worker_take_output(w, buf, total);
                        done += (size_t) n;
                        /* short: the pipe is empty for now (saves a read per run that finds EAGAIN;
                         * more output wakes the source again) */
                        if ((size_t) n < want)
                                return true;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 && errno == EAGAIN;
        }
        return true;
}

static int on_worker_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        if (!worker_read_output(w, WORKER_OUTPUT_READ_MAX))
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

/* W's run ended (CODE/STATUS as siginfo's): handed to its done callback. */
static void worker_run_ended(worker *w, int code, int status) {
        run *r = w->run;
        (void) worker_read_output(w, WORKER_OUTPUT_DRAIN_MAX);
        w->run = NULL;
        w->run_cause = mfree(w->run_cause);
        if (w->signal_owed == r)
                w->signal_owed = NULL;
        run_ended(r, code, status);
}

/* SIGNALLED: the worker was sent a signal for R (it exits by itself). */
static const char *recycle_reason(const worker *w, const worker_reply *rep, bool signalled, char *buf, size_t n) {
        const registry *reg = w->pool->reg;
        if (w->retiring)
                return NULL; /* said when it began to retire; the runs queued then still end in it */
        if (signalled)
                return NULL; /* it exits by itself, having been signalled */
        if (w->pool->retired)
                return NULL; /* the registry it was forked with was replaced: not worth a log line */
        if (w->n_runs >= reg->max_runs_per_worker) {
                snprintf(buf, n, "after %u runs (scheduler.max_runs_per_worker)", w->n_runs);
                return buf;
        }
        if (rep->flags & WORKER_REPLY_NEAR_LIMIT) {
                snprintf(buf, n, "its address space is near limits.address_space (%llu bytes)",
                         (unsigned long long) w->pool->proto->limits.address_space);
                return buf;
        }
        if ((uint64_t) rep->max_rss_kib * 1024 > reg->worker_max_rss) {
                snprintf(buf, n, "its RSS reached %u KiB, above scheduler.worker_max_rss (%llu KiB): a leak is contained "
                                 "this way, but the job should free what it allocates",
                         rep->max_rss_kib, (unsigned long long) (reg->worker_max_rss / 1024));
                return buf;
        }
        return "";
}

/* Appends E to the FIFO *V (HEAD, N, CAP). -ENOMEM. */
static int fifo_push(struct ended **v, size_t *head, size_t *n, size_t *cap, struct ended e) {
        if (*head + *n == *cap) {
                if (*head > 0) {
                        memmove(*v, *v + *head, *n * sizeof(**v));
                        *head = 0;
                } else {
                        size_t c = MAX(*cap * 2, (size_t) 64);
                        struct ended *nv = reallocarray(*v, c, sizeof(**v));
                        if (!nv)
                                return -ENOMEM;
                        *v = nv;
                        *cap = c;
                }
        }
        (*v)[*head + (*n)++] = e;
        return 0;
}

void worker_pools_flush_started(worker_pools *ps) {
        if (!ps)
                return;
        while (ps->n_started > 0) {
                struct ended e = ps->started[ps->started_head++];
                ps->n_started--;
                ps->dispatched(e.r, e.pid, ps->userdata);
        }
        ps->started_head = 0;
}

static void ended_flush(worker_pools *ps, size_t max) {
        worker_pools_flush_started(ps); /* their starts first */
        for (size_t i = 0; i < max && ps->n_ended > 0; i++) {
                run *r = ps->ended[ps->ended_head++].r;
                ps->n_ended--;
                r->done(r, r->userdata);
        }
        if (ps->n_ended == 0)
                ps->ended_head = 0;
}

/* Whether a herd is being handed out (runs wait for a worker, or in one behind its current run)
 * and no fire waits for the slot a done callback would free. */
static bool pools_handing_out(const worker_pools *ps) {
        return !(ps->slots_wanted && ps->slots_wanted(ps->userdata)) && worker_pools_waiting(ps) > 0;
}

/* When the oldest callback held (a done or a dispatched one) began to wait. */
static usec_t held_since(const worker_pools *ps) {
        usec_t a = ps->n_ended > 0 ? ps->ended[ps->ended_head].at : USEC_INFINITY;
        usec_t b = ps->n_started > 0 ? ps->started[ps->started_head].at : USEC_INFINITY;
        return MIN(a, b);
}

/* Whether the oldest callback held has waited ENDED_HOLD_MAX. */
static bool ended_aged(const worker_pools *ps, usec_t now) {
        usec_t t = held_since(ps);
        return t != USEC_INFINITY && now - t >= ENDED_HOLD_MAX;
}

/* The callbacks owed go now (at ended_src's turn), or, while a herd is handed out, once it
 * is (a worker's reply, pool_pump()) or the oldest's hold is over (ended_timer). */
static void ended_kick(worker_pools *ps) {
        if (ps->n_ended == 0 && ps->n_started == 0)
                return;
        if (pools_handing_out(ps) && !ended_aged(ps, clock_now_monotonic())) {
                (void) sd_event_source_set_time(ps->ended_timer, held_since(ps) + ENDED_HOLD_MAX);
                (void) sd_event_source_set_enabled(ps->ended_timer, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_source_set_enabled(ps->ended_src, SD_EVENT_ONESHOT);
}

static int on_ended_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        worker_pools *ps = userdata;
        (void) sd_event_source_set_enabled(ps->ended_src, SD_EVENT_ONESHOT);
        return 0;
}

static int on_ended(sd_event_source *s, void *userdata) {
        worker_pools *ps = userdata;
        if (pools_handing_out(ps) && !ended_aged(ps, clock_now_monotonic())) {
                ended_kick(ps); /* a herd is still being handed out */
                return 0;
        }
        ended_flush(ps, ENDED_BATCH);
        ended_kick(ps);
        return 0;
}

/* W answered its current run with EXIT_CODE (RAN: false when it refused it unstarted): the run
 * is finished now (its output drained, its deadline disarmed) and W's current slot is empty;
 * its done callback comes from on_ended(). */
static void worker_run_answered(worker *w, int exit_code, bool ran) {
        worker_pools *ps = w->pool->owner;
        run *r = w->run;

        /* its marker was written before its reply: all its output is in by the marker (read
         * already, most often, by on_worker_output()) */
        if (ran && w->markers_seen == 0)
                (void) worker_read_output(w, WORKER_OUTPUT_DRAIN_MAX);
        /* read by now, unless more output than the drain's bound came before it (then what
         * remains of it is dropped); a run refused unstarted has none */
        if (!ran)
                ;
        else if (w->markers_seen > 0)
                w->markers_seen--;
        else
                w->markers_owed++;
        w->run = NULL;
        w->run_cause = mfree(w->run_cause);
        if (w->signal_owed == r)
                w->signal_owed = NULL; /* it answered: owed nothing */
        run_finish(r, CLD_EXITED, exit_code);
        usec_t now = clock_now_monotonic();
        if (ps->n_ended >= ENDED_MAX)
                ended_flush(ps, ps->n_ended);
        else if (ended_aged(ps, now))
                ended_flush(ps, ENDED_AGED_PER_REPLY); /* a queue that lasts: they go on ending */
        if (fifo_push(&ps->ended, &ps->ended_head, &ps->n_ended, &ps->ended_cap, (struct ended) { r, now, 0 }) < 0) {
                ended_flush(ps, ps->n_ended);
                r->done(r, r->userdata); /* no room to wait: now, as before */
                return;
        }
        ended_kick(ps);
}

static void cancel_queued(run *r);

/* Puts E in P's queue at position AT (0: first, a run handed back; SIZE_MAX: last). -ENOMEM. */
static int pool_queue_put(pool *p, pending *e, size_t at) {
        if (p->q_len == p->q_cap) {
                size_t cap = MAX(p->q_cap * 2, (size_t) 64);
                pending *v = calloc(cap, sizeof(pending));
                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < p->q_len; i++)
                        v[i] = p->q[(p->q_head + i) % p->q_cap];
                free(p->q);
                p->q = v;
                p->q_cap = cap;
                p->q_head = 0;
        }
        e->seq = 0;
        e->sent = 0;
        /* (a run handed back keeps its not_before: its next worker waits for its instant too) */
        if (at == 0) {
                p->q_head = (p->q_head + p->q_cap - 1) % p->q_cap;
                p->q[p->q_head] = *e;
        } else if (at >= p->q_len)
                p->q[(p->q_head + p->q_len) % p->q_cap] = *e;
        else {
                /* rare (a stopped worker's runs handed back in order): the tail moves one on */
                for (size_t k = p->q_len; k > at; k--)
                        p->q[(p->q_head + k) % p->q_cap] = p->q[(p->q_head + k - 1) % p->q_cap];
                p->q[(p->q_head + at) % p->q_cap] = *e;
        }
        p->q_len++;
        e->r->cancel_queued = cancel_queued;
        e->r->queue_owner = p->owner;
        return 0;
}

/* W's first queued run never started (its worker refused it, or died before taking it): it
 * waits for a worker again, first in line after those W handed back before it. */
static void worker_hand_back(worker *w) {
        pending e = worker_queued_pop(w);
        if (pool_queue_put(w->pool, &e, w->handed_back++) < 0) {
                pending_free(&e);
                snprintf(e.r->message, sizeof(e.r->message), "never started: no memory to queue it for a worker");
                run_ended(e.r, CLD_KILLED, SIGKILL);
                return;
        }
        /* cancelled or killed meanwhile: the sweep ends it, as one that waited in the queue */
        if (e.r->cancelled || e.r->killed || e.r->timed_out)
                cancel_queued(e.r);
}

/* W's current run never started: it waits for another worker, NOT_BEFORE its instant (0: none),
 * first in line after those W handed back before it, with no deadline armed and no pid (a
 * cancellation while it waits ends it in the queue: no signal to a pid gone). -ENOMEM leaves it
 * W's current run. */
static int worker_hand_back_current(worker *w, usec_t not_before) {
        run *cur = w->run;
        pending e = { .r = cur, .index = cur->job_index, .cause = w->run_cause, .not_before = not_before };

        w->run = NULL;
        if (pool_queue_put(w->pool, &e, w->handed_back) < 0) {
                w->run = cur;
                return -ENOMEM;
        }
        w->run_cause = NULL; /* the queue's now, with its run (an on_failure run keeps its cause) */
        w->handed_back++;
        cur->timeout_source = sd_event_source_disable_unref(cur->timeout_source);
        cur->pid = 0;
        return 0;
}

/* R (job INDEX, CAUSE or NULL) is the run W works on now: its start is STARTED, its deadline
 * runs from here, and a cancellation that came while it was queued in W is carried out. */
static void worker_begin(worker *w, run *r, usec_t started) {
        worker_pools *ps = w->pool->owner;
        bool cancelled = r->cancelled || r->timed_out, killed = r->killed;

        w->run = r;
        r->cancel_queued = NULL;
        r->queue_owner = NULL;
        int q = run_dispatched(ps->event, r, w->pid, started);
        if (q < 0) {
                /* untimed it must not run: it ends as crashed (SIGKILL) */
                log_full(LOG_ERR, q, r->def->name, (uint64_t) r->id, (int) r->attempt, "Cannot arm the run's deadline: %m");
                run_kill(r);
        } else if ((killed || cancelled) && w->in_reply_batch)
                w->signal_owed = r; /* sent after the batch, if r is still what the worker runs */
        else if (killed)
                run_kill(r);
        else if (cancelled)
                run_cancel(r);
        if (!ps->dispatched)
                return;
        /* while a herd is handed out, said after it (ended_kick()), before any run's end */
        if (pools_handing_out(ps) && ps->n_started < ENDED_MAX &&
            fifo_push(&ps->started, &ps->started_head, &ps->n_started, &ps->started_cap,
                      (struct ended) { r, clock_now_monotonic(), w->pid }) >= 0) {
                ended_kick(ps);
                return;
        }
        worker_pools_flush_started(ps);
        ps->dispatched(r, w->pid, ps->userdata);
}

/* The signal owed to W's run, if that run is still the one W runs: answered within the batch
 * (the worker had run it before the signal could reach it), it is owed nothing, and the run W
 * moved on to is not touched. What remains is a window of microseconds, not a batch of replies. */
static void worker_send_owed_signal(worker *w) {
        run *r = w->signal_owed;
        w->signal_owed = NULL;
        if (!r || w->run != r)
                return;
        if (r->killed)
                run_kill(r);
        else
                run_cancel(r);
}

/* W's first queued run is its current one now (its worker answered the one before at ANSWERED). */
static void worker_promote(worker *w, usec_t answered) {
        pending e = worker_queued_pop(w);
        w->run_seq = e.seq;
        free(w->run_cause);
        w->run_cause = TAKE_PTR(e.cause);
        worker_begin(w, e.r, MAX(MAX(answered, e.sent), e.not_before));
}

/* W takes no more runs; its socket closes (it exits) once its slots are empty. */
static void worker_retire(worker *w) {
        w->retiring = true;
        if (!w->run && w->q_len == 0)
                worker_close(w);
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        worker *w = userdata;
        log_warning("Worker %d was asked to stop and still runs what it had taken after %s; sending SIGKILL.",
                    (int) w->pid, "5s");
        (void) kill(-w->pid, SIGKILL);
        return 0;
}

/* W was signalled for its run: it stops (worker.stopping). A run it took before the signal
 * came, with no deadline of its own armed yet, cannot hold it for ever. */
static void worker_stop_begin(worker *w) {
        if (w->stopping)
                return;
        w->stopping = true;
        if (w->q_len > 0)
                (void) sd_event_add_time_relative(w->pool->owner->event, &w->stop_timer, CLOCK_MONOTONIC, RUN_KILL_GRACE,
                                                  USEC_PER_MSEC, on_stop_timer, w);
}

/* Handles W's reply REP, N bytes as received (0: end of file). Returns 1 when it was taken, -1
 * when the socket is done (closed, or W broke the protocol and was killed). */
static int worker_reply_handle(worker *w, worker_reply *rep, size_t n) {
        pool *p = w->pool;
        char why[256];

        if (n == 0) {
                worker_close(w); /* it is exiting: its child source does the rest */
                return -1;
        }
        bool for_queued = !w->run && w->q_len > 0 && rep->seq == worker_queued(w, 0)->seq;
        if (n <= offsetof(worker_reply, message) || !(for_queued || (w->run && rep->seq == w->run_seq))) {
                log_error("Worker %d of plugin %s sent a reply for no run it had; killing it.", (int) w->pid,
                          p->proto->plugin_path);
                worker_close(w);
                (void) kill(-w->pid, SIGKILL);
                return -1;
        }
        rep->message[MIN(n - offsetof(worker_reply, message), sizeof(rep->message) - 1)] = '\0';
        /* the worker's word for when it answered: never later than now (a run's start, and so
         * its deadline and whether it had begun when its worker died, are taken from it) */
        rep->answered = MIN(rep->answered, clock_now_realtime());
        if (for_queued) {
                /* its current run was stopped (a deadline, a cancellation): the worker says
                 * whether it took this one before it stopped */
                if (rep->flags & WORKER_REPLY_NOT_RUN) {
                        worker_hand_back(w);
                        if (w->retiring)
                                worker_retire(w); /* closed once empty */
                        return 1;
                }
                worker_promote(w, w->last_answered);
        }
        run *r = w->run;
        /* Refused unstarted while the daemon stopped nothing: the worker was stopped from outside
         * (an operator's kill, a service manager's SIGTERM). Its run never began: like those
         * queued behind it, it waits for another worker rather than end failed. */
        if ((rep->flags & WORKER_REPLY_NOT_RUN) && !r->signalled && !r->cancelled && !r->timed_out && !r->killed) {
                usec_t at = r->started; /* its instant, when it was sent ahead of it */
                worker_stop_begin(w);
                if (worker_hand_back_current(w, at > clock_now_realtime() ? at : 0) >= 0) {
                        log_notice("Worker %d of plugin %s was stopped from outside before its run began; its runs "
                                   "go to another worker.", (int) w->pid, p->proto->plugin_path);
                        if (w->retiring)
                                worker_retire(w); /* closed once empty */
                        return 1;
                }
        }
        /* back to back (a queue, no wait between): the time between two answers is a run's turn */
        if (w->last_answered > 0 && rep->answered > w->last_answered && w->q_len > 0 &&
            rep->answered - w->last_answered < w->pool->owner->pipeline_max) {
                usec_t t = rep->answered - w->last_answered;
                w->turn_usec = w->turn_usec ? (7 * w->turn_usec + t) / 8 : t;
        }
        w->last_answered = rep->answered;
        /* by the worker's clock: the daemon may read a batch of replies well after the runs, and
         * a run sent to an idle worker may wait for a CPU (its wake-up on a busy core) before it
         * begins; counted in, such a wait made short runs look long and stopped pipelining */
        bool ran = !(rep->flags & WORKER_REPLY_NOT_RUN);
        if (ran)
                w->last_run_usec = w->pool->last_run_usec = rep->took;
        snprintf(r->message, sizeof(r->message), "%s", ran ? rep->message : "never started: its worker was stopping");
        w->n_runs++;
        /* Whether a signal reached the worker for r, not whether r was cancelled: a run cancelled
         * while queued whose signal was held back (worker_send_owed_signal()) and that answered
         * first sent none, and the worker, neither stopping nor retiring, goes on with the runs
         * it has taken. */
        bool signalled = r->signalled;
        const char *reason = recycle_reason(w, rep, signalled, why, sizeof(why));
        if (reason && reason[0])
                log_full(LOG_INFO, 0, r->def->name, (uint64_t) r->id, (int) r->attempt, "Replacing worker %d %s.",
                         (int) w->pid, reason);
        /* Signalled, the worker stops. It may have taken the next run before the signal came: each
         * queued run's own reply says whether it ran. Promoting the next one here would record
         * every run it refuses as failed. Stopping is marked first: the done callbacks that
         * worker_run_answered() lets go may start runs, and none may be sent to it. */
        if (signalled)
                worker_stop_begin(w);
        worker_run_answered(w, rep->exit_code, ran);
        if (w->q_len > 0 && !w->stopping)
                worker_promote(w, rep->answered);
        /* retiring since an earlier reply, with runs queued then: closed once those are answered */
        if (!reason || reason[0] || w->retiring)
                worker_retire(w);
        return 1;
}

/* Handles one reply of W. Returns 1 when one was read, 0 when none is there, -1 when the
 * socket is done (closed, or W broke the protocol and was killed). */
static int worker_reply_one(worker *w) {
        worker_reply rep;
        ssize_t n;

        do
                n = recv(w->fd, &rep, sizeof(rep), MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n < 0) {
                worker_close(w);
                return -1;
        }
        return worker_reply_handle(w, &rep, (size_t) n);
}

/* Replies read per recvmmsg(): a worker working through queued runs answers several between two
 * turns of the daemon's loop, and they cost one system call, not one each. */
#define REPLY_BATCH PIPELINE_DEPTH

static void worker_resume_reading(worker *w) {
        if (!w->paused)
                return;
        w->paused = false;
        (void) sd_event_source_set_enabled(w->read_pause, SD_EVENT_OFF);
        if (w->io)
                (void) sd_event_source_set_enabled(w->io, SD_EVENT_ON);
        if (w->out)
                (void) sd_event_source_set_enabled(w->out, SD_EVENT_ON);
}

static int on_read_pause_end(sd_event_source *s, uint64_t usec, void *userdata) {
        worker_resume_reading(userdata);
        return 0;
}

/* After a batch of W's replies: pauses reading them while W works through a queue of at least
 * READ_PAUSE_MIN runs behind one it is running (see READ_PAUSE_MIN). */
static void worker_pause_reading(worker *w) {
        worker_pools *ps = w->pool->owner;
        usec_t now, per, pause;
        unsigned n;

        if (!w->io || !w->out || !w->run || w->q_len < READ_PAUSE_MIN || w->stopping || w->retiring)
                return;
        now = clock_now_monotonic();
        if (now < w->run->started_mono)
                return; /* sent ahead: nothing comes before its instant */
        if (w->last_run_usec == USEC_INFINITY || w->last_run_usec >= ps->pipeline_max)
                return;
        per = MAX(MAX(w->last_run_usec, w->turn_usec), (usec_t) READ_PAUSE_RUN_MIN);
        n = MIN(MIN(w->q_len - READ_PAUSE_KEEP, w->reply_room), w->out_room);
        pause = MIN((usec_t) READ_PAUSE_MAX, n * per);
        /* what it printed so far is read now: the pause must not start with its pipe half full */
        if (!worker_read_output(w, WORKER_OUTPUT_DRAIN_MAX))
                return;
        if (!w->read_pause) {
                if (sd_event_add_time(ps->event, &w->read_pause, CLOCK_MONOTONIC, now + pause, 1, on_read_pause_end, w) < 0)
                        return;
        } else if (sd_event_source_set_time(w->read_pause, now + pause) < 0 ||
                   sd_event_source_set_enabled(w->read_pause, SD_EVENT_ONESHOT) < 0)
                return;
        (void) sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(w->out, SD_EVENT_OFF);
        w->paused = true;
        ps->n_read_pauses++;
}

/* Reads and handles a batch of W's replies (REPLY_BATCH at most). Returns how many, 0 when none
 * was there, -1 when its socket broke (then closed). */
static int worker_read_replies(worker *w) {
        static worker_reply reps[REPLY_BATCH]; /* one thread; not re-entered */
        struct mmsghdr msgs[REPLY_BATCH];
        struct iovec iov[REPLY_BATCH];
        int n;

        for (size_t i = 0; i < REPLY_BATCH; i++) {
                iov[i] = (struct iovec) { &reps[i], sizeof(reps[i]) };
                msgs[i] = (struct mmsghdr) { .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        do
                n = recvmmsg(w->fd, msgs, REPLY_BATCH, MSG_DONTWAIT, NULL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN) {
                worker_close(w);
                return -1;
        }
        w->in_reply_batch = true;
        for (int i = 0; i < n && w->fd >= 0; i++)
                if (worker_reply_handle(w, &reps[i], msgs[i].msg_len) < 0)
                        break;
        w->in_reply_batch = false;
        worker_send_owed_signal(w);
        return MAX(n, 0);
}

static int on_worker_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        pool *p = w->pool;

        if (worker_read_replies(w) <= 0)
                return 0;
        pool_pump(p);
        if (w->fd >= 0)
                worker_pause_reading(w);
        return 0;
}

/* Before P's runs are handed out: its paused workers are read (see READ_PAUSE_MIN). */
static void pool_catch_up(pool *p) {
        for (worker *w = p->workers; w; w = w->next) {
                if (!w->paused)
                        continue;
                worker_resume_reading(w);
                if (w->out)
                        (void) worker_read_output(w, WORKER_OUTPUT_DRAIN_MAX);
                while (w->fd >= 0 && worker_read_replies(w) > 0)
                        ;
        }
}

static int worker_spawn(pool *p, worker **ret);
static unsigned pool_takers(const pool *p);

static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        worker *w = userdata;
        pool *p = w->pool;

        /* Replies written just before the exit (a cancelled run answers, then its worker exits)
         * are read first: the exit can be dispatched before the socket's readability, and the
         * run would end without its message ("cancelled by daemon shutdown"). */
        while ((w->run || w->q_len > 0) && w->fd >= 0 && worker_reply_one(w) > 0)
                ;
        /* It takes nothing more. Its socket may give no end of file (a process it started may
         * hold the other end), and the done callbacks below can start runs (on_failure, a queued
         * fire): sent to it, a run would end with it, never recorded. */
        worker_close(w);
        w->stopping = true;
        bool was_busy = w->run || w->q_len > 0, replace = !p->retired && (was_busy || w->n_runs > 0);

        /* Runs sent ahead of their instant (fire.c) that the worker had not reached yet never
         * started: they wait for another worker, still for their instant, rather than end as
         * crashed in a worker that never ran them. Its current run is one if its start is still
         * ahead; else the first queued one is, if its own instant is. */
        run *cur = w->run;
        usec_t now = clock_now_monotonic();
        if (cur && now < cur->started_mono && !cur->cancelled && !cur->timed_out && !cur->killed &&
            worker_hand_back_current(w, cur->started) >= 0) /* else (no memory) it ends here, as crashed */
                log_notice("Worker %d of plugin %s ended before the instant of the runs sent ahead to it; they "
                           "go to another worker.", (int) w->pid, p->proto->plugin_path);
        /* a worker takes a run only after answering the one before: with a current run, none of
         * those queued started; without, the first may have (unless its instant is still ahead),
         * and it ends here */
        if (!cur && w->q_len > 0 && !(worker_queued(w, 0)->not_before > clock_now_realtime()))
                worker_promote(w, w->last_answered);
        while (w->q_len > 0)
                worker_hand_back(w);
        if (w->run) {
                run *r = w->run;
                if (!r->timed_out && !r->cancelled && !r->killed)
                        log_full(LOG_WARNING, 0, r->def->name, (uint64_t) r->id, (int) r->attempt,
                                 "Worker %d %s %d during the run; it is replaced, the other runs go on.", (int) w->pid,
                                 si->si_code == CLD_EXITED ? "exited with status" : "was killed by signal", si->si_status);
                w->child = sd_event_source_disable_unref(w->child);
                /* as for a run's own process: what it left in its group ends with it, and what
                 * escaped the group came to the daemon, whose sweep at the run's end (with the
                 * worker as the run's main process, not reaped yet) ends it */
                (void) kill(-w->pid, SIGKILL);
                r->in_worker = false;
                worker_run_ended(w, si->si_code, si->si_status);
        }
        worker_free(w);
        /* (its successor may be there already: forked when it was sent its last run) */
        if (replace && !was_busy && p->q_len == 0 && pool_takers(p) < p->size) {
                worker *nw;
                (void) worker_spawn(p, &nw); /* kept warm for the next run; a failure shows then */
        }
        pool_pump(p);
        pool_maybe_free(p);
        return 0;
}

static void marker_new(uint8_t *m) {
        if (getrandom(m, WORKER_MARKER_SIZE, GRND_NONBLOCK) == (ssize_t) WORKER_MARKER_SIZE)
                return;
        /* no entropy yet (early boot): unique is enough, the job shares the worker's trust */
        uint64_t a = clock_now_monotonic() ^ ((uint64_t) getpid() << 32), b = (uint64_t) (uintptr_t) m ^ a * 31;
        memcpy(m, &a, sizeof(a));
        memcpy(m + sizeof(a), &b, sizeof(b));
}

/* Forks a worker of P with SOCK, OUT and MARKER from P's zygote (forked on first need);
 * returns 0 with its pid, -EPIPE when there is no zygote to ask (the caller forks it),
 * -ETIMEDOUT when it did not answer (the same, with new descriptors), or the fork's -errno. */
static int pool_zygote_fork(pool *p, int sock, int out, const uint8_t *marker, pid_t *ret_pid) {
        int q;
        if (!p->zygote && !p->zygote_failed) {
                q = worker_zygote_new(p->reg, p->proto, &p->zygote);
                if (q < 0) {
                        log_warning_errno(q, "Cannot fork a zygote for the workers of plugin %s (%m); they fork from the "
                                             "daemon until the next reload, which then takes a copy-on-write fault for "
                                             "each page it writes while a new worker shares it.",
                                          p->proto->plugin_path);
                        p->zygote_failed = true;
                }
        }
        if (!p->zygote)
                return -EPIPE;
        q = worker_zygote_fork(p->zygote, sock, out, marker, ret_pid);
        if (q == -EPIPE || q == -ETIMEDOUT) {
                log_warning("The zygote (pid %d) of the workers of plugin %s is gone or did not answer in 5 s; workers "
                            "fork from the daemon until the next reload.",
                            (int) worker_zygote_pid(p->zygote), p->proto->plugin_path);
                p->zygote = worker_zygote_free(p->zygote);
                p->zygote_failed = true;
        }
        return q;
}

/* Best effort: forced past net.core.wmem_max where the daemon may (CAP_NET_ADMIN), else up to it. */
static void socket_grow_sndbuf(int fd, int size) {
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* A worker's socket pair (SV) and output pipe (OUT), and about how many replies and runs' output
 * they hold unread (*RET_REPLY_ROOM, *RET_OUT_ROOM); or -errno with neither. */
static int worker_channels(int sv[2], int out[2], unsigned *ret_reply_room, unsigned *ret_out_room) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* without them fewer runs are sent ahead of their instant, and a worker whose replies
         * are left unread a moment may wait for the daemon */
        socket_grow_sndbuf(sv[0], WORKER_SNDBUF);
        socket_grow_sndbuf(sv[1], WORKER_REPLY_SNDBUF);
        int sndbuf = 0;
        socklen_t len = sizeof(sndbuf);
        /* (Linux reports twice what was set, its bookkeeping counted in) */
        if (getsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) < 0 || sndbuf < 0)
                sndbuf = 0;
        *ret_reply_room = (unsigned) sndbuf / 2 / REPLY_TRUESIZE;
        if (pipe2(out, O_CLOEXEC) < 0) {
                int q = -errno;
                close(sv[0]);
                close(sv[1]);
                return q;
        }
        (void) fcntl(out[0], F_SETPIPE_SZ, WORKER_OUTPUT_PIPE); /* best effort: up to fs.pipe-max-size */
        int size = fcntl(out[0], F_GETPIPE_SZ);
        *ret_out_room = size > 0 ? (unsigned) size / OUTPUT_PER_RUN : 0;
        return 0;
}

/* The tests' way to make forking a worker fail, as a full pids.max or RLIMIT_NPROC would: while
 * the file $SCHEDULERD_TEST_WORKER_SPAWN_FAIL_FILE exists. */
static bool test_spawn_fails(void) {
        const char *f = getenv("SCHEDULERD_TEST_WORKER_SPAWN_FAIL_FILE");
        return f && access(f, F_OK) == 0;
}

static int worker_spawn(pool *p, worker **ret) {
        worker_pools *ps = p->owner;
        _cleanup_free_ worker *w = NULL;
        int sv[2], out[2], q;
        pid_t parent = getpid(), pid;

        if (test_spawn_fails())
                return -EAGAIN;
        w = calloc(1, sizeof(worker));
        if (!w)
                return -ENOMEM;
        marker_new(w->marker);
        q = worker_channels(sv, out, &w->reply_room, &w->out_room);
        if (q < 0)
                return q;
        q = pool_zygote_fork(p, sv[1], out[1], w->marker, &pid);
        if (q == -ETIMEDOUT) {
                /* the zygote may have forked a worker with these before it was killed: not shared */
                close(sv[0]);
                close(sv[1]);
                close(out[0]);
                close(out[1]);
                q = worker_channels(sv, out, &w->reply_room, &w->out_room);
                if (q < 0)
                        return q;
                q = -EPIPE;
        }
        if (q == -EPIPE) {
                pid = fork();
                if (pid == 0) {
                        close(sv[0]);
                        close(out[0]);
                        worker_main(p->reg, p->proto, sv[1], out[1], parent, w->marker);
                }
                q = pid < 0 ? -errno : 0;
        }
        close(sv[1]);
        close(out[1]);
        if (q < 0) {
                close(sv[0]);
                close(out[0]);
                return q;
        }
        (void) setpgid(pid, pid); /* before any signal for its run can come */
        (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
        w->pool = p;
        w->pid = pid;
        w->fd = sv[0];
        w->out_fd = out[0];
        w->last_run_usec = USEC_INFINITY;
        q = sd_event_add_io(ps->event, &w->io, w->fd, EPOLLIN, on_worker_reply, w);
        if (q >= 0)
                q = sd_event_add_io(ps->event, &w->out, w->out_fd, EPOLLIN, on_worker_output, w);
        if (q >= 0)
                q = sd_event_add_child(ps->event, &w->child, pid, WEXITED, on_worker_exit, w);
        if (q < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                sd_event_source_disable_unref(w->io);
                sd_event_source_disable_unref(w->out);
                close(w->fd);
                close(w->out_fd);
                return q;
        }
        w->next = p->workers;
        p->workers = w;
        p->n_workers++;
        if (p->spawn_failing) {
                log_info("Forked a worker for plugin %s again; the runs that waited for one go on.",
                         p->proto->plugin_path);
                p->spawn_failing = false;
        }
        *ret = TAKE_PTR(w);
        return 0;
}

/* The request for E's run, numbered SEQ, into *REQ; returns its size (without a cause, only
 * the short head is sent). */
static size_t request_make(const pending *e, uint64_t seq, worker_request *req) {
        const run *r = e->r;
        size_t len = WORKER_REQUEST_SHORT;
        if (e->cause) {
                *req = *e->cause;
                req->has_cause = 1;
                len = sizeof(*req);
        } else
                memset(req, 0, WORKER_REQUEST_SHORT);
        req->seq = seq;
        req->job = e->index;
        req->id = r->id;
        req->scheduled = r->scheduled;
        req->not_before = e->not_before;
        req->attempt = r->attempt;
        return len;
}

/* E's run, sent to W at SENT as request SEQ, is W's: its current run if W has none, else queued
 * behind (E, and its cause, then belong to W). */
static void worker_take(worker *w, pending *e, uint64_t seq, usec_t sent) {
        run *r = e->r;
        r->cancel_queued = NULL;
        r->queue_owner = NULL;
        if (w->run || w->q_len > 0) {
                e->seq = seq;
                e->sent = sent;
                *worker_queued(w, w->q_len) = *e;
                w->q_len++;
                w->pool->owner->n_pipelined++;
                return;
        }
        w->run_seq = seq;
        usec_t at = MAX(sent, e->not_before);
        free(w->run_cause);
        w->run_cause = TAKE_PTR(e->cause);
        worker_begin(w, r, at);
}

/* A failed send to a worker as worker_send() returns it: the peer gone is -EPIPE. */
static int send_error(int e) {
        if (e == EAGAIN)
                return -EAGAIN;
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN)
                return -EPIPE;
        return -e;
}

/* Sends E's run to W (worker_take()). -EAGAIN: its socket is full; -EPIPE: W is gone (not the
 * run's fault); another negative errno: the send failed here (memory short). Either way E is
 * untouched. */
static int worker_send(worker *w, pending *e) {
        worker_request req;
        if ((w->run || w->q_len > 0) && worker_queue_reserve(w, 1) < 1)
                return -EAGAIN;
        size_t len = request_make(e, w->seq + 1, &req);
        usec_t sent = clock_now_realtime();
        while (send(w->fd, &req, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                if (errno != EINTR)
                        return send_error(errno);
        w->seq++;
        worker_take(w, e, w->seq, sent);
        return 0;
}

/* Sends W up to MAX of the runs first in its pool's queue with one sendmmsg() (worker_take()).
 * Returns how many it took, or an error as worker_send(), none taken. */
static int worker_send_batch(worker *w, unsigned max) {
        static worker_request reqs[SEND_BATCH]; /* one thread; not re-entered */
        static struct mmsghdr msgs[SEND_BATCH];
        static struct iovec iov[SEND_BATCH];
        static pending taken[SEND_BATCH];
        pool *p = w->pool;
        unsigned n = (unsigned) MIN(MIN((size_t) max, p->q_len), ELEMENTSOF(reqs));
        int k;

        /* all but the first go behind a current run: room for them first (worker_take()) */
        if (n > 0) {
                unsigned behind = n - !(w->run || w->q_len > 0);
                n = n - behind + worker_queue_reserve(w, behind);
        }
        if (n == 0)
                return -EAGAIN;

        for (unsigned i = 0; i < n; i++) {
                size_t len = request_make(&p->q[(p->q_head + i) % p->q_cap], w->seq + 1 + i, &reqs[i]);
                iov[i] = (struct iovec) { &reqs[i], len };
                msgs[i] = (struct mmsghdr) { .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        usec_t sent = clock_now_realtime();
        do
                k = sendmmsg(w->fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k <= 0)
                return k < 0 ? send_error(errno) : -EAGAIN;
        /* out of the queue first: taking a run may log, and signal a cancelled one's worker */
        for (int i = 0; i < k; i++) {
                taken[i] = p->q[p->q_head];
                p->q_head = (p->q_head + 1) % p->q_cap;
                p->q_len--;
        }
        uint64_t base = w->seq;
        w->seq += (uint64_t) k;
        for (int i = 0; i < k; i++)
                worker_take(w, &taken[i], base + 1 + (uint64_t) i, sent);
        return k;
}

/* How many more runs W takes now. An idle worker: one, and as many more as a busy one once its
 * runs proved short. A busy one, while its runs are short (its last, and its current one so
 * far, under pipeline_max): as many as keep the wait its queue adds under 2 x pipeline_max,
 * PIPELINE_DEPTH at most; for runs sent AHEAD of their instant, AHEAD_DEPTH (they all wait for
 * the instant, not for each other), unless a run is going in it now: one that proved short so
 * far may still be long, and so many must not wait behind it. None while it stops or retires,
 * nor past the runs it has left before it is recycled. */
/* The runs W may still be sent before it reaches max_runs_per_worker: counting those it ran,
 * runs, and was sent. */
static unsigned worker_runs_left(const worker *w) {
        unsigned limit = w->pool->reg->max_runs_per_worker, used = w->n_runs + !!w->run + w->q_len;
        return used < limit ? limit - used : 0;
}

static unsigned worker_room(const worker *w, usec_t now, bool ahead) {
        usec_t max = w->pool->owner->pipeline_max;
        const run *r = w->run;
        /* a worker that has run nothing yet (a successor, forked for a herd) is taken to run as
         * its pool's others do: else it took one run of a herd sent ahead, and the rest went to
         * its busy siblings */
        usec_t last = w->last_run_usec != USEC_INFINITY ? w->last_run_usec : w->pool->last_run_usec;

        if (w->fd < 0 || w->retiring || w->stopping || (!r && w->q_len > 0))
                return 0;
        /* (a run sent ahead starts in the future: it has taken no time yet) */
        if (r && (r->timed_out || r->cancelled || r->killed || (now > r->started_mono && now - r->started_mono >= max)))
                return 0;
        if (last >= max)
                return r ? 0 : 1;
        bool going = r && now >= r->started_mono;
        usec_t depth = ahead && !going ? AHEAD_DEPTH : MIN((usec_t) PIPELINE_DEPTH, 2 * max / MAX(last, (usec_t) 1));
        depth = MAX(depth, (usec_t) 1);
        unsigned room = (r ? 0 : 1) + (depth > w->q_len ? (unsigned) depth - w->q_len : 0);
        /* never more than it may still run before it is recycled (max_runs_per_worker) */
        return MIN(room, worker_runs_left(w));
}

/* P's workers that may still take runs: not stopping, retiring, or at max_runs_per_worker with
 * what they were sent. One at its limit is replaced now, not when it has run its queue and
 * exited: at 10,000 every-second jobs a worker reaches the default limit every other second,
 * and its successor, forked after the herd's instant, started its share 20-40 ms late. */
static unsigned pool_takers(const pool *p) {
        unsigned n = 0;
        for (const worker *w = p->workers; w; w = w->next)
                if (w->fd >= 0 && !w->retiring && !w->stopping && worker_runs_left(w) > 0)
                        n++;
        return n;
}

/* A worker of P for the next runs (the first of which starts not before NOT_BEFORE, 0: at once)
 * and how many it takes (*RET_ROOM): an idle one, one forked if there is room, else the busy
 * least loaded one with room; NULL when none (or none could be forked: then *RET_ERR says why). */
static worker *pool_get(pool *p, usec_t not_before, unsigned *ret_room, int *ret_err) {
        usec_t now = clock_now_monotonic();
        bool ahead = not_before > 0 && not_before > clock_now_realtime();
        worker *w, *best = NULL;
        unsigned room, best_room = 0;

        *ret_err = 0;
        for (w = p->workers; w; w = w->next)
                if (!w->run && (room = worker_room(w, now, ahead)) > 0) {
                        *ret_room = room;
                        return w;
                }
        if (pool_takers(p) < p->size) {
                int q = worker_spawn(p, &w);
                if (q >= 0) {
                        *ret_room = 1;
                        return w;
                }
                if (!p->spawn_failing)
                        log_warning_errno(q, "Cannot fork a worker for plugin %s (%m); its runs wait for a worker "
                                             "(tried again every %u s while none is left). Near a process or memory "
                                             "limit? (pids.max, RLIMIT_NPROC)",
                                          p->proto->plugin_path, (unsigned) (POOL_RETRY_USEC / USEC_PER_SEC));
                p->spawn_failing = true;
                *ret_err = q;
        }
        /* the least loaded of those with room (then the one that takes the most): picked by the
         * most room, a worker near max_runs_per_worker lost every herd to its fresh successor
         * after its first run, and ran one run per instant for seconds */
        unsigned best_load = UINT_MAX;
        for (w = p->workers; w; w = w->next) {
                room = worker_room(w, now, ahead);
                unsigned load = w->q_len + !!w->run;
                if (room > 0 && (load < best_load || (load == best_load && room > best_room))) {
                        best = w;
                        best_room = room;
                        best_load = load;
                }
        }
        *ret_room = best_room;
        return best;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        pool *p = userdata;
        pool_pump(p);
        pool_maybe_free(p);
        return 0;
}

/* P's waiting runs could not go to a worker (none could be forked, or sending failed) and no
 * worker's answer or exit is coming to pump its queue: P tries again in a while. */
static void pool_retry_later(pool *p) {
        int q;
        if (p->retry) {
                q = sd_event_source_set_time_relative(p->retry, POOL_RETRY_USEC);
                if (q >= 0)
                        q = sd_event_source_set_enabled(p->retry, SD_EVENT_ONESHOT);
        } else
                q = sd_event_add_time_relative(p->owner->event, &p->retry, CLOCK_MONOTONIC, POOL_RETRY_USEC,
                                               100 * USEC_PER_MSEC, on_retry, p);
        if (q < 0)
                log_error_errno(q, "Cannot arm the retry of the runs waiting for a worker of plugin %s (%m); they go "
                                   "on when another of its runs is submitted.", p->proto->plugin_path);
}

/* Hands the runs that wait to workers with room, oldest first, in batches: each worker its
 * share of the queue, as much of it as it takes. */
static void pool_pump(pool *p) {
        if (p->q_len > 0)
                pool_catch_up(p);
        while (p->q_len > 0) {
                int err;
                unsigned room;
                worker *w = pool_get(p, p->q[p->q_head].not_before, &room, &err);
                if (!w) {
                        if (err < 0 && p->n_workers == 0)
                                pool_retry_later(p);
                        return;
                }
                size_t share = (p->q_len + p->size - 1) / MAX(p->size, 1u);
                int k = worker_send_batch(w, (unsigned) MIN((size_t) room, MAX(share, (size_t) 1)));
                if (k == -EAGAIN)
                        return; /* its socket is full: more once it answers */
                if (k == -EPIPE) {
                        worker_retire(w); /* gone: its exit comes, after any answer it sent */
                        continue;
                }
                if (k < 0) {
                        /* not the worker's end (memory short): a new worker would fail the
                         * same way, so none is forked for it */
                        if (!p->send_failing)
                                log_warning_errno(k, "Cannot send runs to worker %d of plugin %s (%m); they wait, "
                                                     "tried again every %u s.", (int) w->pid, p->proto->plugin_path,
                                                  (unsigned) (POOL_RETRY_USEC / USEC_PER_SEC));
                        p->send_failing = true;
                        pool_retry_later(p);
                        return;
                }
                p->send_failing = false;
        }
        ended_kick(p->owner); /* the queue is empty: the done callbacks held for it go */
}

static int on_pump(sd_event_source *s, void *userdata) {
        worker_pools *ps = userdata;
        for (pool *p = ps->pools; p; p = p->next)
                pool_pump(p);
        return 0;
}

void worker_pools_pump(worker_pools *ps) {
        if (!ps)
                return;
        (void) sd_event_source_set_enabled(ps->pump, SD_EVENT_OFF);
        (void) on_pump(ps->pump, ps);
}

/* E for R, job INDEX, with the cause of the run being started (on_failure / on_success), if any. */
static int pending_make(run *r, size_t index, const sched_job_cause_info *cause, pending *ret) {
        pending e = { .r = r, .index = index };
        if (cause) {
                e.cause = calloc(1, sizeof(worker_request));
                if (!e.cause)
                        return -ENOMEM;
                e.cause->cause_run_id = (int64_t) cause->run_id;
                e.cause->cause_scheduled = cause->scheduled;
                e.cause->cause_finished = cause->finished;
                snprintf(e.cause->cause_job, sizeof(e.cause->cause_job), "%s", cause->job);
                snprintf(e.cause->cause_status, sizeof(e.cause->cause_status), "%s", cause->status);
                snprintf(e.cause->cause_message, sizeof(e.cause->cause_message), "%s", cause->message ?: "");
        }
        *ret = e;
        return 0;
}

static void pool_free(pool *p) {
        worker_pools *ps = p->owner;
        for (pool **x = &ps->pools; *x; x = &(*x)->next)
                if (*x == p) {
                        *x = p->next;
                        break;
                }
        while (p->workers) {
                worker *w = p->workers;
                pid_t pid = w->pid;
                worker_free(w);
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
        for (size_t i = 0; i < p->q_len; i++)
                pending_free(&p->q[(p->q_head + i) % p->q_cap]);
        free(p->q);
        sd_event_source_disable_unref(p->retry);
        worker_zygote_free(p->zygote);
        if (ps->cache_reg == p->reg && ps->by_job)
                for (size_t i = 0; i < p->reg->n_jobs; i++)
                        if (ps->by_job[i] == p)
                                ps->by_job[i] = NULL;
        free(p);
}

/* A retired pool goes once its last worker has exited and nothing waits. */
static void pool_maybe_free(pool *p) {
        if (p->retired && !p->workers && p->q_len == 0)
                pool_free(p);
}

/* The runs cancelled or killed while they waited end now, outside run_cancel() (whose caller
 * may be walking the runs). */
static int on_sweep(sd_event_source *s, void *userdata) {
        worker_pools *ps = userdata;
        for (pool *p = ps->pools, *next; p; p = next) {
                next = p->next;
                for (size_t i = 0; i < p->q_len;) {
                        pending *e = &p->q[(p->q_head + i) % p->q_cap];
                        if (!e->r->cancelled && !e->r->killed && !e->r->timed_out) {
                                i++;
                                continue;
                        }
                        pending gone = *e;
                        /* close the gap, keeping the order */
                        for (size_t k = i; k + 1 < p->q_len; k++)
                                p->q[(p->q_head + k) % p->q_cap] = p->q[(p->q_head + k + 1) % p->q_cap];
                        p->q_len--;
                        pending_free(&gone);
                        gone.r->cancel_queued = NULL;
                        gone.r->queue_owner = NULL;
                        snprintf(gone.r->message, sizeof(gone.r->message), "never started: it waited for a worker");
                        run_ended(gone.r, CLD_KILLED, gone.r->killed ? SIGKILL : SIGTERM);
                }
                pool_maybe_free(p);
        }
        return 0;
}

static void cancel_queued(run *r) {
        worker_pools *ps = r->queue_owner;
        (void) sd_event_source_set_enabled(ps->sweep, SD_EVENT_ONESHOT);
}

/* --- pools ---------------------------------------------------------------------------- */

static pool *pool_find(worker_pools *ps, const registry *reg, size_t index) {
        const job_def *def = reg->jobs[index];
        pool *p;

        if (ps->cache_reg != reg) {
                pool **v = calloc(MAX(reg->n_jobs, (size_t) 1), sizeof(pool *));
                if (!v)
                        return NULL;
                free(ps->by_job);
                ps->by_job = v;
                ps->cache_reg = reg;
        }
        if (ps->by_job[index])
                return ps->by_job[index];
        for (p = ps->pools; p; p = p->next)
                if (!p->retired && p->reg == reg && worker_group_same(p->proto, def))
                        return ps->by_job[index] = p;

        p = calloc(1, sizeof(pool));
        if (!p)
                return NULL;
        unsigned size = 0;
        for (size_t i = 0; i < reg->n_jobs; i++)
                if (reg->jobs[i]->workers > size && reg->jobs[i]->isolation == JOB_ISOLATION_WORKER &&
                    worker_group_same(reg->jobs[i], def))
                        size = reg->jobs[i]->workers;
        *p = (pool) {
                .owner = ps, .reg = reg, .proto = def,
                .size = size ?: reg->workers ?: ps->ncpu,
                .last_run_usec = USEC_INFINITY,
                .next = ps->pools,
        };
        ps->pools = p;
        return ps->by_job[index] = p;
}

int worker_pools_submit(worker_pools *ps, const registry *reg, size_t index, run *r, usec_t not_before) {
        pool *p = index < reg->n_jobs ? pool_find(ps, reg, index) : NULL;
        int err = 0, q;
        pending e;

        if (!p)
                return index < reg->n_jobs ? -ENOMEM : -EINVAL;
        q = pending_make(r, index, jobctx_pending_cause(), &e);
        if (q < 0)
                return q;
        e.not_before = not_before;
        r->in_worker = true;
        unsigned room;
        worker *w = p->q_len == 0 ? pool_get(p, not_before, &room, &err) : NULL;
        /* an idle worker takes it at once; runs for busy ones wait for the pump at the end of this
         * turn of the loop, which sends each worker its batch in one go (a thousand fires due
         * together are then ~60 system calls, not a thousand) */
        if (w && !w->run) {
                q = worker_send(w, &e);
                if (q >= 0)
                        return 0;
                if (q == -EPIPE)
                        worker_retire(w); /* gone: its exit comes; the run waits for the next */
                else
                        pool_retry_later(p); /* no answer of the idle worker is coming to pump it */
        } else if (w)
                (void) sd_event_source_set_enabled(ps->pump, SD_EVENT_ONESHOT);
        else if (err < 0 && p->n_workers == 0) {
                pending_free(&e);
                r->in_worker = false;
                return err; /* no worker, and none coming */
        }
        q = pool_queue_put(p, &e, SIZE_MAX);
        if (q < 0) {
                pending_free(&e);
                r->in_worker = false;
                return q;
        }
        return 0;
}

void worker_pools_prepare(worker_pools *ps, const registry *reg, size_t index) {
        pool *p = index < reg->n_jobs ? pool_find(ps, reg, index) : NULL;
        worker *w;
        while (p && p->n_workers < p->size && worker_spawn(p, &w) >= 0)
                ;
}

void worker_pools_retire(worker_pools *ps, const registry *current) {
        free(ps->by_job);
        ps->by_job = NULL;
        ps->cache_reg = NULL;
        for (pool *p = ps->pools, *next; p; p = next) {
                next = p->next;
                if (p->reg == current || p->retired)
                        continue;
                p->retired = true;
                for (worker *w = p->workers; w; w = w->next)
                        worker_retire(w);
                pool_maybe_free(p);
        }
}

void worker_pools_foreach_current(worker_pools *ps, void (*fn)(run *r, void *userdata), void *userdata) {
        if (!ps)
                return;
        for (pool *p = ps->pools; p; p = p->next)
                for (worker *w = p->workers; w; w = w->next)
                        if (w->run)
                                fn(w->run, userdata);
}

size_t worker_pools_waiting(const worker_pools *ps) {
        size_t n = 0;
        if (!ps)
                return 0;
        for (const pool *p = ps->pools; p; p = p->next) {
                n += p->q_len;
                for (const worker *w = p->workers; w; w = w->next)
                        n += w->q_len;
        }
        return n;
}

bool worker_pools_busy(const worker_pools *ps) {
        if (!ps)
                return false;
        if (ps->n_ended > 0)
                return true;
        for (const pool *p = ps->pools; p; p = p->next) {
                if (p->q_len > 0)
                        return true;
                for (const worker *w = p->workers; w; w = w->next)
                        if (w->run || w->q_len > 0)
                                return true;
        }
        return false;
}

uint64_t worker_pools_pipelined(const worker_pools *ps) {
        return ps ? ps->n_pipelined : 0;
}

uint64_t worker_pools_read_pauses(const worker_pools *ps) {
        return ps ? ps->n_read_pauses : 0;
}

size_t worker_pools_pids(const worker_pools *ps, pid_t *v, size_t max) {
        size_t n = 0;
        if (!ps)
                return 0;
        for (const pool *p = ps->pools; p; p = p->next) {
                for (const worker *w = p->workers; w; w = w->next, n++)
                        if (n < max)
                                v[n] = w->pid;
                if (p->zygote && n++ < max)
                        v[n - 1] = worker_zygote_pid(p->zygote);
        }
        return n;
}

int worker_pools_new(sd_event *e, worker_dispatched_fn dispatched, worker_slots_wanted_fn slots_wanted,
                     void *userdata, worker_pools **ret) {
        _cleanup_free_ worker_pools *ps = calloc(1, sizeof(worker_pools));
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int q;

        if (!ps)
                return -ENOMEM;
        ps->event = e;
        ps->dispatched = dispatched;
        ps->slots_wanted = slots_wanted;
        ps->userdata = userdata;
        ps->ncpu = ncpu > 0 ? (unsigned) MIN(ncpu, (long) WORKERS_DEFAULT_MAX) : 1;
        ps->pipeline_max = PIPELINE_RUN_MAX;
        /* tests: a longer bound makes a run queue behind a slow one on purpose (its deadline, a crash) */
        const char *t = getenv("SCHEDULERD_TEST_PIPELINE_USEC");
        if (t && *t) {
                char *end;
                unsigned long long v = strtoull(t, &end, 10);
                if (*end == '\0')
                        ps->pipeline_max = (usec_t) v;
        }
        q = sd_event_add_defer(e, &ps->sweep, on_sweep, ps);
        if (q < 0)
                return q;
        (void) sd_event_source_set_enabled(ps->sweep, SD_EVENT_OFF);
        q = sd_event_add_defer(e, &ps->ended_src, on_ended, ps);
        if (q < 0) {
                sd_event_source_disable_unref(ps->sweep);
                return q;
        }
        q = sd_event_add_defer(e, &ps->pump, on_pump, ps);
        if (q < 0) {
                sd_event_source_disable_unref(ps->sweep);
                sd_event_source_disable_unref(ps->ended_src);
                return q;
        }
        q = sd_event_add_time(e, &ps->ended_timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC, on_ended_timer, ps);
        if (q < 0) {
                sd_event_source_disable_unref(ps->sweep);
                sd_event_source_disable_unref(ps->ended_src);
                sd_event_source_disable_unref(ps->pump);
                return q;
        }
        (void) sd_event_source_set_enabled(ps->ended_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(ps->pump, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(ps->ended_src, SD_EVENT_OFF);
        (void) sd_event_source_set_priority(ps->ended_src, SD_EVENT_PRIORITY_NORMAL + 1);
        *ret = TAKE_PTR(ps);
        return 0;
}

worker_pools *worker_pools_free(worker_pools *ps) {
        if (!ps)
                return NULL;
        while (ps->pools)
                pool_free(ps->pools);
        sd_event_source_disable_unref(ps->sweep);
        sd_event_source_disable_unref(ps->ended_src);
        sd_event_source_disable_unref(ps->ended_timer);
        sd_event_source_disable_unref(ps->pump);
        free(ps->ended); /* their runs were the caller's (worker_pools_free()'s contract) */
        free(ps->started);
        free(ps->by_job);
        free(ps);
        return NULL;
}
