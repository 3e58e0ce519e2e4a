/* SPDX-License-Identifier: MIT */
#pragma once

/* A worker process (isolation: worker): forked from the daemon with the registry in force, it
 * takes on the identity and limits of its pool's group of jobs (same plugin, user, environment,
 * credentials and limits), then runs one run after the other, each asked for with a request on
 * its SOCK_SEQPACKET socket and answered with a reply there. Its stdout and stderr are one pipe
 * for its whole life; after each run the worker writes the run's end marker there (a nonce the
 * daemon drew for this worker, one atomic write of fewer than PIPE_BUF bytes), then sends the
 * reply. The output of a run is what precedes its marker: the daemon may send the next request
 * before the reply (pipelining, worker-pool.c), and the next run's output then follows the
 * marker in the same pipe, with no per-run descriptors.
 *
 * A worker asked to stop (SIGTERM: a deadline, a cancellation, shutdown) answers the run in
 * flight, then answers any request already in its socket with WORKER_REPLY_NOT_RUN, and exits:
 * the daemon knows for certain which runs it never started. */

#include <stdint.h>
#include <sys/types.h>

#include <schedulerd/job.h>

#include "core/jobctx.h"
#include "core/registry.h"

/* Where the worker keeps its socket once it has closed everything else of the daemon's. */
#define WORKER_SOCKET_FD 3

/* The size of a run's end marker in the output pipe. */
#define WORKER_MARKER_SIZE 16

typedef struct worker_request {
        uint64_t seq;        /* the daemon's number for this request, echoed by its reply */
        uint64_t job;        /* index in the registry the worker was forked with */
        int64_t id;          /* the run id (0 when history is failing) */
        usec_t scheduled;
        usec_t not_before;   /* sent ahead of its instant: the worker starts it then (wall clock), 0: now */
        uint32_t attempt;
        uint32_t has_cause;  /* the cause follows (on_failure / on_success) */
        /* the cause, when has_cause */
        int64_t cause_run_id;
        usec_t cause_scheduled, cause_finished;
        char cause_job[65];
        char cause_status[16];
        char cause_message[JOBCTX_MESSAGE_MAX];
} worker_request;

/* The size of a request without a cause: only that much is sent then. */
#define WORKER_REQUEST_SHORT offsetof(worker_request, cause_run_id)

/* A request's not_before this far ahead at most: further, the wall clock was set back since it
 * was sent, and the run starts at once (the daemon sends runs ahead by its lead, 250 ms at most). */
#define WORKER_AHEAD_MAX (2 * USEC_PER_SEC)

typedef struct worker_reply {
        uint64_t seq;        /* the request's */
        int64_t id;          /* the request's run id */
        usec_t answered;     /* the worker's wall clock just before sending: its next run starts after */
        usec_t took;         /* the run's own time (the worker's monotonic clock), without the waits
                              * for a CPU or a request before it: what pipelining judges runs by */
        int32_t exit_code;   /* RUN_EXIT_OK, RUN_EXIT_RETRY or RUN_EXIT_FAIL */
        uint32_t max_rss_kib; /* the worker's peak RSS (getrusage) after the run */
        uint32_t flags;      /* WORKER_REPLY_* */
        char message[JOBCTX_MESSAGE_MAX]; /* NUL-terminated; only up to the NUL is sent */
} worker_reply;

/* The worker's address space is past 3/4 of limits.address_space: allocations of the next
 * runs would fail where a fresh process's would not, so it is replaced. */
#define WORKER_REPLY_NEAR_LIMIT (UINT32_C(1) << 0)
/* The request was never started: the worker was asked to stop before it took it. */
#define WORKER_REPLY_NOT_RUN (UINT32_C(1) << 1)

/* The worker's body. REG is the registry the daemon held when it forked; PROTO the first job of
 * the worker's group (its identity, environment, credentials and limits are the group's). SOCK
 * is the worker's end of its socket, OUT the write end of its output pipe, MARKER its end-of-run
 * marker (WORKER_MARKER_SIZE bytes). PARENT is the daemon's pid. Runs requests until the socket
 * closes (exit 0) or a SIGTERM: the run then in flight is cancelled (sched_job_cancelled()),
 * answered, the requests behind it answered not run, and the worker exits. Never returns. */
_Noreturn void worker_main(const registry *reg, const job_def *proto, int sock, int out, pid_t parent,
                           const uint8_t *marker);
