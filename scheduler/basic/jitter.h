/* SPDX-License-Identifier: MIT */
#pragma once

/* The delay of a fire under `random_delay:`: pseudo-random, but a pure function of the job's
 * name and the fire's instant, so every node of a cluster (and a daemon after a restart)
 * delays the same fire by the same amount. */

#include "basic/macro.h"

/* A delay in [0, MAX) for JOB's fire at INSTANT (microseconds since the epoch); 0 when MAX is
 * 0. Spread evenly over the range, and unrelated between neighbouring instants and jobs. */
usec_t jitter_delay(const char *job, usec_t instant, usec_t max);
