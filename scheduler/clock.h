/* SPDX-License-Identifier: MIT */
#pragma once

/* The one module that reads the system clocks. Everything else asks here, so tests can
 * reason about time and jobs can be given a logical clock instead. */

#include "macro.h"

/* Wall clock, microseconds since the epoch (CLOCK_REALTIME). */
usec_t clock_now_realtime(void);

/* CLOCK_MONOTONIC, microseconds. */
usec_t clock_now_monotonic(void);

/* CLOCK_BOOTTIME (monotonic, counts suspend), microseconds: what @every intervals follow. */
usec_t clock_now_boottime(void);
