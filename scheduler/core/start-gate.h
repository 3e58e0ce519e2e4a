/* SPDX-License-Identifier: MIT */
#pragma once

/* The start gate: shared memory on which warm run children (see run_prepare_warm()) wait for
 * their run id. Each warm child owns a slot; the daemon writes the ids of every run it starts in
 * one timer dispatch into their slots and then wakes them all with a single futex call, so a herd
 * of a thousand runs is released at once instead of one write (and one preemption by the woken
 * child) at a time.
 *
 * Only the process that made the gate can write it: the memory is a sealed memfd mapped twice,
 * writable in the owner and not inherited by fork, and read-only (for good: it cannot be made
 * writable again) in every child, so no job can open, release or turn away another job's slot.
 * Children inherit the read-only view through fork, the launcher included. */

#include <stdint.h>

#include "basic/macro.h"

typedef struct start_gate start_gate;

/* Maps a gate of N_SLOTS slots, writable by the calling process only. Returns 0 or -errno
 * (-EINVAL from a kernel older than 5.1, which cannot seal it against jobs). */
int start_gate_new(unsigned n_slots, start_gate **ret);

/* Unmaps G (children that still wait then see nothing; they are abandoned first). NULL is fine. */
start_gate *start_gate_free(start_gate *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(start_gate *, start_gate_free);

/* Takes a free slot, marked waiting. Returns 0, or -EBUSY when all are taken. */
int start_gate_take(start_gate *g, unsigned *ret_slot);

/* Gives SLOT back; only once its child has exited. */
void start_gate_put(start_gate *g, unsigned slot);

/* Lets SLOT's child start as run ID at the next start_gate_release(); until then it keeps
 * waiting, even if woken. */
void start_gate_open(start_gate *g, unsigned slot, int64_t id);

/* Releases every slot opened since the last call, and wakes what start_gate_wake() would, with
 * one system call. */
void start_gate_release(start_gate *g);

/* Tells SLOT's child to exit without running, at the next start_gate_wake() or release. */
void start_gate_abandon(start_gate *g, unsigned slot);

/* Wakes the children of the slots abandoned since the last wake (nothing when none; slots
 * opened but not released stay shut). */
void start_gate_wake(start_gate *g);

/* Async-signal-safe, for a waiting child's signal handler: makes a start_gate_wait() under way in
 * this process return -EINTR at once, wherever the signal landed (before or in the futex call),
 * so a cancellation is never slept through. Writes nothing shared. Does nothing outside a wait. */
void start_gate_interrupt(void);

/* In a child forked after start_gate_new(): waits until SLOT is released (returns 0 and the run
 * id) or abandoned (-ECANCELED), or until CANCELLED() is true or start_gate_interrupt() is called
 * from a signal handler (-EINTR). Reads the gate only. */
int start_gate_wait(const start_gate *g, unsigned slot, bool (*cancelled)(void), int64_t *ret_id);
