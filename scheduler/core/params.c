/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <limits.h>
#include <strings.h>

#include "basic/duration.h"
#include "core/params.h"

static void param_done(param *x) {
        if (!x->borrowed) {
                free(x->key);
                free(x->value);
        }
        if (x->items)
                for (size_t i = 0; i < x->n_items; i++)
                        free(x->items[i]);
        free(x->items);
}

/* Appends default Q of a plugin's table, pointing at the table's strings rather than copying
 * them: every job of a plugin gets its defaults, 100,000 copies of the same few strings
 * otherwise. The table outlives the params (the job holds the plugin). A list default is
 * split into owned ITEMS (N entries), taken over on success. */
static int params_append_default(params *p, const sched_job_param *q, char **items, size_t n) {
        param *x = realloc(p->items, (p->n + 1) * sizeof(param));
        if (!x)
                return -ENOMEM;
        p->items = x;
        p->items[p->n++] = (param) {
                .key = (char *) q->key,
                .is_list = items != NULL,
                .value = items ? NULL : (char *) q->default_value,
                .items = items,
                .n_items = n,
                .borrowed = true,
        };
        return 0;
}

static param *params_append(params *p, const char *key) {
        param *n;

        if (params_find(p, key))
                return NULL;
        n = realloc(p->items, (p->n + 1) * sizeof(param));
        if (!n)
                return NULL;
        p->items = n;
        n = &p->items[p->n];
        *n = (param) { .key = strdup(key) };
        if (!n->key)
                return NULL;
        p->n++;
        return n;
}

int params_add_scalar(params *p, const char *key, const char *value, unsigned line, unsigned column) {
        if (params_find(p, key))
                return -EEXIST;
        _cleanup_free_ char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        param *x = params_append(p, key);
        if (!x)
                return -ENOMEM;
        x->value = TAKE_PTR(v);
        x->line = line;
        x->column = column;
        return 0;
}

int params_add_list(params *p, const char *key, char **items, size_t n, unsigned line, unsigned column) {
        if (params_find(p, key))
                return -EEXIST;
        param *x = params_append(p, key);
        if (!x)
                return -ENOMEM;
        x->is_list = true;
        x->items = items;
        x->n_items = n;
        x->line = line;
        x->column = column;
        return 0;
}

static char **strv_copy(char *const *items, size_t n) {
        char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(items[i]);
                if (!c[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(c[j]);
                        free(c);
                        return NULL;
                }
        }
        return c;
}

int params_copy(const params *src, params *ret) {
        params c = {};
        int r = 0;

        for (size_t i = 0; i < src->n && r >= 0; i++) {
                const param *x = &src->items[i];
                if (x->is_list) {
                        char **items = strv_copy(x->items, x->n_items);
                        if (!items) {
                                r = -ENOMEM;
                                break;
                        }
                        r = params_add_list(&c, x->key, items, x->n_items, x->line, x->column);
                        if (r < 0) {
                                for (size_t j = 0; j < x->n_items; j++)
                                        free(items[j]);
                                free(items);
                        }
                } else
                        r = params_add_scalar(&c, x->key, x->value, x->line, x->column);
        }
        if (r < 0) {
                params_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

const param *params_find(const params *p, const char *key) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->items[i].key, key))
                        return &p->items[i];
        return NULL;
}

int params_get_string(const params *p, const char *key, const char **ret) {
        const param *x = params_find(p, key);
        if (!x)
                return -ENOENT;
        if (x->is_list)
                return -EINVAL;
        *ret = x->value;
        return 0;
}

static int parse_int(const char *s, int64_t *ret) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int params_get_int(const params *p, const char *key, int64_t *ret) {
        const char *s;
        int r = params_get_string(p, key, &s);
        if (r < 0)
                return r;
        return parse_int(s, ret);
}

int params_get_bool(const params *p, const char *key, bool *ret) {
        const char *s;
        int r = params_get_string(p, key, &s);
        if (r < 0)
                return r;
        return parse_bool(s, ret);
}

int params_get_duration(const params *p, const char *key, usec_t *ret) {
        const char *s;
        int r = params_get_string(p, key, &s);
        if (r < 0)
                return r;
        return duration_parse(s, ret, NULL);
}

int params_get_list(const params *p, const char *key, const char *const **ret_items, size_t *ret_n) {
        const param *x = params_find(p, key);
        if (!x)
                return -ENOENT;
        if (!x->is_list)
                return -EINVAL;
        *ret_items = (const char *const *) x->items;
        *ret_n = x->n_items;
        return 0;
}

