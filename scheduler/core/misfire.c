/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "core/misfire.h"

static usec_t add_sat(usec_t a, usec_t b) {
        return a == USEC_INFINITY || b == USEC_INFINITY || a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

usec_t misfire_deadline(usec_t t, usec_t next, usec_t threshold, usec_t slack) {
        if (threshold == MISFIRE_AUTO)
                return add_sat(next, slack);
        return add_sat(add_sat(t, threshold), slack);
}

int misfire_scan(misfire_next_fn next, const void *userdata, usec_t first, usec_t threshold, usec_t slack, usec_t now,
                 misfire_range *ret_missed, usec_t *ret_next) {
        misfire_range m = {};
        usec_t t = first;
        int r = 0;

        for (unsigned i = 0; t != USEC_INFINITY; i++) {
                usec_t n;
                int q = next(userdata, t, &n);
                if (q == -ERANGE)
                        n = USEC_INFINITY;
                else if (q < 0)
                        return q;
                if (now <= misfire_deadline(t, n, threshold, slack))
                        break;
                if (i == MISFIRE_SCAN_MAX) {
                        r = 1;
                        break;
                }
                if (m.count++ == 0)
                        m.first = t;
                else
                        m.before_last = m.last;
                m.last = t;
                t = n;
        }
        *ret_missed = m;
        *ret_next = t;
        return r;
}

void misfire_scan_every(usec_t interval, usec_t first, usec_t threshold, usec_t slack, usec_t now,
                        misfire_range *ret_missed, usec_t *ret_next) {
        usec_t thr = threshold == MISFIRE_AUTO ? interval : threshold;
        usec_t limit = add_sat(add_sat(first, thr), slack); /* the deadline of FIRST */
        misfire_range m = {};

        if (now > limit) {
                /* instant k is missed when FIRST + k * INTERVAL + THR + SLACK < NOW */
                m.count = (now - limit - 1) / interval + 1;
                m.first = first;
                m.last = first + (m.count - 1) * interval;
                if (m.count >= 2)
                        m.before_last = m.last - interval;
        }
        *ret_missed = m;
        *ret_next = first + m.count * interval;
}
