/* SPDX-License-Identifier: MIT */
/* Claim latency on a PostgreSQL store (issue 15, figure "claim p50/p99"): N claims of distinct
 * fires through history_claim_fire(), each its own transaction as in a cluster, timed one by
 * one on CLOCK_MONOTONIC; then N claims of fires already claimed (the losing side of a race).
 * Prints one JSON object. Usage: bench-claim CONNINFO [N [JOB]] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "store/history.h"

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p) {
        size_t i = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);
        return (double) v[i] / 1000.0; /* microseconds */
}

int main(int argc, char **argv) {
        char err[512];
        history *h = NULL;
        size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000;
        const char *job = argc > 3 ? argv[3] : "bench-claim";
        uint64_t *won = calloc(n, sizeof(uint64_t)), *lost = calloc(n, sizeof(uint64_t));
        usec_t base = (usec_t) 1900000000 * USEC_PER_SEC; /* instants nobody else claims */

        if (argc < 2 || !won || !lost) {
                fprintf(stderr, "usage: bench-claim CONNINFO [N]\n");
                return 2;
        }
        int r = history_open_store(argv[1], NULL, err, sizeof(err), &h);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        int64_t id;
                        uint64_t t0 = mono_ns();
                        r = history_claim_fire(h, job, RUN_TRIGGER_SCHEDULE, base + i * USEC_PER_SEC, base, 0,
                                               &id);
                        uint64_t t1 = mono_ns();
                        if ((pass == 0 && r < 0) || (pass == 1 && r != -EEXIST)) {
                                fprintf(stderr, "claim %zu (pass %d): %d %s\n", i, pass, r, history_last_error(h));
                                return 1;
                        }
                        (pass == 0 ? won : lost)[i] = t1 - t0;
                }
        qsort(won, n, sizeof(uint64_t), cmp);
        qsort(lost, n, sizeof(uint64_t), cmp);
        printf("{\"n\": %zu, \"won_p50_us\": %.1f, \"won_p99_us\": %.1f, \"lost_p50_us\": %.1f, \"lost_p99_us\": %.1f}\n",
               n, pct(won, n, 50), pct(won, n, 99), pct(lost, n, 50), pct(lost, n, 99));
        history_close(h);
        free(won);
        free(lost);
        return 0;
}
