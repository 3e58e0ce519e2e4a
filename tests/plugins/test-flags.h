/* SPDX-License-Identifier: MIT */
#pragma once

/* The descriptor flags of a test plugin: built with -DTEST_WORKER_SAFE (Makefile.am builds
 * such variants, e.g. ok-worker.so, trace-worker.so), it declares itself worker-safe, so its jobs
 * run in worker processes unless they say `isolation: process`. */

#include <schedulerd/job.h>

#ifdef TEST_WORKER_SAFE
#define TEST_PLUGIN_FLAGS SCHED_JOB_FLAG_WORKER_SAFE
#else
#define TEST_PLUGIN_FLAGS 0
#endif
