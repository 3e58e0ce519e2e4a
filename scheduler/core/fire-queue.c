/* SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/fire-queue.h"

static queued_fire *of_instant(timer_entry *e) {
        return e ? (queued_fire *) ((char *) e - offsetof(queued_fire, by_instant)) : NULL;
}

static queued_fire *of_deadline(timer_entry *e) {
        return e ? (queued_fire *) ((char *) e - offsetof(queued_fire, by_deadline)) : NULL;
}

int fire_queue_push(fire_queue *q, const char *job, run_trigger trigger, usec_t scheduled, usec_t deadline) {
        queued_fire *f = calloc(1, sizeof(queued_fire));
        if (!f)
                return -ENOMEM;
        *f = (queued_fire) {
                .by_instant = TIMER_ENTRY_INIT, .by_deadline = TIMER_ENTRY_INIT,
                .job = strdup(job), .trigger = trigger, .scheduled = scheduled, .deadline = deadline,
        };
        if (!f->job || timer_heap_put(&q->by_instant, &f->by_instant, scheduled) < 0 ||
            timer_heap_put(&q->by_deadline, &f->by_deadline, deadline) < 0) {
                fire_queue_take(q, f);
                queued_fire_free(f);
                return -ENOMEM;
        }
        return 0;
}

queued_fire *fire_queue_oldest(const fire_queue *q) {
        return of_instant(timer_heap_peek(&q->by_instant));
}

queued_fire *fire_queue_first_deadline(const fire_queue *q) {
        return of_deadline(timer_heap_peek(&q->by_deadline));
}

void fire_queue_take(fire_queue *q, queued_fire *f) {
        timer_heap_remove(&q->by_instant, &f->by_instant);
        timer_heap_remove(&q->by_deadline, &f->by_deadline);
}

size_t fire_queue_size(const fire_queue *q) {
        return q->by_instant.n;
}

queued_fire *queued_fire_free(queued_fire *f) {
        if (!f)
                return NULL;
        free(f->job);
        free(f);
        return NULL;
}

void fire_queue_done(fire_queue *q) {
        queued_fire *f;
        while ((f = fire_queue_oldest(q))) {
                fire_queue_take(q, f);
                queued_fire_free(f);
        }
        timer_heap_done(&q->by_instant);
        timer_heap_done(&q->by_deadline);
}
