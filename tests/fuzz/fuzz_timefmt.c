/* SPDX-License-Identifier: MIT */
/* Fuzzes timefmt_parse() with no local zone, UTC and Europe/Amsterdam. What it accepts, formatted
 * back with timefmt_rfc3339() (milliseconds, explicit offset), must parse to the same instant
 * truncated to the millisecond. */
#include <errno.h>
#include <string.h>
#include "fuzz.h"
#include "basic/timefmt.h"

static const tz *zones[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        tz *z;
        if (tz_load("UTC", &z) < 0 || !(zones[1] = z) || tz_load("Europe/Amsterdam", &z) < 0 || !(zones[2] = z)) {
                fprintf(stderr, "fuzz_timefmt: cannot load UTC and Europe/Amsterdam; expected tzdata installed\n");
                abort();
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size), buf[TIMEFMT_MAX];

        if (!s)
                return 0;
        for (size_t zi = 0; zi < 3; zi++) {
                parse_error e = {};
                usec_t t, back;
                int r = timefmt_parse(s, zones[zi], &t, &e);
                FUZZ_CHECK(r == 0 || r == -EINVAL, "timefmt_parse returned %d", r);
                if (r < 0) {
                        FUZZ_CHECK(e.offset <= strlen(s), "error offset %zu past the input (%zu bytes)", e.offset,
                                   strlen(s));
                        FUZZ_CHECK(e.message[0] != '\0', "error without a message for \"%s\"", s);
                        continue;
                }
                for (size_t fi = 0; fi < 3; fi++) {
                        /* east of UTC the last hours of 9999 are local year 10000, which RFC 3339
                         * cannot write; only the UTC form is checked there */
                        if (fi > 0 && t >= UINT64_C(253402214400) * USEC_PER_SEC)
                                break;
                        timefmt_rfc3339(t, zones[fi], true, buf, sizeof(buf));
                        r = timefmt_parse(buf, NULL, &back, NULL);
                        FUZZ_CHECK(r == 0 && back == t - t % 1000, "\"%s\" -> %llu -> \"%s\" -> %d/%llu", s,
                                   (unsigned long long) t, buf, r, (unsigned long long) back);
                }
        }
        free(s);
        return 0;
}
