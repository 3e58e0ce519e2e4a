/* SPDX-License-Identifier: MIT */
#pragma once

/* Fires held back by the concurrency limit (scheduler.max_concurrent), waiting for a slot: the
 * oldest instant leaves first, and each fire has a deadline past which it no longer may start
 * (it is then recorded missed). Two heaps over the same entries, one by instant and one by
 * deadline: push, take and both peeks are O(log n) or O(1), so a backlog of thousands of fires
 * costs no scan. Pure data structure: no clock, no I/O. */

#include <stddef.h>

#include "basic/macro.h"
#include "basic/run-status.h"
#include "core/timer-heap.h"

typedef struct queued_fire {
        timer_entry by_instant;  /* when: scheduled (ties: the order pushed) */
        timer_entry by_deadline; /* when: deadline */
        char *job;               /* by name: the job may be replaced (reload) while its fire waits */
        run_trigger trigger;
        usec_t scheduled;        /* the instant the fire stands for */
        usec_t deadline;         /* the latest start still in time; USEC_INFINITY: none */
} queued_fire;

typedef struct fire_queue {
        timer_heap by_instant, by_deadline;
} fire_queue;

#define FIRE_QUEUE_INIT ((fire_queue) {})

/* Queues the fire of JOB (copied) for SCHEDULED, by TRIGGER, to start by DEADLINE. -ENOMEM. */
int fire_queue_push(fire_queue *q, const char *job, run_trigger trigger, usec_t scheduled, usec_t deadline);

/* The fire with the oldest instant (the next to start), or NULL when empty. */
queued_fire *fire_queue_oldest(const fire_queue *q);

/* The fire with the earliest deadline (the next to be missed), or NULL when empty. */
queued_fire *fire_queue_first_deadline(const fire_queue *q);

/* Takes F out of Q; the caller owns it (queued_fire_free()). */
void fire_queue_take(fire_queue *q, queued_fire *f);

/* The number of fires waiting. */
size_t fire_queue_size(const fire_queue *q);

/* Frees a fire taken out of its queue. Accepts NULL; returns NULL. */
queued_fire *queued_fire_free(queued_fire *f);

/* Frees every fire still queued and the heaps; Q is empty after. */
void fire_queue_done(fire_queue *q);
