/* SPDX-License-Identifier: MIT */
/* Parsing of the SQS body (SPEC 8.4) and Megazord responses, timestamps and UUIDs. */
#include <check.h>

#include "azi3/message.h"
#include "azi3/uuid.h"

#define T_EVENT (UINT64_C(1774770072) * USEC_PER_SEC) /* 2026-03-29T07:41:12Z */

static const char good_body[] =
        "{\"from\":{\"serviceName\":\"megazord-events\"},\"to\":{\"robotId\":42},"
        "\"link\":\"/internal/v1/events/robots/42/outgoings/555\","
        "\"event\":{\"id\":555,\"robotId\":42,\"subscriptionId\":123,\"sourceEventId\":9001,"
        "\"eventName\":\"TOILET_ACTIVITY\",\"providerName\":\"sensara-adaptor\","
        "\"createdAt\":\"2026-03-29T07:41:12.123Z\"}}";

START_TEST(test_sqs_body_ok) {
        azi3_sqs_event e;
        parse_error err;

        ck_assert_int_eq(azi3_parse_sqs_body(good_body, strlen(good_body), &e, &err), 0);
        ck_assert_int_eq(e.event_id, 555);
        ck_assert_int_eq(e.subscription_id, 123);
        ck_assert_int_eq(e.robot_id, 42);
        ck_assert_int_eq(e.source_event_id, 9001);
        ck_assert_str_eq(e.event_name, "TOILET_ACTIVITY");
        ck_assert_str_eq(e.provider_name, "sensara-adaptor");
        ck_assert_uint_eq(e.created_at, T_EVENT + 123000);
        azi3_sqs_event_done(&e);
        ck_assert_ptr_null(e.event_name);
        azi3_sqs_event_done(NULL);
}
END_TEST

static const struct {
        const char *body;
        const char *expect; /* a piece of the error message */
} bad_bodies[] = {
        { "", "not valid JSON" },
        { "{\"event\":", "not valid JSON" },
        { "[1,2]", "not a JSON object" },
        { "{}", "\"event\" is missing" },
        { "{\"event\":3}", "\"event\" is not an object" },
        { "{\"event\":{\"id\":1,\"robotId\":42,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "missing \"subscriptionId\"" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":\"123\",\"robotId\":42,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "\"subscriptionId\" is not a positive integer" },
        /* Megazord's ids are positive, as the store keeps them: a 0 failed its whole batch */
        { "{\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":4,\"sourceEventId\":0,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "\"sourceEventId\" is not a positive integer" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":0,\"robotId\":4,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "\"subscriptionId\" is not a positive integer" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":-4,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "\"robotId\" is not a non-negative integer" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":4,\"sourceEventId\":9,\"eventName\":\"\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "\"eventName\" is not a non-empty string" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":4,\"sourceEventId\":9,\"eventName\":\"X\"}}",
          "\"createdAt\" is missing" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":4,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":\"yesterday\"}}",
          "\"createdAt\": 'yesterday' is not an RFC 3339 timestamp" },
        { "{\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":4,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":1774770072}}",
          "\"createdAt\" is not a string" },
        { "{\"to\":{\"robotId\":5},\"event\":{\"id\":1,\"subscriptionId\":1,\"robotId\":4,\"sourceEventId\":9,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"}}",
          "to.robotId 5 differs from event.robotId 4" },
        { "{\"event\":{\"id\":1,\"id\":2}}", "not valid JSON" }, /* duplicate keys */
};

START_TEST(test_sqs_body_bad) {
        azi3_sqs_event e = { .robot_id = 77 };
        parse_error err = {};

        ck_assert_int_eq(azi3_parse_sqs_body(bad_bodies[_i].body, strlen(bad_bodies[_i].body), &e, &err), -EINVAL);
        ck_assert_msg(strstr(err.message, bad_bodies[_i].expect), "body %s: message '%s' lacks '%s'",
                      bad_bodies[_i].body, err.message, bad_bodies[_i].expect);
        ck_assert_int_eq(e.robot_id, 77); /* untouched on failure */
        ck_assert_ptr_null(e.event_name);
}
END_TEST

START_TEST(test_sqs_body_not_nul_terminated) {
        azi3_sqs_event e;
        parse_error err;
        char *copy = malloc(sizeof(good_body) - 1);

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, good_body, sizeof(good_body) - 1);
        ck_assert_int_eq(azi3_parse_sqs_body(copy, sizeof(good_body) - 1, &e, &err), 0);
        azi3_sqs_event_done(&e);
        /* Cut short: an error, never a read past LEN. */
        ck_assert_int_eq(azi3_parse_sqs_body(copy, 40, &e, &err), -EINVAL);
        free(copy);
}
END_TEST

