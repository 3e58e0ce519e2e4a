/* SPDX-License-Identifier: MIT */
#pragma once

/* How many bytes of a source (a run's output pipe) may be read: at most BUDGET bytes per
 * fixed window of INTERVAL. Counted in bytes, not reads: a job writing a line at a time wakes
 * the reader once per line, so a limit on reads throttles it to a few lines per window while a
 * bulk writer passes megabytes. Pure: the caller passes the time. */

#include <stddef.h>

#include "basic/macro.h"

typedef struct byte_window {
        usec_t interval;
        size_t budget;
        size_t min_charge; /* what a read costs at least: bounds the reads per window too */
        usec_t end;  /* when the current window ends; 0 before the first read */
        size_t used; /* bytes read in it */
} byte_window;

/* BUDGET (> 0) bytes per INTERVAL (> 0), each read counted as MIN_CHARGE bytes at least, so a
 * source that wakes the reader for a few bytes at a time gets BUDGET / MIN_CHARGE reads per
 * window, no more (what it wrote meanwhile waits, and the next read takes it in one go). */
void byte_window_init(byte_window *w, usec_t interval, size_t budget, size_t min_charge);

/* How many bytes may be read at NOW (a monotonic clock, non-decreasing), at most MAX. 0 means
 * none until byte_window_resume(). */
size_t byte_window_room(byte_window *w, usec_t now, size_t max);

/* Counts a read of N bytes (as MIN_CHARGE at least). */
void byte_window_used(byte_window *w, size_t n);

/* When reading may go on once the room is 0: the end of the current window. */
usec_t byte_window_resume(const byte_window *w) _pure_;
