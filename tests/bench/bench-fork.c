/* SPDX-License-Identifier: MIT */
/* Benchmark helper: what forking a child per run costs the forking process on this machine,
 * as a function of the memory it has touched and of the pages it writes between two forks
 * (each write to a page shared with a live child is a copy-on-write fault).
 *
 *   bench-fork MIB DIRTY_PAGES BATCH ROUNDS
 *
 * touches MIB MiB, then ROUNDS times: forks BATCH children (each _exits at once), writing
 * DIRTY_PAGES pages of that memory after each fork, then reaps them. Prints one JSON object
 * with the parent's CPU time (user+system, from getrusage) and wall time per child. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/clock.h"

static double cpu_sec(void) {
        struct rusage ru;
        (void) getrusage(RUSAGE_SELF, &ru);
        return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char *argv[]) {
        if (argc != 5) {
                fprintf(stderr, "usage: bench-fork MIB DIRTY_PAGES BATCH ROUNDS\n");
                return 2;
        }
        size_t mib = strtoul(argv[1], NULL, 10), dirty = strtoul(argv[2], NULL, 10);
        unsigned batch = (unsigned) strtoul(argv[3], NULL, 10), rounds = (unsigned) strtoul(argv[4], NULL, 10);
        long page = sysconf(_SC_PAGESIZE);
        size_t size = mib * 1024 * 1024, n_pages = size / (size_t) page;
        if (batch == 0 || rounds == 0 || dirty > n_pages) {
                fprintf(stderr, "bench-fork: BATCH and ROUNDS must be > 0, DIRTY_PAGES <= the pages of MIB\n");
                return 2;
        }
        char *mem = NULL;
        if (size > 0) {
                mem = malloc(size);
                if (!mem)
                        return 1;
                for (size_t i = 0; i < size; i += (size_t) page)
                        mem[i] = 1;
        }
        pid_t *pids = calloc(batch, sizeof(pid_t));
        if (!pids)
                return 1;

        double c0 = cpu_sec();
        usec_t t0 = clock_now_monotonic();
        size_t next = 0;
        for (unsigned r = 0; r < rounds; r++) {
                for (unsigned b = 0; b < batch; b++) {
                        pids[b] = fork();
                        if (pids[b] < 0)
                                return 1;
                        if (pids[b] == 0)
                                _exit(0);
                        for (size_t k = 0; k < dirty; k++) {
                                mem[next * (size_t) page]++;
                                next = (next + 1) % n_pages;
                        }
                }
                for (unsigned b = 0; b < batch; b++)
                        (void) waitpid(pids[b], NULL, 0);
        }
        double cpu = cpu_sec() - c0;
        usec_t wall = clock_now_monotonic() - t0;
        unsigned n = batch * rounds;
        printf("{\"mib\": %zu, \"dirty_pages\": %zu, \"batch\": %u, \"children\": %u, \"parent_cpu_usec_per_child\": %.1f, "
               "\"wall_usec_per_child\": %.1f}\n",
               mib, dirty, batch, n, cpu * 1e6 / n, (double) wall / n);
        free(pids);
        free(mem);
        return 0;
}
