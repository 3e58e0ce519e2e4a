/* SPDX-License-Identifier: MIT */
/* The smallest useful job: greets somebody and says which instant the run stands for.
 * A template for writing a job plugin; see <schedulerd/job.h> for the whole contract. */

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <schedulerd/job.h>

static const sched_job_param hello_params[] = {
        { "who", SCHED_PARAM_STRING, "world", "whom to greet" },
        { "fail", SCHED_PARAM_BOOL, "false", "return a permanent failure instead (for trying out history)" },
        {}
};

static int hello_init(sched_job_ctx *ctx, void **ret_userdata) {
        const char *who;

        /* params were type-checked by the host against hello_params; only rules a table can't
         * express need checking here */
        if (sched_job_param_string(ctx, "who", &who) >= 0 && who[0] == '\0') {
                sched_job_set_message(ctx, "params.who must not be empty");
                return -22; /* -EINVAL */
        }
        *ret_userdata = NULL;
        return 0;
}

static sched_job_result hello_run(sched_job_ctx *ctx) {
        const char *who = "world";
        bool fail = false;
        sched_usec_t at = sched_job_scheduled(ctx);
        time_t secs = (time_t) (at / 1000000);
        struct tm tm;
        char when[32];

        (void) sched_job_param_string(ctx, "who", &who);
        (void) sched_job_param_bool(ctx, "fail", &fail);

        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

        /* stdout is captured into the log and the run's output tail */
        printf("hello, %s (run %" PRIu64 " for %s, attempt %u)\n", who, sched_job_run_id(ctx), when,
               sched_job_attempt(ctx));
        if (fail) {
                sched_job_set_message(ctx, "asked to fail by params.fail");
                return SCHED_JOB_FAIL;
        }
        sched_job_set_message(ctx, "greeted %s for %s", who, when);
        return SCHED_JOB_OK;
}

SCHEDULERD_JOB_DEFINE(
        .name = "hello",
        .description = "Greets somebody; an example job",
        .params = hello_params,
        .init = hello_init,
        .run = hello_run,
);
