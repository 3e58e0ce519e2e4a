/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "basic/log-fields.h"
#include "basic/macro.h"

static bool key_reserved(const char *k, size_t n) {
        static const char *const exact[] = { "MESSAGE", "MESSAGE_ID", "PRIORITY", "JOB", "RUN_ID", "ATTEMPT",
                                             "ERRNO", "INVOCATION_ID", "UNIT", "USER_UNIT" };
        static const char *const prefixes[] = { "SYSLOG_", "CODE_", "OBJECT_", "COREDUMP_" };
        for (size_t i = 0; i < ELEMENTSOF(exact); i++)
                if (strlen(exact[i]) == n && memcmp(exact[i], k, n) == 0)
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (n >= strlen(prefixes[i]) && memcmp(prefixes[i], k, strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

static bool key_valid(const char *k, size_t n) {
        if (n == 0 || n > LOG_FIELDS_KEY_MAX || !(k[0] >= 'A' && k[0] <= 'Z'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
                        return false;
        return !key_reserved(k, n);
}

static bool value_valid(const char *v, size_t n) {
        if (n == 0 || n > LOG_FIELDS_VALUE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) v[i] <= ' ' || v[i] == '[' || v[i] == ']' || v[i] == 0x7f)
                        return false;
        return true;
}

size_t log_fields_parse(const char *s, size_t n, char *buf, size_t size, const char **ret_fields, size_t max) {
        if (n < 3 || s[n - 1] != ']')
                return 0;
        size_t open = n - 1;
        while (open > 0 && s[open] != '[')
                open--;
        if (s[open] != '[' || (open > 0 && s[open - 1] != ' '))
                return 0;

        size_t found = 0, used = 0, i = open + 1, end = n - 1;
        while (i < end) {
                size_t tok = i;
                while (i < end && s[i] != ' ')
                        i++;
                const char *eq = memchr(s + tok, '=', i - tok);
                if (!eq || found == max)
                        return 0;
                size_t kl = (size_t) (eq - (s + tok)), vl = i - tok - kl - 1;
                if (!key_valid(s + tok, kl) || !value_valid(eq + 1, vl) || used + (i - tok) + 1 > size)
                        return 0;
                memcpy(buf + used, s + tok, i - tok);
                buf[used + (i - tok)] = 0;
                ret_fields[found++] = buf + used;
                used += i - tok + 1;
                if (i < end)
                        i++; /* the single space between pairs */
                if (i < end && s[i] == ' ')
                        return 0;
        }
        return found;
}
