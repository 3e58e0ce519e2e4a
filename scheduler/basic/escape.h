/* SPDX-License-Identifier: MIT */
#pragma once

/* Text that came from a job (its output, its messages, its log lines, a description) made safe
 * to show a person: what a terminal or a log reader would take as a command becomes visible
 * text instead, so a job cannot retitle a window, clear a screen, make a hyperlink, move the
 * cursor or forge a log line. */

#include <stddef.h>

/* Length of the valid UTF-8 sequence (shortest form, no surrogates) at P, N > 0 bytes left, or 0
 * if there is none. */
size_t utf8_sequence(const unsigned char *p, size_t n);

/* Copies S (N bytes) into BUF (SIZE > 0 bytes, NUL-terminated, cut before an escape that does
 * not fit) with C0 controls other than those in KEEP (e.g. "\n\t" for multi-line output, "" for
 * one line), DEL and bytes that are not UTF-8 written as "\xNN", and C1 controls (U+0080 to
 * U+009F, which some terminals obey like ESC [) as "\u00NN". Returns the length written. */
size_t escape_controls_buf(const char *s, size_t n, const char *keep, char *buf, size_t size);

/* The same into a new string; NULL on OOM. */
char *escape_controls(const char *s, size_t n, const char *keep);