static const char *param_type_name(sched_param_type t) {
        switch (t) {
        case SCHED_PARAM_STRING:
                return "a string";
        case SCHED_PARAM_INT:
                return "an integer";
        case SCHED_PARAM_BOOL:
                return "a boolean (true/false)";
        case SCHED_PARAM_DURATION:
                return "a duration like 30s or 1h30m";
        case SCHED_PARAM_LIST:
                return "a list";
        }
        return "a value of an unknown type";
}

/* Whether scalar S is a valid value of type T. */
static bool scalar_has_type(const char *s, sched_param_type t) {
        int64_t i;
        bool b;
        usec_t u;

        switch (t) {
        case SCHED_PARAM_STRING:
                return true;
        case SCHED_PARAM_INT:
                return parse_int(s, &i) >= 0;
        case SCHED_PARAM_BOOL:
                return parse_bool(s, &b) >= 0;
        case SCHED_PARAM_DURATION:
                return duration_parse(s, &u, NULL) >= 0;
        case SCHED_PARAM_LIST:
                return false;
        }
        return false;
}

int params_apply_table(params *p, const sched_job_param *table, const char *file, unsigned line,
                       unsigned column, const char *job, diag_list *diags, params *defaults) {
        bool bad = false, none = p->n == 0;
        int r;

        if (!table)
                return 0;
        if (none && defaults && defaults->n > 0) {
                *p = (params) { .items = defaults->items, .n = defaults->n, .shared = true };
                return 0;
        }

        for (size_t i = 0; i < p->n; i++) {
                const param *x = &p->items[i];
                const sched_job_param *t = NULL;

                for (const sched_job_param *q = table; q->key; q++)
                        if (streq(q->key, x->key)) {
                                t = q;
                                break;
                        }
                if (!t) {
                        _cleanup_free_ char *allowed = NULL;
                        size_t len = 0;
                        FILE *f = open_memstream(&allowed, &len);
                        if (!f)
                                return -ENOMEM;
                        for (const sched_job_param *q = table; q->key; q++)
                                fprintf(f, "%s%s", q == table ? "" : ", ", q->key);
                        fclose(f);
                        r = diag_add(diags, file, x->line, x->column, job,
                                     "params: unknown key \"%s\"; the plugin takes: %s", x->key,
                                     isempty(allowed) ? "no params" : allowed);
                        if (r < 0)
                                return r;
                        bad = true;
                        continue;
                }
                bool ok = t->type == SCHED_PARAM_LIST ? x->is_list : !x->is_list && scalar_has_type(x->value, t->type);
                if (!ok) {
                        r = diag_add(diags, file, x->line, x->column, job, "params: %s: found %s%s%s, expected %s",
                                     x->key, x->is_list ? "a list" : "\"", x->is_list ? "" : x->value,
                                     x->is_list ? "" : "\"", param_type_name(t->type));
                        if (r < 0)
                                return r;
                        bad = true;
                }
        }

        for (const sched_job_param *q = table; q->key; q++) {
                if (params_find(p, q->key))
                        continue;
                if (!q->default_value) {
                        r = diag_add(diags, file, line, column, job, "params: required key \"%s\" is missing (%s)",
                                     q->key, q->description ?: param_type_name(q->type));
                        if (r < 0)
                                return r;
                        bad = true;
                        continue;
                }
                if (q->type == SCHED_PARAM_LIST) {
                        /* A list default is a comma-separated string. */
                        size_t n = 0;
                        for (const char *c = q->default_value; *c; c++)
                                n += *c == ',';
                        n += *q->default_value ? 1 : 0;
                        char **items = calloc(n + 1, sizeof(char *));
                        if (!items)
                                return -ENOMEM;
                        const char *s = q->default_value;
                        for (size_t k = 0; k < n; k++) {
                                size_t l = strcspn(s, ",");
                                items[k] = strndup(s, l);
                                if (!items[k]) {
                                        for (size_t j = 0; j < k; j++)
                                                free(items[j]);
                                        free(items);
                                        return -ENOMEM;
                                }
                                s += l + (s[l] == ',');
                        }
                        r = params_append_default(p, q, items, n);
                        if (r < 0) {
                                for (size_t j = 0; j < n; j++)
                                        free(items[j]);
                                free(items);
                        }
                } else
                        r = params_append_default(p, q, NULL, 0);
                if (r < 0)
                        return r;
        }
        if (bad)
                return -EINVAL;
        /* the first job that sets none: its defaults become the plugin's, for it and the rest */
        if (none && defaults && p->n > 0 && defaults->n == 0) {
                *defaults = *p;
                p->shared = true;
        }
        return 0;
}

void params_done(params *p) {
        if (!p)
                return;
        if (p->shared) {
                *p = (params) {};
                return;
        }
        for (size_t i = 0; i < p->n; i++)
                param_done(&p->items[i]);
        free(p->items);
        p->items = NULL;
        p->n = 0;
}
