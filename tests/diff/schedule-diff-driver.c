/* SPDX-License-Identifier: MIT */
/* The C side of the differential test against croner (tests/diff/diff-croner.mjs).
 * Reads requests from stdin, one per line, tab-separated, and answers one line each:
 *
 *   C <zone> <after> <count> <expr>   next COUNT fires of EXPR after AFTER (UTC seconds):
 *                                      "ok T1 T2 ..." or "error <offset> <message>"
 *   T <zone> <from> <to>               the zone's offset changes in (FROM, TO]:
 *                                      "ok T:OFF_BEFORE:OFF_AFTER ..."
 *
 * Run without --stdin (as the test harness does, since check_PROGRAMS are also TESTS) it
 * does nothing and succeeds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/schedule.h"
#include "basic/tz.h"

static int split(char *line, char **f, int max) {
        int n = 0;
        char *p = line;
        while (n < max) {
                f[n++] = p;
                p = strchr(p, '\t');
                if (!p)
                        break;
                *p++ = '\0';
        }
        return n;
}

static void do_cron(char **f) {
        schedule s;
        parse_error e;
        tz *z;
        int64_t t = strtoll(f[2], NULL, 10);
        int count = atoi(f[3]);
        int r;

        r = tz_load(f[1], &z);
        if (r < 0) {
                printf("error 0 cannot load zone %s: %s\n", f[1], strerror(-r));
                return;
        }
        if (schedule_parse(f[4], &s, &e) < 0) {
                printf("error %zu %s\n", e.offset, e.message);
                return;
        }
        if (s.kind != SCHEDULE_CRON) {
                printf("error 0 not a cron schedule\n");
                return;
        }
        fputs("ok", stdout);
        for (int i = 0; i < count; i++) {
                r = schedule_next(&s, z, t, &t);
                if (r < 0) {
                        printf(" E%d", -r);
                        break;
                }
                printf(" %" PRId64, t);
        }
        putchar('\n');
}

static void do_transitions(char **f) {
        tz *z;
        int64_t t = strtoll(f[2], NULL, 10), to = strtoll(f[3], NULL, 10);
        int r = tz_load(f[1], &z);

        if (r < 0) {
                printf("error 0 cannot load zone %s: %s\n", f[1], strerror(-r));
                return;
        }
        fputs("ok", stdout);
        for (;;) {
                int64_t n = tz_next_transition(z, t);
                if (n == INT64_MAX || n > to)
                        break;
                printf(" %" PRId64 ":%" PRId32 ":%" PRId32, n, tz_offset_at(z, n - 1), tz_offset_at(z, n));
                t = n;
        }
        putchar('\n');
}

int main(int argc, char **argv) {
        char line[4096];

        if (argc < 2 || strcmp(argv[1], "--stdin") != 0)
                return EXIT_SUCCESS;

        while (fgets(line, sizeof(line), stdin)) {
                char *f[5];
                line[strcspn(line, "\n")] = '\0';
                int n = split(line, f, 5);
                if (n == 5 && streq(f[0], "C"))
                        do_cron(f);
                else if (n == 4 && streq(f[0], "T"))
                        do_transitions(f);
                else
                        printf("error 0 bad request\n");
        }
        fflush(stdout);
        tz_cache_clear();
        return EXIT_SUCCESS;
}
