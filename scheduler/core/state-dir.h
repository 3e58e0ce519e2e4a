/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's claim on its state directory: one daemon per state, for the life of the
 * process. */

/* Creates STATE_DIR (mode 0750, parents as needed) and takes an exclusive lock on
 * STATE_DIR/schedulerd.lock, writing this process's pid there. Call before anything in the
 * state (history.db) or the control socket is opened. The lock is held until the process
 * exits (the descriptor is close-on-exec, and job processes close it). Logs what is wrong and
 * what to do, and returns 0, -EBUSY when another live daemon holds the lock (its pid named),
 * or another negative errno. A second call in the same process is a no-op. */
int state_dir_claim(const char *state_dir);

/* What start-up would say about directory DIR (the state directory, or the one of the control
 * socket) without touching it, for schedctl check: 0 if it exists and is writable, or can be
 * created; else a negative errno and a malloc'ed sentence (if RET_ERROR) naming the directory,
 * the reason (a read-only file system, no permission, not a directory) and what to do. */
int state_dir_check(const char *dir, char **ret_error);