START_TEST(test_timestamps) {
        usec_t t = 0;
        parse_error err;
        char buf[32];

        ck_assert_int_eq(azi3_parse_timestamp("2026-03-29T07:41:12.000Z", &t, &err), 0);
        ck_assert_uint_eq(t, T_EVENT);
        ck_assert_int_eq(azi3_parse_timestamp("2026-03-29T07:41:12Z", &t, &err), 0);
        ck_assert_uint_eq(t, T_EVENT);
        ck_assert_int_eq(azi3_parse_timestamp("2026-03-29T07:41:12.5Z", &t, &err), 0);
        ck_assert_uint_eq(t, T_EVENT + 500000);
        ck_assert_int_eq(azi3_parse_timestamp("2026-03-29T07:41:12.123456789Z", &t, &err), 0);
        ck_assert_uint_eq(t, T_EVENT + 123456);
        ck_assert_int_eq(azi3_parse_timestamp("2026-03-29T09:41:12.000+02:00", &t, &err), 0);
        ck_assert_uint_eq(t, T_EVENT);
        ck_assert_int_eq(azi3_parse_timestamp("2026-03-29T05:11:12-02:30", &t, &err), 0);
        ck_assert_uint_eq(t, T_EVENT);
        ck_assert_int_eq(azi3_parse_timestamp("1970-01-01T00:00:00Z", &t, &err), 0);
        ck_assert_uint_eq(t, 0);
        ck_assert_int_eq(azi3_parse_timestamp("2024-02-29T00:00:00Z", &t, &err), 0);

        static const char *const bad[] = {
                "", "2026-03-29", "2026-03-29 07:41:12Z", "2026-03-29T07:41:12", "2026-03-29T07:41:12.Z",
                "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-03-29T24:00:00Z", "2026-03-29T07:60:00Z",
                "2026-03-29T07:41:12.0000000001Z", "2026-03-29T07:41:12Zjunk", "1969-12-31T23:59:59Z",
                "2026-03-29T07:41:12+2:00", "2026-03-29T07:41:12+24:00", "+2026-03-29T07:41:12Z",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t = 42;
                ck_assert_msg(azi3_parse_timestamp(bad[i], &t, &err) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_uint_eq(t, 42);
                ck_assert(err.message[0] != '\0');
        }
        ck_assert_int_eq(azi3_parse_timestamp(NULL, &t, &err), -EINVAL);

        ck_assert_int_eq(azi3_format_timestamp(T_EVENT + 123999, buf), 0);
        ck_assert_str_eq(buf, "2026-03-29T07:41:12.123Z");
        ck_assert_int_eq(azi3_format_timestamp(0, buf), 0);
        ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
        ck_assert_int_eq(azi3_format_timestamp(USEC_INFINITY, buf), -ERANGE);
}
END_TEST

START_TEST(test_timestamp_round_trip) {
        /* Every millisecond instant formats and parses back to itself. */
        uint64_t x = 88172645463325252ULL;
        for (int i = 0; i < 10000; i++) {
                char buf[32];
                usec_t t, back;
                parse_error err;
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                t = (x % (UINT64_C(253402300799) * 1000)) * USEC_PER_MSEC;
                ck_assert_int_eq(azi3_format_timestamp(t, buf), 0);
                ck_assert_int_eq(azi3_parse_timestamp(buf, &back, &err), 0);
                ck_assert_uint_eq(back, t);
        }
}
END_TEST

START_TEST(test_megazord_responses) {
        int64_t id = -1;
        parse_error err;
        azi3_incoming *v = NULL;
        size_t n = 9;
        const char *sub = "{\"id\":123,\"robotId\":42,\"eventNames\":[\"TOILET_ACTIVITY\"],\"until\":\"2026-03-29T20:00:00.000Z\"}";

        ck_assert_int_eq(azi3_parse_subscription(sub, strlen(sub), &id, &err), 0);
        ck_assert_int_eq(id, 123);
        ck_assert_int_eq(azi3_parse_subscription("{\"robotId\":42}", 14, &id, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.message, "missing \"id\""));
        ck_assert_int_eq(azi3_parse_created_incoming("{\"id\":9100}", 11, &id, &err), 0);
        ck_assert_int_eq(id, 9100);
        ck_assert_int_eq(azi3_parse_created_incoming("", 0, &id, &err), -EINVAL);
        ck_assert_int_eq(azi3_parse_created_incoming(NULL, 0, &id, &err), -EINVAL);

        const char *list = "[{\"id\":9001,\"robotId\":42,\"eventName\":\"TOILET_ACTIVITY\",\"providerName\":\"sensara-adaptor\","
                           "\"createdAt\":\"2026-03-29T07:41:12.000Z\"},"
                           "{\"id\":9002,\"robotId\":42,\"eventName\":\"TOILET_ACTIVITY\",\"providerName\":null,"
                           "\"createdAt\":\"2026-03-29T08:00:00.001Z\"}]";
        ck_assert_int_eq(azi3_parse_incomings(list, strlen(list), &v, &n, &err), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(v[0].id, 9001);
        ck_assert_uint_eq(v[0].created_at, T_EVENT);
        ck_assert_str_eq(v[0].provider_name, "sensara-adaptor");
        ck_assert_ptr_null(v[1].provider_name);
        ck_assert_uint_eq(v[1].created_at, UINT64_C(1774771200) * USEC_PER_SEC + 1000);
        v = azi3_incomings_free(v, n);

        ck_assert_int_eq(azi3_parse_incomings("[]", 2, &v, &n, &err), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(v);

        const char *bad = "[{\"id\":1,\"robotId\":42,\"eventName\":\"X\",\"createdAt\":\"2026-03-29T07:41:12Z\"},"
                          "{\"id\":2,\"robotId\":42,\"eventName\":\"X\",\"createdAt\":\"noon\"}]";
        n = 7;
        ck_assert_int_eq(azi3_parse_incomings(bad, strlen(bad), &v, &n, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.message, "item 1"));
        ck_assert_uint_eq(n, 7);
        ck_assert_int_eq(azi3_parse_incomings("{\"id\":1}", 8, &v, &n, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.message, "not a JSON array"));
        ck_assert_int_eq(azi3_parse_incomings("[3]", 3, &v, &n, &err), -EINVAL);
}
END_TEST

START_TEST(test_uuid) {
        uint8_t zero[16] = {}, ones[16];
        char a[AZI3_UUID_STRING_MAX], b[AZI3_UUID_STRING_MAX];

        azi3_uuid_format_v4(zero, a);
        ck_assert_str_eq(a, "00000000-0000-4000-8000-000000000000");
        memset(ones, 0xff, sizeof(ones));
        azi3_uuid_format_v4(ones, a);
        ck_assert_str_eq(a, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        ck_assert(azi3_uuid_is_v4(a));

        ck_assert_int_eq(azi3_uuid_random(a), 0);
        ck_assert_int_eq(azi3_uuid_random(b), 0);
        ck_assert(azi3_uuid_is_v4(a));
        ck_assert_str_ne(a, b);

        ck_assert(!azi3_uuid_is_v4(NULL));
        ck_assert(!azi3_uuid_is_v4(""));
        ck_assert(!azi3_uuid_is_v4("00000000-0000-1000-8000-000000000000")); /* version 1 */
        ck_assert(!azi3_uuid_is_v4("00000000-0000-4000-c000-000000000000")); /* other variant */
        ck_assert(!azi3_uuid_is_v4("00000000-0000-4000-8000-0000000000000"));
        ck_assert(!azi3_uuid_is_v4("00000000_0000-4000-8000-000000000000"));
        ck_assert(!azi3_uuid_is_v4("g0000000-0000-4000-8000-000000000000"));

        /* version 7: the 48-bit millisecond time first, big-endian, so ids sort by it */
        azi3_uuid_format_v7(UINT64_C(0x0123456789ab), ones, a);
        ck_assert_str_eq(a, "01234567-89ab-7fff-bfff-ffffffffffff");
        ck_assert(azi3_uuid_is_v7(a));
        ck_assert(!azi3_uuid_is_v4(a));
        azi3_uuid_format_v7(UINT64_C(1781078400000), zero, a);
        ck_assert_str_eq(a, "019eb08b-9c00-7000-8000-000000000000");
        ck_assert_int_eq(azi3_uuid_v7(UINT64_C(1781078400000), a), 0);
        ck_assert_int_eq(azi3_uuid_v7(UINT64_C(1781078400001), b), 0);
        ck_assert(azi3_uuid_is_v7(a) && azi3_uuid_is_v7(b));
        ck_assert_int_eq(strncmp(a, "019eb08b-9c00-7", 15), 0);
        ck_assert_int_lt(strcmp(a, b), 0);
        ck_assert(!azi3_uuid_is_v7("00000000-0000-4000-8000-000000000000"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("azi3_message");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_sqs_body_ok);
        tcase_add_loop_test(tc, test_sqs_body_bad, 0, (int) ELEMENTSOF(bad_bodies));
        tcase_add_test(tc, test_sqs_body_not_nul_terminated);
        tcase_add_test(tc, test_timestamps);
        tcase_add_test(tc, test_timestamp_round_trip);
        tcase_add_test(tc, test_megazord_responses);
        tcase_add_test(tc, test_uuid);
        suite_add_tcase(s, tc);

        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
