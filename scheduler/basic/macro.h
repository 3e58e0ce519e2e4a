/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers shared by every module: scope cleanup, ownership transfer and
 * the time type. Written for this project in the style of systemd's macros. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Microseconds. Wall-clock instants are microseconds since the Unix epoch (UTC);
 * this is the one time unit stored anywhere (history, stores, protocol). */
typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY (24ULL * USEC_PER_HOUR)

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)
#define XSTRINGIFY(x) #x
#define STRINGIFY(x) XSTRINGIFY(x) /* the expansion of macro X as a string literal */

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Frees P and returns NULL, for "p = mfree(p)": a freed pointer never stays behind. */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hands ownership of a pointer out of a scope whose cleanup would free it. */
#define TAKE_PTR(p)                                \
        ({                                         \
                __typeof__(p) _tp_ = (p);          \
                (p) = NULL;                        \
                _tp_;                              \
        })

#define TAKE_FD(fd)                                \
        ({                                         \
                int _tf_ = (fd);                   \
                (fd) = -EBADF;                     \
                _tf_;                              \
        })

/* Declares `static inline void namep(type **p)` that calls `func(*p)` when non-NULL,
 * for use with _cleanup_(namep). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)            \
        static inline void func##p(type *p) {             \
                if (*p)                                    \
                        func(*p);                          \
        }

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

/* Returns a negative errno from the current errno, never 0 (so an unset errno still
 * reads as failure). */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
