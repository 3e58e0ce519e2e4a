/* SPDX-License-Identifier: MIT */
#include <time.h>

#include "clock.h"

static usec_t now(clockid_t id) {
        struct timespec ts;
        /* clock_gettime cannot fail for these ids on Linux; treat failure as the epoch */
        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

usec_t clock_now_realtime(void) {
        return now(CLOCK_REALTIME);
}

usec_t clock_now_monotonic(void) {
        return now(CLOCK_MONOTONIC);
}

usec_t clock_now_boottime(void) {
        return now(CLOCK_BOOTTIME);
}
