/* SPDX-License-Identifier: MIT */
/* Test plugin: a descriptor without the mandatory run callback. */
#include <schedulerd/job.h>

SCHEDULERD_JOB_DEFINE(
        .name = "norun",
        .description = "forgot .run",
);
