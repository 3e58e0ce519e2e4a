/* SPDX-License-Identifier: MIT */
#include "basic/byte-window.h"

void byte_window_init(byte_window *w, usec_t interval, size_t budget, size_t min_charge) {
        *w = (byte_window) { .interval = interval, .budget = budget, .min_charge = min_charge };
}

size_t byte_window_room(byte_window *w, usec_t now, size_t max) {
        if (w->end == 0 || now >= w->end) {
                w->end = now + w->interval;
                w->used = 0;
        }
        return MIN(max, w->budget - MIN(w->used, w->budget));
}

void byte_window_used(byte_window *w, size_t n) {
        w->used += MAX(n, w->min_charge);
}

usec_t byte_window_resume(const byte_window *w) {
        return w->end;
}
