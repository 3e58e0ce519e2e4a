/* SPDX-License-Identifier: MIT */
#pragma once

/* The one module that reads the system clocks. Everything else asks here, so tests can
 * reason about time and jobs can be given a logical clock instead. */

#include "basic/macro.h"

/* Wall clock, microseconds since the epoch (CLOCK_REALTIME). */
usec_t clock_now_realtime(void);

/* Test hook: when $SCHEDULERD_TEST_CLOCK_OFFSET_FILE names a file, its content (whole seconds,
 * may be negative) is added to the wall clock, so tests can set the clock forwards and backwards
 * under a running daemon without root. Returns that path, or NULL (production). */
const char *clock_test_offset_file(void);

/* A wall-clock instant as the kernel's CLOCK_REALTIME sees it (removes the test offset), for
 * arming kernel timers. */
usec_t clock_realtime_to_kernel(usec_t t);

/* CLOCK_MONOTONIC, microseconds. */
usec_t clock_now_monotonic(void);

/* Sleeps until the wall clock (as clock_now_realtime() reads it) reaches T, or at once when T is
 * more than MAX_AHEAD away (the wall clock was set back since T was chosen: waiting for it to come
 * round again would hold what waits for T that long). Each sleep is on the monotonic clock, so a
 * clock set back during the sleep does not lengthen it either. Returns 0, or -EINTR when a signal
 * came first. */
int clock_sleep_until_realtime(usec_t t, usec_t max_ahead);

/* CLOCK_BOOTTIME (monotonic, counts suspend), microseconds: what @every intervals follow. */
usec_t clock_now_boottime(void);
