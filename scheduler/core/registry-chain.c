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

typedef struct by_name {
        const char *name;
        size_t index; /* in reg->jobs */
} by_name;

static int by_name_cmp(const void *a, const void *b) {
        return strcmp(((const by_name *) a)->name, ((const by_name *) b)->name);
}

/* The job chained as item K of J's on_failure then on_success, or SIZE_MAX (unknown: reported). */
static size_t chained(const registry *reg, const by_name *names, size_t n, size_t j, size_t k, const char **ret_key,
                      const chain_ref **ret_ref) {
        const job_def *d = reg->jobs[j];
        const chain_ref *c = k < d->on_failure.n ? &d->on_failure.items[k] : &d->on_success.items[k - d->on_failure.n];
        by_name key = { .name = c->name };
        by_name *x = bsearch(&key, names, n, sizeof(by_name), by_name_cmp);
        *ret_key = k < d->on_failure.n ? "on_failure" : "on_success";
        *ret_ref = c;
        return x ? x->index : SIZE_MAX;
}

/* A cycle of chains would start runs forever once its jobs keep failing (or succeeding): each is
 * reported once, at the item that closes it. Depth-first, with its own stack: a chain may be as
 * long as the registry. */
static void check_cycles(loader *l, const by_name *names, size_t n) {
        registry *reg = l->reg;
        _cleanup_free_ unsigned char *color = calloc(reg->n_jobs, 1); /* 0 new, 1 on the path, 2 done */
        _cleanup_free_ size_t *stack = calloc(reg->n_jobs, sizeof(size_t)), *edge = calloc(reg->n_jobs, sizeof(size_t));
        if (!color || !stack || !edge)
                return loader_oom(l);

        for (size_t root = 0; root < reg->n_jobs; root++) {
                if (color[root] != 0)
                        continue;
                size_t depth = 0;
                stack[depth] = root;
                edge[depth] = 0;
                color[root] = 1;
                while (true) {
                        size_t v = stack[depth];
                        const job_def *d = reg->jobs[v];
                        if (edge[depth] == d->on_failure.n + d->on_success.n) {
                                color[v] = 2;
                                if (depth == 0)
                                        break;
                                depth--;
                                continue;
                        }
                        const char *key;
                        const chain_ref *ref;
                        size_t w = chained(reg, names, n, v, edge[depth]++, &key, &ref);
                        if (w == SIZE_MAX || color[w] == 2)
                                continue;
                        if (color[w] == 1) {
                                loader_report(l, d->file, ref->line, ref->column, d->name,
                                              "%s: job \"%s\" leads back to \"%s\" through on_failure/on_success "
                                              "(a cycle would start runs forever); expected chains that end",
                                              key, ref->name, d->name);
                                continue;
                        }
                        color[w] = 1;
                        stack[++depth] = w;
                        edge[depth] = 0;
                }
        }
}

static void check_one(loader *l, const job_def *j, const job_chain *c, const char *what, const by_name *names,
                      size_t n) {
        for (size_t i = 0; i < c->n; i++) {
                by_name key = { .name = c->items[i].name };
                if (n > 0 && bsearch(&key, names, n, sizeof(by_name), by_name_cmp))
                        continue;
                loader_report(l, j->file, c->items[i].line, c->items[i].column, j->name,
                              "%s: no job named \"%s\" in the registry; expected the name of a job defined in it "
                              "(any file)", what, key.name);
        }
}

void check_chains(loader *l) {
        registry *reg = l->reg;
        bool any = false;

        for (size_t i = 0; i < reg->n_jobs && !any; i++)
                any = reg->jobs[i]->on_failure.n > 0 || reg->jobs[i]->on_success.n > 0;
        if (!any)
                return;

        _cleanup_free_ by_name *names = calloc(reg->n_jobs, sizeof(by_name));
        size_t n = 0;
        if (!names)
                return loader_oom(l);
        for (size_t i = 0; i < reg->n_jobs; i++)
                if (reg->jobs[i]->name)
                        names[n++] = (by_name) { .name = reg->jobs[i]->name, .index = i };
        qsort(names, n, sizeof(by_name), by_name_cmp);
        for (size_t i = 0; i < reg->n_jobs; i++) {
                const job_def *j = reg->jobs[i];
                check_one(l, j, &j->on_failure, "on_failure", names, n);
                check_one(l, j, &j->on_success, "on_success", names, n);
        }
        check_cycles(l, names, n);
}
