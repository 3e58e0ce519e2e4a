/* SPDX-License-Identifier: MIT */
/* Fuzzes duration_parse(); what it accepts must survive duration_format() and parse back to the
 * same value. */
#include <errno.h>
#include <string.h>
#include "basic/duration.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size), buf[DURATION_MAX];
        parse_error e = {};
        usec_t u, back;
        int r;

        if (!s)
                return 0;
        r = duration_parse(s, &u, &e);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE, "duration_parse returned %d", r);
        if (r == 0) {
                duration_format(u, buf, sizeof(buf));
                r = duration_parse(buf, &back, NULL);
                FUZZ_CHECK(r == 0 && back == u, "\"%s\" -> %llu -> \"%s\" -> %d/%llu", s, (unsigned long long) u, buf,
                           r, (unsigned long long) back);
        } else {
                FUZZ_CHECK(e.offset <= strlen(s), "error offset %zu past the input (%zu bytes)", e.offset, strlen(s));
                FUZZ_CHECK(e.message[0] != '\0', "error without a message for \"%s\"", s);
        }
        free(s);
        return 0;
}
