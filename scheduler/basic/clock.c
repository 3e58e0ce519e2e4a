/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <time.h>

#include "basic/clock.h"

static usec_t now(clockid_t id) {
        struct timespec ts;
        /* clock_gettime cannot fail for these ids on Linux; treat failure as the epoch */
        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

const char *clock_test_offset_file(void) {
        static const char *path;
        static bool checked;
        if (!checked) {
                path = getenv("SCHEDULERD_TEST_CLOCK_OFFSET_FILE");
                checked = true;
        }
        return isempty(path) ? NULL : path;
}

/* The test offset in microseconds: the file holds whole seconds, possibly negative; a missing or
 * unreadable file means 0. Read on every call, so a test can move the clock under a daemon. */
static int64_t test_offset(void) {
        const char *path = clock_test_offset_file();
        long long secs = 0;
        FILE *f;

        if (!path || !(f = fopen(path, "re")))
                return 0;
        if (fscanf(f, "%lld", &secs) != 1)
                secs = 0;
        fclose(f);
        return (int64_t) secs * (int64_t) USEC_PER_SEC;
}

usec_t clock_now_realtime(void) {
        return now(CLOCK_REALTIME) + (usec_t) test_offset();
}

usec_t clock_realtime_to_kernel(usec_t t) {
        return t == USEC_INFINITY ? t : t - (usec_t) test_offset();
}

int clock_sleep_until_realtime(usec_t t, usec_t max_ahead) {
        for (;;) {
                usec_t now = clock_now_realtime();
                if (now >= t || t - now > max_ahead)
                        return 0;
                usec_t until = clock_now_monotonic() + (t - now);
                struct timespec ts = { .tv_sec = (time_t) (until / USEC_PER_SEC),
                                       .tv_nsec = (long) (until % USEC_PER_SEC) * 1000 };
                int q = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                if (q == EINTR)
                        return -EINTR;
                if (q != 0)
                        return -q;
        }
}

usec_t clock_now_monotonic(void) {
        return now(CLOCK_MONOTONIC);
}

usec_t clock_now_boottime(void) {
        return now(CLOCK_BOOTTIME);
}
