/* SPDX-License-Identifier: MIT */
/* The SigV4 signature of the SQS client's requests, verified by an independent implementation
 * (python3-botocore, in tests/fakes/sigv4-verifier.py), and per-entry batch failures as real
 * SQS reports them. Exits 77 (skipped) only when python3 or botocore is not installed. */
#include <check.h>
#include <jansson.h>

#include "peer.h"
#include "azi3/sqs.h"

static peer verifier;
static const char *endpoint;

#define KEY "AKIDEXAMPLE1234567"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "FQoGZXIvYXdzEJr//////////wEaDH5kZXNzaW9uLXRva2Vu"

static sqs_client *client(const char *secret, const char *token) {
        sqs_credentials creds = { .access_key_id = KEY, .secret_access_key = secret, .session_token = token };
        sqs_client *c = NULL;
        azi3_call err;
        ck_assert_int_eq(sqs_client_new(endpoint, "eu-west-1", "https://sqs.eu-west-1.amazonaws.com/123456789012/status-queue",
                                        5 * USEC_PER_SEC, &creds, &err, &c), 0);
        return c;
}

START_TEST(test_signature_verified_by_botocore) {
        _cleanup_(sqs_client_freep) sqs_client *c = client(SECRET, TOKEN);
        azi3_call call;

        ck_assert_msg(sqs_change_visibility(c, "handle-1", 30, &call) == 0, "botocore says: %s", call.message);
        /* A bigger body: curl must not add (and sign) Expect: 100-continue. */
        char big[4096];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ck_assert_msg(sqs_change_visibility(c, big, 30, &call) == 0, "botocore says: %s", call.message);
}
END_TEST

START_TEST(test_wrong_secret_is_rejected) {
        /* The check can fail: a different secret gives a signature botocore does not accept. */
        _cleanup_(sqs_client_freep) sqs_client *c = client("not-the-secret", TOKEN);
        azi3_call call;

        ck_assert_int_eq(sqs_change_visibility(c, "handle-1", 30, &call), AZI3_PERMANENT);
        ck_assert_int_eq(call.status, 403);
        ck_assert_msg(strstr(call.message, "SignatureDoesNotMatch"), "%s", call.message);
}
END_TEST

START_TEST(test_missing_token_is_rejected) {
        _cleanup_(sqs_client_freep) sqs_client *c = client(SECRET, NULL);
        azi3_call call;

        ck_assert_int_eq(sqs_change_visibility(c, "handle-1", 30, &call), AZI3_PERMANENT);
        ck_assert_ptr_nonnull(strstr(call.message, "X-Amz-Security-Token"));
}
END_TEST

START_TEST(test_batch_entry_failures_reported) {
        _cleanup_(sqs_client_freep) sqs_client *c = client(SECRET, TOKEN);
        _cleanup_free_ sqs_batch_failure *failed = NULL;
        const char *handles[12];
        char names[12][16];
        size_t n_failed = 0;
        azi3_call call;

        /* 12 entries: two requests; failures at 3 (first batch) and 11 (second batch). */
        for (size_t i = 0; i < 12; i++) {
                snprintf(names[i], sizeof(names[i]), "%s-%zu", i == 3 || i == 11 ? "bad" : "good", i);
                handles[i] = names[i];
        }
        ck_assert_msg(sqs_delete_batch(c, handles, 12, &call, &failed, &n_failed) == 0, "%s", call.message);
        ck_assert_uint_eq(n_failed, 2);
        ck_assert_uint_eq(failed[0].index, 3);
        ck_assert_uint_eq(failed[1].index, 11);
        ck_assert(failed[0].sender_fault);
        ck_assert_str_eq(failed[0].code, "ReceiptHandleIsInvalid");
        ck_assert_ptr_nonnull(strstr(failed[1].message, "bad-11"));
}
END_TEST

int main(void) {
        char script[512];
        int failed, r;

        char *probe[] = { "python3", "-c", "import botocore.auth", NULL };
        if (!peer_command_works(probe)) {
                fprintf(stderr, "python3 or python3-botocore is not installed: skipping the SigV4 test\n");
                return 77;
        }
        snprintf(script, sizeof(script), "%s/sigv4-verifier.py", peer_fakes_dir());
        char *argv[] = { "python3", script, "--access-key", KEY, "--secret-key", SECRET, "--session-token", TOKEN,
                         "--region", "eu-west-1", NULL };
        r = peer_start(argv, &verifier);
        if (r < 0) {
                fprintf(stderr, "cannot start %s: %s\n", script, strerror(-r));
                return 1;
        }
        endpoint = json_string_value(json_object_get(verifier.ready, "endpoint"));

        Suite *s = suite_create("sqs_sigv4");
        TCase *tc = tcase_create("botocore");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_signature_verified_by_botocore);
        tcase_add_test(tc, test_wrong_secret_is_rejected);
        tcase_add_test(tc, test_missing_token_is_rejected);
        tcase_add_test(tc, test_batch_entry_failures_reported);
        suite_add_tcase(s, tc);

        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        peer_stop(&verifier);
        return failed == 0 ? 0 : 1;
}
