/* SPDX-License-Identifier: MIT */
/* Fuzzes the parsers of Megazord's responses (SPEC 8.3): subscribe's and post-alarm's {"id"} and
 * replay's array of incomings. */
#include <errno.h>
#include <string.h>
#include "azi3/message.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *body = (const char *) data;
        azi3_incoming *v = NULL;
        parse_error e = {};
        size_t n = 0;
        int64_t id;
        int r;

        r = azi3_parse_subscription(body, size, &id, &e);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "azi3_parse_subscription returned %d", r);
        r = azi3_parse_created_incoming(body, size, &id, &e);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "azi3_parse_created_incoming returned %d", r);
        r = azi3_parse_incomings(body, size, &v, &n, &e);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "azi3_parse_incomings returned %d", r);
        if (r == 0) {
                FUZZ_CHECK((n == 0) == (v == NULL), "%zu incomings at %p", n, (void *) v);
                for (size_t i = 0; i < n; i++)
                        FUZZ_CHECK(v[i].event_name && v[i].event_name[0], "incoming %zu without an event name", i);
        }
        azi3_incomings_free(v, n);
        return 0;
}
