/* SPDX-License-Identifier: MIT */
#pragma once

/* The launcher: a process forked from the daemon for the registry in force (when warming first
 * needs one after each load), holding that registry and its plugins, that forks run children on
 * request (SPEC section 5). Forking from it
 * rather than from the daemon keeps the daemon's own pages unshared, so the daemon takes no
 * copy-on-write faults for children that are alive, and the fork's cost is paid on another
 * core, ahead of the fire (warm runs, see run_prepare_warm()).
 *
 * The children are made with CLONE_PARENT: their parent is the daemon, which reaps them, signals
 * their process group and watches them with ordinary child event sources, exactly as for runs
 * it forks itself. The launcher only forks and answers with the pid. Requests and replies are
 * SOCK_SEQPACKET datagrams; a request carries the child's two pipe ends as SCM_RIGHTS. */

#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "core/registry.h"
#include "core/start-gate.h"

typedef struct launcher launcher;

/* Forks a launcher for REG (its plugins loaded and initialized) from the calling process; its
 * warm children wait at GATE. It exits when launcher_free() closes its socket or when the caller
 * dies. Returns 0 or -errno. */
int launcher_new(const registry *reg, start_gate *gate, launcher **ret);

/* Asks for the warm child of job number JOB of the launcher's registry, for the cron fire at
 * SCHEDULED, waiting at SLOT of the gate (see run_prepare_warm()), with OUT_W/MSG_W as its
 * output and message pipe ends (duplicated into the request; the caller still owns them).
 * TOKEN comes back with the reply. Returns 0, -EAGAIN when the socket is full, or -errno. */
int launcher_request(launcher *l, uint64_t token, size_t job, usec_t scheduled, int slot, int out_w, int msg_w);

/* Reads one reply: 0 with TOKEN and PID (> 0, or -errno when the fork failed), -EAGAIN when none
 * is waiting, -EPIPE when the launcher is gone. */
int launcher_read_reply(launcher *l, uint64_t *ret_token, int *ret_pid);

/* The descriptor to watch for replies (EPOLLIN). */
int launcher_fd(const launcher *l);

/* The launcher's pid. */
pid_t launcher_pid(const launcher *l);

/* Closes the socket (the launcher exits at EOF) and frees L. Children already forked live on. */
launcher *launcher_free(launcher *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(launcher *, launcher_free);
