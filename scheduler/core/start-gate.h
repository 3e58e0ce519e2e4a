/* SPDX-License-Identifier: MIT */
#pragma once

/* The start gate: shared memory on which warm run children (see run_prepare_warm()) wait for
 * their run id. Each warm child owns a slot; the daemon writes the ids of every run it starts in
 * one timer dispatch into their slots and then wakes them all with a single futex call, so a herd
 * of a thousand runs is released at once instead of one write (and one preemption by the woken
 * child) at a time. The mapping is MAP_SHARED, made before the launcher is forked, so launcher
 * and children inherit it.
 *
 * Slot allocation is the daemon's alone; the children only read their slot. */

#include <stdint.h>

#include "basic/macro.h"

typedef struct start_gate start_gate;

/* Maps a gate of N_SLOTS slots. Returns 0 or -errno. */
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

/* Async-signal-safe, for a waiting child's signal handler: makes a start_gate_wait() that is
 * about to sleep (the signal came between its check of CANCELLED and the futex call) return at
 * once and look again, so a cancellation is never slept through. */
void start_gate_interrupt(start_gate *g);

/* In a warm child: waits until SLOT is released (returns 0 and the run id) or abandoned
 * (-ECANCELED), or until CANCELLED() is true after a signal (-EINTR). */
int start_gate_wait(start_gate *g, unsigned slot, bool (*cancelled)(void), int64_t *ret_id);
