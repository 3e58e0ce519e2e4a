/* SPDX-License-Identifier: MIT */
/* Benchmark helper: how long the daemon's own code takes to parse a registry and to compute
 * the next fire of every job in it, apart from process start-up, SQLite and plugin init
 * (which the daemon's start-up time includes and the driver measures from outside).
 *
 *   bench-nextfire REGISTRY [ROUNDS]
 *
 * prints one JSON object: jobs, load_sec (parse + validate, plugins not loaded), and the
 * best and median of ROUNDS passes computing every job's next fire after the same instant. */
#include <stdio.h>
#include <stdlib.h>

#include "basic/clock.h"
#include "core/registry.h"

static int cmp_usec(const void *a, const void *b) {
        usec_t x = *(const usec_t *) a, y = *(const usec_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list diags = {};
        unsigned rounds = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 5;
        usec_t *t;
        int64_t sum = 0;

        if (argc < 2 || rounds == 0 || rounds > 1000) {
                fprintf(stderr, "usage: bench-nextfire REGISTRY [ROUNDS 1-1000]\n");
                return 2;
        }
        usec_t t0 = clock_now_monotonic();
        int q = registry_load_with(argv[1], REGISTRY_IGNORE_PLUGINS, NULL, &r, &diags);
        usec_t load = clock_now_monotonic() - t0;
        if (q < 0) {
                for (size_t i = 0; i < diags.n; i++) {
                        _cleanup_free_ char *s = diag_format(&diags.items[i]);
                        fprintf(stderr, "%s\n", s ?: diags.items[i].message);
                }
                diag_list_clear(&diags);
                fprintf(stderr, "bench-nextfire: cannot load %s: %s\n", argv[1], strerror(-q));
                return 1;
        }
        diag_list_clear(&diags);

        t = calloc(rounds, sizeof(usec_t));
        if (!t)
                return 1;
        int64_t now = (int64_t) (clock_now_realtime() / USEC_PER_SEC);
        unsigned failed = 0;
        for (unsigned k = 0; k < rounds; k++) {
                usec_t s = clock_now_monotonic();
                for (size_t i = 0; i < r->n_jobs; i++) {
                        const job_def *j = r->jobs[i];
                        int64_t next;
                        if (j->schedule.kind == SCHEDULE_EVERY)
                                continue;
                        if (schedule_next(&j->schedule, j->zone, now, &next) < 0)
                                failed++;
                        else
                                sum += next; /* keeps the calls from being optimised away */
                }
                t[k] = clock_now_monotonic() - s;
        }
        qsort(t, rounds, sizeof(usec_t), cmp_usec);
        printf("{\"jobs\": %zu, \"load_sec\": %.6f, \"next_all_best_sec\": %.6f, \"next_all_median_sec\": %.6f, "
               "\"rounds\": %u, \"failed\": %u, \"checksum\": %lld}\n",
               r->n_jobs, (double) load / USEC_PER_SEC, (double) t[0] / USEC_PER_SEC,
               (double) t[rounds / 2] / USEC_PER_SEC, rounds, failed / rounds, (long long) (sum % 1000003));
        free(t);
        return 0;
}
