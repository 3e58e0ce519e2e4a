/* SPDX-License-Identifier: MIT */
/* on_failure and on_success: the jobs a run's end starts, read as lists of names and checked,
 * once every file is read, against the jobs of the whole registry. */
#include <stdlib.h>

#include "core/registry-internal.h"

/* the most jobs one key may start: a chain is a notification or a follow-up, not a fan-out */
#define CHAIN_MAX 16

void job_chain_done(job_chain *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->items[i].name);
        free(c->items);
        *c = (job_chain) {};
}

static void chain_add(loader *l, source *s, yaml_node_t *e, const char *job, const char *what, job_chain *c) {
        const char *name = expect_string(l, s, e, job, what, "a job name");
        if (!name)
                return;
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->items[i].name, name)) {
                        report_at(l, s, e, job, "%s: job \"%s\" is named twice; expected each job once", what, name);
                        return;
                }
        if (c->n == CHAIN_MAX) {
                report_at(l, s, e, job, "%s: more than %u jobs; expected at most %u", what, CHAIN_MAX, CHAIN_MAX);
                return;
        }
        chain_ref *t = realloc(c->items, (c->n + 1) * sizeof(chain_ref));
        if (!t)
                return loader_oom(l);
        c->items = t;
        t[c->n] = (chain_ref) { .name = strdup(name), .line = (unsigned) e->start_mark.line + 1,
                                .column = (unsigned) e->start_mark.column + 1 };
        if (!t[c->n].name)
                return loader_oom(l);
        c->n++;
}

void parse_chain(loader *l, source *s, yaml_node_t *n, const char *job, const char *what, job_chain *ret) {
        if (node_is_null(n))
                return;
        if (n->type == YAML_SCALAR_NODE)
                return chain_add(l, s, n, job, what, ret);
        if (!expect_container(l, s, n, YAML_SEQUENCE_NODE, job, what, "a list of job names"))
                return;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
                yaml_node_t *e = node_get(s, *it);
                if (e)
                        chain_add(l, s, e, job, what, ret);
        }
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void check_one(loader *l, const job_def *j, const job_chain *c, const char *what, const char **names,
                      size_t n) {
        for (size_t i = 0; i < c->n; i++) {
                const char *key = c->items[i].name;
                if (n > 0 && bsearch(&key, names, n, sizeof(char *), name_cmp))
                        continue;
                loader_report(l, j->file, c->items[i].line, c->items[i].column, j->name,
                              "%s: no job named \"%s\" in the registry; expected the name of a job defined in it "
                              "(any file)", what, key);
        }
}

void check_chains(loader *l) {
        registry *reg = l->reg;
        bool any = false;

        for (size_t i = 0; i < reg->n_jobs && !any; i++)
                any = reg->jobs[i]->on_failure.n > 0 || reg->jobs[i]->on_success.n > 0;
        if (!any)
                return;

        _cleanup_free_ const char **names = calloc(reg->n_jobs, sizeof(char *));
        size_t n = 0;
        if (!names)
                return loader_oom(l);
        for (size_t i = 0; i < reg->n_jobs; i++)
                if (reg->jobs[i]->name)
                        names[n++] = reg->jobs[i]->name;
        qsort(names, n, sizeof(char *), name_cmp);
        for (size_t i = 0; i < reg->n_jobs; i++) {
                const job_def *j = reg->jobs[i];
                check_one(l, j, &j->on_failure, "on_failure", names, n);
                check_one(l, j, &j->on_success, "on_success", names, n);
        }
}
