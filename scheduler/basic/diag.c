/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "basic/diag.h"

int diag_add(diag_list *l, const char *file, unsigned line, unsigned column, const char *job, const char *fmt, ...) {
        va_list ap;
        char *msg = NULL;
        diag *n;

        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        n = realloc(l->items, (l->n + 1) * sizeof(diag));
        if (!n) {
                free(msg);
                return -ENOMEM;
        }
        l->items = n;
        n[l->n] = (diag) {
                .file = file ? strdup(file) : NULL,
                .line = line,
                .column = column,
                .job = job ? strdup(job) : NULL,
                .message = msg,
        };
        l->n++;
        return 0;
}

char *diag_format(const diag *d) {
        char *s = NULL, where[64] = "";

        if (d->line > 0 && d->column > 0)
                snprintf(where, sizeof(where), ":%u:%u", d->line, d->column);
        else if (d->line > 0)
                snprintf(where, sizeof(where), ":%u", d->line);

        if (asprintf(&s, "%s%s%s%s%s%s%s", d->file ?: "", where, d->file || d->line ? ": " : "",
                     d->job ? "job " : "", d->job ?: "", d->job ? ": " : "", d->message) < 0)
                return NULL;
        return s;
}

void diag_list_clear(diag_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].file);
                free(l->items[i].job);
                free(l->items[i].message);
        }
        free(l->items);
        l->items = NULL;
        l->n = 0;
}
