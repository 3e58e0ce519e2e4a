/* SPDX-License-Identifier: MIT */
#include "core/timer-heap.h"

static bool before(const timer_entry *a, const timer_entry *b) {
        return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place(timer_heap *h, size_t i, timer_entry *e) {
        h->v[i] = e;
        e->idx = i;
}

static void sift_up(timer_heap *h, size_t i) {
        timer_entry *e = h->v[i];
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!before(e, h->v[p]))
                        break;
                place(h, i, h->v[p]);
                i = p;
        }
        place(h, i, e);
}

static void sift_down(timer_heap *h, size_t i) {
        timer_entry *e = h->v[i];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                const timer_entry *best = e;
                if (l < h->n && before(h->v[l], best)) {
                        m = l;
                        best = h->v[l];
                }
                if (r < h->n && before(h->v[r], best))
                        m = r;
                if (m == i)
                        break;
                place(h, i, h->v[m]);
                i = m;
        }
        place(h, i, e);
}

int timer_heap_put(timer_heap *h, timer_entry *e, usec_t when) {
        if (timer_entry_queued(e)) {
                bool earlier = when < e->when;
                e->when = when;
                e->seq = h->next_seq++;
                if (earlier)
                        sift_up(h, e->idx);
                else
                        sift_down(h, e->idx);
                return 0;
        }
        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 64;
                timer_entry **v = realloc(h->v, cap * sizeof(timer_entry *));
                if (!v)
                        return -ENOMEM;
                h->v = v;
                h->cap = cap;
        }
        e->when = when;
        e->seq = h->next_seq++;
        place(h, h->n++, e);
        sift_up(h, e->idx);
        return 0;
}

void timer_heap_remove(timer_heap *h, timer_entry *e) {
        if (!timer_entry_queued(e))
                return;
        size_t i = e->idx;
        timer_entry *last = h->v[--h->n];
        e->idx = TIMER_HEAP_NONE;
        if (i == h->n)
                return;
        place(h, i, last);
        /* the moved entry may belong above or below its new place */
        if (i > 0 && before(last, h->v[(i - 1) / 2]))
                sift_up(h, i);
        else
                sift_down(h, i);
}

void timer_heap_done(timer_heap *h) {
        for (size_t i = 0; i < h->n; i++)
                h->v[i]->idx = TIMER_HEAP_NONE;
        free(h->v);
        *h = (timer_heap) {};
}

static size_t count_from(const timer_heap *h, size_t i, usec_t when, size_t max) {
        /* an entry is due no earlier than its parent: a subtree past WHEN holds nothing due */
        if (i >= h->n || h->v[i]->when > when || max == 0)
                return 0;
        size_t n = 1;
        n += count_from(h, 2 * i + 1, when, max - n);
        n += count_from(h, 2 * i + 2, when, max - n);
        return n;
}

size_t timer_heap_count_until(const timer_heap *h, usec_t when, size_t max) {
        return count_from(h, 0, when, max);
}
