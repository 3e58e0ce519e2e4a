/* SPDX-License-Identifier: MIT */
#pragma once

/* A worker pool's zygote: a process forked from the daemon once per pool, holding the pool's
 * registry and plugins as they were then, that forks the pool's workers on request. Its forks
 * use CLONE_PARENT, so every worker is still the daemon's child (reaped, signalled and watched
 * as before). Forked from the daemon, each new worker shared the daemon's pages as they were at
 * that fork, and every page the daemon wrote afterwards was a copy-on-write fault with a TLB
 * shoot-down: with 10,000 every-second jobs, whose workers are recycled every 10,000 runs (a
 * fork every second), that was a third of the daemon's time. Now the daemon takes those faults
 * once per pool, for the zygote, which never runs a job and never writes what it shares.
 *
 * Requests are SOCK_SEQPACKET datagrams carrying the worker's end marker, and its socket and
 * output pipe ends as SCM_RIGHTS; the reply is the pid. */

#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "core/registry.h"

typedef struct worker_zygote worker_zygote;

/* Forks the zygote of the pool of PROTO (a job of REG) from the calling process (the daemon).
 * It exits when worker_zygote_free() closes its socket, or when the daemon dies. Returns 0 or a
 * negative errno. */
int worker_zygote_new(const registry *reg, const job_def *proto, worker_zygote **ret);

/* Forks a worker (worker_main() with SOCK, OUT and MARKER, as worker.h says; the caller keeps
 * its descriptors and closes them after). Waits for the zygote's answer, 5 s at most. Returns 0
 * with the worker's pid, the fork's -errno, -EPIPE when the zygote is gone, or -ETIMEDOUT when
 * it did not answer (it may have forked with SOCK and OUT: do not use them for another). Either
 * way, free it: the caller forks the worker itself. */
int worker_zygote_fork(worker_zygote *z, int sock, int out, const uint8_t *marker, pid_t *ret_pid);

/* The zygote's pid (one of the daemon's own children). */
pid_t worker_zygote_pid(const worker_zygote *z);

/* Closes its socket, kills and reaps the zygote. Workers it forked live on. Accepts NULL. */
worker_zygote *worker_zygote_free(worker_zygote *z);
DEFINE_TRIVIAL_CLEANUP_FUNC(worker_zygote *, worker_zygote_free);
