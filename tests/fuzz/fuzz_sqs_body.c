/* SPDX-License-Identifier: MIT */
/* Fuzzes azi3_parse_sqs_body() (the SQS message of SPEC 8.4), and azi3_parse_timestamp() on the
 * same bytes: accepted timestamps must format back and parse to the same millisecond. */
#include <errno.h>
#include <string.h>
#include "azi3/message.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        azi3_sqs_event ev = {};
        parse_error e = {};
        int r;

        r = azi3_parse_sqs_body((const char *) data, size, &ev, &e);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "azi3_parse_sqs_body returned %d", r);
        if (r == 0)
                FUZZ_CHECK(ev.event_name && ev.event_name[0], "accepted an event without a name");
        else
                FUZZ_CHECK(e.message[0] != '\0', "error without a message");
        azi3_sqs_event_done(&ev);

        char *s = fuzz_strndup(data, size), buf[32];
        usec_t t, back;
        if (s && azi3_parse_timestamp(s, &t, NULL) == 0 && azi3_format_timestamp(t, buf) == 0) {
                r = azi3_parse_timestamp(buf, &back, NULL);
                FUZZ_CHECK(r == 0 && back == t - t % 1000, "\"%s\" -> %llu -> \"%s\" -> %d/%llu", s,
                           (unsigned long long) t, buf, r, (unsigned long long) back);
        }
        free(s);
        return 0;
}
