/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "basic/civil.h"
#include "basic/escape.h"
#include "schedctl/format.h"

typedef struct cell {
        char *text;
        const char *color;
} cell;

struct table {
        const table_column *columns;
        size_t n_columns;
        cell *cells;
        size_t n_cells, cap;
};

table *table_new(const table_column *columns, size_t n) {
        table *t = calloc(1, sizeof(table));
        if (!t)
                return NULL;
        t->columns = columns;
        t->n_columns = n;
        return t;
}

table *table_free(table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add(table *t, const char *text, const char *color) {
        if (t->n_cells == t->cap) {
                size_t ncap = t->cap ? t->cap * 2 : 64;
                cell *nc = reallocarray(t->cells, ncap, sizeof(cell));
                if (!nc)
                        return -ENOMEM;
                t->cells = nc;
                t->cap = ncap;
        }
        _cleanup_free_ char *one = strdup(text ?: "-");
        if (!one)
                return -ENOMEM;
        /* a cell is one line: newlines and tabs would break the alignment */
        for (char *p = one; *p; p++)
                if (*p == '\n' || *p == '\t' || *p == '\r')
                        *p = ' ';
        char *s = escape_controls(one, strlen(one), "");
        if (!s)
                return -ENOMEM;
        t->cells[t->n_cells++] = (cell) { s, color };
        return 0;
}

size_t table_rows(const table *t) {
        return (t->n_cells + t->n_columns - 1) / t->n_columns;
}

/* Characters as a terminal shows them: UTF-8 continuation bytes take no column. */
static size_t display_width(const char *s) {
        size_t w = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xC0) != 0x80)
                        w++;
        return w;
}

static void print_cell(FILE *f, const char *text, const char *color, size_t width, bool right, bool last,
                       bool use_color) {
        size_t w = display_width(text), pad = width > w ? width - w : 0;
        if (right)
                fprintf(f, "%*s", (int) pad, "");
        if (use_color && color)
                fprintf(f, "%s%s%s", color, text, COLOR_RESET);
        else
                fputs(text, f);
        if (!right && !last)
                fprintf(f, "%*s", (int) pad, "");
}

int print_escaped(FILE *f, const char *s, const char *keep) {
        _cleanup_free_ char *e = escape_controls(s, strlen(s), keep);
        if (!e)
                return -ENOMEM;
        fputs(e, f);
        return 0;
}

int table_print(const table *t, FILE *f, bool color) {
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));
        if (!width)
                return -ENOMEM;
        for (size_t c = 0; c < t->n_columns; c++)
                width[c] = display_width(t->columns[c].header);
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns, w = display_width(t->cells[i].text);
                if (w > width[c])
                        width[c] = w;
        }
        for (size_t c = 0; c < t->n_columns; c++) {
                if (c > 0)
                        fputs("  ", f);
                print_cell(f, t->columns[c].header, COLOR_HEADER, width[c], t->columns[c].right,
                           c + 1 == t->n_columns, color);
        }
        fputc('\n', f);
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;
                if (c > 0)
                        fputs("  ", f);
                print_cell(f, t->cells[i].text, t->cells[i].color, width[c], t->columns[c].right,
                           c + 1 == t->n_columns || i + 1 == t->n_cells, color);
                if (c + 1 == t->n_columns || i + 1 == t->n_cells)
                        fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}

bool colors_enabled(FILE *f) {
        if (getenv("NO_COLOR"))
                return false;
        const char *term = getenv("TERM");
        if (term && streq(term, "dumb"))
                return false;
        return isatty(fileno(f));
}

char *format_timestamp(usec_t t, const tz *z, char *buf, size_t n) {
        static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        int64_t s = (int64_t) (t / USEC_PER_SEC);
        civil c;

        civil_from_seconds(z ? tz_utc_to_local(z, s) : s, &c);
        int wd = civil_weekday(c.year, c.month, c.day);
        snprintf(buf, n, "%s %04d-%02d-%02d %02d:%02d:%02d %s", wd >= 0 && wd < 7 ? days[wd] : "???", c.year, c.month,
                 c.day, c.hour, c.minute, c.second, z ? tz_abbrev_at(z, s) : "UTC");
        return buf;
}

char *format_relative(usec_t d, char *buf, size_t n) {
        static const struct {
                const char *unit;
                usec_t usec;
        } units[] = {
                { "y", 365 * USEC_PER_DAY }, { "month", 30 * USEC_PER_DAY }, { "w", 7 * USEC_PER_DAY },
                { "d", USEC_PER_DAY },       { "h", USEC_PER_HOUR },         { "min", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC },       { "ms", USEC_PER_MSEC },         { "us", 1 },
        };
        size_t len = 0;
        unsigned shown = 0;

        if (d == 0) {
                snprintf(buf, n, "0");
                return buf;
        }
        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(units) && shown < 2; i++) {
                /* below a second only when the whole span is */
                if (units[i].usec < USEC_PER_SEC && len > 0)
                        break;
                if (d < units[i].usec) {
                        if (shown > 0)
                                shown++; /* a zero unit after the first ends the pair: "1h" not "1h 5s" */
                        continue;
                }
                usec_t k = d / units[i].usec;
                d %= units[i].usec;
                int w = snprintf(buf + len, n - len, "%s%" PRIu64 "%s", len ? " " : "", k, units[i].unit);
                if (w < 0 || (size_t) w >= n - len)
                        break;
                len += (size_t) w;
                shown++;
        }
        return buf;
}
