/* SPDX-License-Identifier: MIT */
/* Fuzzes schedule_parse() and, for what it accepts, schedule_next() from a few instants around
 * DST changes, in UTC and Europe/Amsterdam. Properties: a parse error points inside the input
 * and says something; a next fire is strictly after its start; asking again from one second
 * before a fire finds that same fire (the set of fires does not depend on where one starts). */
#include <errno.h>
#include <string.h>
#include "fuzz.h"
#include "basic/schedule.h"

static const tz *zones[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        tz *z;
        if (tz_load("UTC", &z) < 0 || !(zones[0] = z) || tz_load("Europe/Amsterdam", &z) < 0 || !(zones[1] = z)) {
                fprintf(stderr, "fuzz_cron: cannot load UTC and Europe/Amsterdam; expected tzdata installed\n");
                abort();
        }
        return 0;
}

/* Instants (UTC seconds) to start from: the epoch, the 2026 spring-forward and fall-back of
 * Europe/Amsterdam and an hour before each, a leap day, and late in year 9999. */
static const int64_t starts[] = {
        0, 1774746000 - 3600, 1774746000, 1792890000 - 3600, 1792890000, 1709164800, 253402214400,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);
        parse_error e = {};
        schedule sch;
        int r;

        if (!s)
                return 0;
        r = schedule_parse(s, &sch, &e);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "schedule_parse returned %d", r);
        if (r < 0) {
                FUZZ_CHECK(e.offset <= strlen(s), "error offset %zu past the input (%zu bytes)", e.offset, strlen(s));
                FUZZ_CHECK(e.message[0] != '\0', "error without a message for \"%s\"", s);
                goto out;
        }
        if (sch.kind == SCHEDULE_EVERY) {
                FUZZ_CHECK(sch.interval > 0, "\"%s\": @every with a zero interval", s);
                int64_t t;
                FUZZ_CHECK(schedule_next(&sch, zones[0], 0, &t) == -EINVAL, "\"%s\": schedule_next on @every", s);
                goto out;
        }
        for (size_t zi = 0; zi < 2; zi++)
                for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
                        int64_t t = starts[i], next, again;
                        for (unsigned k = 0; k < 3; k++) {
                                r = schedule_next(&sch, zones[zi], t, &next);
                                FUZZ_CHECK(r == 0 || r == -ERANGE, "\"%s\": schedule_next returned %d", s, r);
                                if (r < 0)
                                        break;
                                FUZZ_CHECK(next > t, "\"%s\" in %s: next fire %lld not after %lld", s, tz_name(zones[zi]),
                                           (long long) next, (long long) t);
                                r = schedule_next(&sch, zones[zi], next - 1, &again);
                                FUZZ_CHECK(r == 0 && again == next,
                                           "\"%s\" in %s: after %lld the next fire is %lld, but after %lld it is %lld (r=%d)",
                                           s, tz_name(zones[zi]), (long long) t, (long long) next, (long long) next - 1,
                                           (long long) again, r);
                                t = next;
                        }
                }
out:
        free(s);
        return 0;
}
