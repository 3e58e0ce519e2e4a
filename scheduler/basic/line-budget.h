/* SPDX-License-Identifier: MIT */
#pragma once

/* How many lines of a source (a run's output) may go to the log: a token bucket (BURST lines at
 * once, refilled at PER_SEC lines a second) under an absolute CAP. Pure: the caller passes the
 * time, so a flood of output costs the log a bounded number of lines and tests need no clock. */

#include <stdbool.h>
#include <stdint.h>

#include "basic/macro.h"

typedef struct line_budget {
        unsigned burst, per_sec;
        uint64_t cap;
        uint64_t tokens;   /* lines that may pass now */
        usec_t refilled;   /* when tokens were last brought up to date */
        uint64_t passed, dropped;
        bool started;
} line_budget;

/* A full bucket of BURST (> 0) lines, refilled at PER_SEC (> 0) a second, CAP lines at most. */
void line_budget_init(line_budget *b, unsigned burst, unsigned per_sec, uint64_t cap);

/* Whether one more line may be logged at NOW (any monotonic clock, non-decreasing); counts it
 * as passed or dropped. */
bool line_budget_take(line_budget *b, usec_t now);

/* Whether the cap (not only the rate) is what drops lines from now on. */
bool line_budget_capped(const line_budget *b);
