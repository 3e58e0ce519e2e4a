/* SPDX-License-Identifier: MIT */
#include "basic/macro.h"
#include "core/job-env.h"

bool env_name_is_valid(const char *key) {
        if (!key || !((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_'))
                return false;
        for (const char *p = key + 1; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

int env_file_parse_line(const char *line, char **ret_assignment, unsigned *ret_column, const char **ret_why) {
        const char *p = line, *eq, *v, *end;

        while (is_blank(*p))
                p++;
        if (!*p || *p == '#')
                return 0;
        if (strncmp(p, "export", 6) == 0 && is_blank(p[6]))
                for (p += 6; is_blank(*p);)
                        p++;
        eq = strchr(p, '=');
        if (!eq) {
                *ret_column = (unsigned) (p - line) + 1;
                *ret_why = "found no '='; expected KEY=VALUE";
                return -EINVAL;
        }
        const char *kend = eq;
        while (kend > p && is_blank(kend[-1]))
                kend--;
        _cleanup_free_ char *key = strndup(p, (size_t) (kend - p));
        if (!key)
                return -ENOMEM;
        if (!env_name_is_valid(key)) {
                *ret_column = (unsigned) (p - line) + 1;
                *ret_why = "the name is not a variable name; expected [A-Za-z_][A-Za-z0-9_]* before '='";
                return -EINVAL;
        }
        for (v = eq + 1; is_blank(*v);)
                v++;
        end = v + strlen(v);
        while (end > v && (is_blank(end[-1]) || end[-1] == '\n'))
                end--;
        if (end - v >= 2 && (v[0] == '"' || v[0] == '\'') && end[-1] == v[0]) {
                v++;
                end--;
        } else if (end > v && (v[0] == '"' || v[0] == '\'')) {
                *ret_column = (unsigned) (v - line) + 1;
                *ret_why = "the quote is not closed; expected the value to end with the same quote";
                return -EINVAL;
        }
        if (asprintf(ret_assignment, "%s=%.*s", key, (int) (end - v), v) < 0)
                return -ENOMEM;
        return 1;
}

int env_list_put(char ***vars, size_t *n, char *assignment) {
        size_t klen = strcspn(assignment, "=");
        for (size_t i = 0; i < *n; i++)
                if (strncmp((*vars)[i], assignment, klen + 1) == 0) {
                        free((*vars)[i]);
                        (*vars)[i] = assignment;
                        return 0;
                }
        char **t = realloc(*vars, (*n + 2) * sizeof(char *));
        if (!t) {
                free(assignment);
                return -ENOMEM;
        }
        *vars = t;
        t[(*n)++] = assignment;
        t[*n] = NULL;
        return 0;
}
