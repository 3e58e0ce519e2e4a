/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "basic/parse-error.h"

int parse_error_set(parse_error *e, size_t offset, const char *fmt, ...) {
        if (e) {
                va_list ap;
                e->offset = offset;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}
