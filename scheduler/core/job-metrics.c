/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/escape.h"
#include "basic/macro.h"
#include "core/job-metrics.h"

static bool is_alpha_(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool name_valid_n(const char *s, size_t n) {
        if (n == 0 || n > JOB_METRICS_NAME_MAX || !(is_alpha_(s[0]) || s[0] == ':'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!(is_alpha_(s[i]) || is_digit(s[i]) || s[i] == ':'))
                        return false;
        return true;
}

bool job_metric_name_valid(const char *name) {
        return name && name_valid_n(name, strnlen(name, JOB_METRICS_NAME_MAX + 1));
}

bool job_metric_labels_valid(const char *s, size_t len) {
        size_t i = 0;

        if (len > JOB_METRICS_LABELS_MAX)
                return false;
        while (i < len) {
                size_t start = i;

                if (!is_alpha_(s[i]))
                        return false;
                while (i < len && (is_alpha_(s[i]) || is_digit(s[i])))
                        i++;
                if (i - start > JOB_METRICS_NAME_MAX || i + 1 >= len || s[i] != '=' || s[i + 1] != '"')
                        return false;
                i += 2;
                for (;;) {
                        /* no control bytes and only UTF-8: the value reaches terminals
                         * (schedctl metrics) and JSON, and Prometheus refuses other bytes */
                        if (i >= len || (unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                                return false;
                        if ((unsigned char) s[i] >= 0x80) {
                                size_t k = utf8_sequence((const unsigned char *) s + i, len - i);
                                /* not UTF-8, or a C1 control (U+0080-U+009F: C2 80-9F) */
                                if (k == 0 || ((unsigned char) s[i] == 0xc2 && (unsigned char) s[i + 1] < 0xa0))
                                        return false;
                                i += k;
                                continue;
                        }
                        if (s[i] == '"')
                                break;
                        if (s[i] == '\\') {
                                if (i + 1 >= len || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n'))
                                        return false;
                                i++;
                        }
                        i++;
                }
                i++; /* the closing quote */
                if (i == len)
                        return true;
                if (s[i] != ',')
                        return false;
                i++;
                if (i == len)
                        return false; /* no trailing comma */
        }
        return true;
}

int job_metric_format(const job_metric *m, char *buf, size_t size) {
        char v[40];
        int n;

        if (isnan(m->value))
                snprintf(v, sizeof(v), "NaN");
        else if (isinf(m->value))
                snprintf(v, sizeof(v), "%s", m->value > 0 ? "+Inf" : "-Inf");
        else
                snprintf(v, sizeof(v), "%.17g", m->value);
        if (m->labels[0])
                n = snprintf(buf, size, "%s{%s} %s\n", m->name, m->labels, v);
        else
                n = snprintf(buf, size, "%s %s\n", m->name, v);
        if (n < 0 || (size_t) n >= size)
                return -ENOBUFS;
        return n;
}

static int parse_value(const char *s, size_t n, double *ret) {
        char buf[64];
        char *end;
        double v;

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (streq(buf, "NaN"))
                v = NAN;
        else if (streq(buf, "+Inf"))
                v = INFINITY;
        else if (streq(buf, "-Inf"))
                v = -INFINITY;
        else {
                /* digits, sign, point and exponent only: no "inf", "nan", hex or spaces */
                for (size_t i = 0; i < n; i++)
                        if (!is_digit(buf[i]) && !strchr("+-.eE", buf[i]))
                                return -EINVAL;
                errno = 0;
                v = strtod(buf, &end);
                if (errno != 0 || *end != '\0' || end == buf)
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

_printf_(4, 5) static int parse_fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

int job_metrics_parse(const char *text, size_t size, job_metric **ret, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_free_ job_metric *v = NULL;
        size_t n = 0, pos = 0;
        unsigned line = 0;

        if (size > JOB_METRICS_FILE_MAX)
                return parse_fail(err, errlen, -EFBIG, "%zu bytes, more than the %u a metrics file may have", size,
                                  JOB_METRICS_FILE_MAX);
        while (pos < size) {
                const char *l = text + pos, *nl = memchr(l, '\n', size - pos);
                size_t len, name_len, labels_len = 0;
                const char *labels = NULL, *value;
                job_metric m = {};

                line++;
                if (!nl)
                        return parse_fail(err, errlen, -EBADMSG, "line %u: not terminated by a newline", line);
                len = (size_t) (nl - l);
                pos += len + 1;
                if (memchr(l, '\0', len))
                        return parse_fail(err, errlen, -EBADMSG, "line %u: contains a NUL byte", line);
                if (n >= JOB_METRICS_SERIES_MAX)
                        return parse_fail(err, errlen, -E2BIG, "more than %u series", JOB_METRICS_SERIES_MAX);

                for (name_len = 0; name_len < len && l[name_len] != '{' && l[name_len] != ' '; name_len++)
                        ;
                if (!name_valid_n(l, name_len))
                        return parse_fail(err, errlen, -EBADMSG,
                                          "line %u: the metric name is not [a-zA-Z_:][a-zA-Z0-9_:]* of at most %u bytes",
                                          line, JOB_METRICS_NAME_MAX);
                value = l + name_len;
                if (name_len < len && l[name_len] == '{') {
                        /* the closing brace is the last one before the value's space */
                        const char *space = memrchr(l, ' ', len);
                        if (!space || space < l + name_len + 1 || space[-1] != '}')
                                return parse_fail(err, errlen, -EBADMSG, "line %u: labels not closed by '}' before the value",
                                                  line);
                        labels = l + name_len + 1;
                        labels_len = (size_t) (space - 1 - labels);
                        if (labels_len == 0 || !job_metric_labels_valid(labels, labels_len))
                                return parse_fail(err, errlen, -EBADMSG, "line %u: malformed labels", line);
                        value = space;
                }
                if (value >= l + len || *value != ' ')
                        return parse_fail(err, errlen, -EBADMSG, "line %u: expected a space and a value", line);
                value++;
                if (parse_value(value, (size_t) (l + len - value), &m.value) < 0)
                        return parse_fail(err, errlen, -EBADMSG, "line %u: the value is not a number", line);

                memcpy(m.name, l, name_len);
                if (labels_len > 0)
                        memcpy(m.labels, labels, labels_len);
                for (size_t i = 0; i < n; i++)
                        if (streq(v[i].name, m.name) && streq(v[i].labels, m.labels))
                                return parse_fail(err, errlen, -EBADMSG, "line %u: series %s{%s} given twice", line,
                                                  m.name, m.labels);
                if (n % 16 == 0) {
                        job_metric *nv = reallocarray(v, n + 16, sizeof(*v));
                        if (!nv)
                                return -ENOMEM;
                        v = nv;
                }
                v[n++] = m;
        }
        *ret = n > 0 ? TAKE_PTR(v) : NULL;
        *ret_n = n;
        return 0;
}

int job_metrics_read(const char *path, job_metric **ret, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return parse_fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return parse_fail(err, errlen, -EBADMSG, "%s is not a regular file", path);
        }
        buf = malloc(JOB_METRICS_FILE_MAX + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (size < JOB_METRICS_FILE_MAX + 1) {
                ssize_t k = read(fd, buf + size, JOB_METRICS_FILE_MAX + 1 - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        close(fd);
                        return parse_fail(err, errlen, r, "cannot read %s: %s", path, strerror(-r));
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        close(fd);
        return job_metrics_parse(buf, size, ret, ret_n, err, errlen);
}
