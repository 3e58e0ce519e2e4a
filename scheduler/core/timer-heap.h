/* SPDX-License-Identifier: MIT */
#pragma once

/* A binary min-heap of due instants, embedded in the objects that are due (no allocation per
 * entry): O(log n) insert, update and removal, O(1) earliest. The daemon keeps one heap per
 * clock and arms a single sd-event timer for the earliest entry, so the number of jobs does
 * not grow the event loop. */

#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"

#define TIMER_HEAP_NONE SIZE_MAX

typedef struct timer_entry {
        usec_t when;
        uint64_t seq; /* ties break by insertion order, so equal instants fire in a stable order */
        size_t idx;   /* position in the heap, TIMER_HEAP_NONE when not queued */
} timer_entry;

typedef struct timer_heap {
        timer_entry **v;
        size_t n, cap;
        uint64_t next_seq;
} timer_heap;

#define TIMER_ENTRY_INIT ((timer_entry) { .idx = TIMER_HEAP_NONE })

/* Queues E at WHEN, or moves it there if already queued. -ENOMEM. */
int timer_heap_put(timer_heap *h, timer_entry *e, usec_t when);

/* Dequeues E if queued. */
void timer_heap_remove(timer_heap *h, timer_entry *e);

/* The earliest entry, or NULL. */
static inline timer_entry *timer_heap_peek(const timer_heap *h) {
        return h->n > 0 ? h->v[0] : NULL;
}

static inline bool timer_entry_queued(const timer_entry *e) {
        return e->idx != TIMER_HEAP_NONE;
}

/* How many entries are due at or before WHEN, counting up to MAX: O(that count), as only the
 * part of the heap above WHEN is visited. */
size_t timer_heap_count_until(const timer_heap *h, usec_t when, size_t max);

void timer_heap_done(timer_heap *h);
