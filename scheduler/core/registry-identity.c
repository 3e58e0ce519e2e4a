/* SPDX-License-Identifier: MIT */
/* A job's identity and what its runs get besides params: user and group (else
 * scheduler.default_user), environment, environment_file, credentials; and the check that the
 * job's user cannot write its plugin. */
#include <sys/stat.h>

#include "core/job-credentials.h"
#include "core/job-env.h"
#include "core/job-user.h"
#include "core/registry-internal.h"

#define ENV_FILE_MAX (1024 * 1024)

static void parse_environment(loader *l, source *s, job_def *j, yaml_node_t *map, const char *job) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(s, p->key), *v = node_get(s, p->value);
                char *a;

                if (!k || !v)
                        continue;
                const char *key = expect_scalar(l, s, k, job, "environment", "a variable name");
                if (!key)
                        continue;
                if (!env_name_is_valid(key)) {
                        report_at(l, s, k, job, "environment: \"%s\" is not a variable name; expected "
                                  "[A-Za-z_][A-Za-z0-9_]*", key);
                        continue;
                }
                const char *value = node_is_null(v) ? "" : expect_scalar(l, s, v, job, "environment value",
                                                                         "a string");
                if (!value)
                        continue;
                if (asprintf(&a, "%s=%s", key, value) < 0 || env_list_put(&j->environment, &j->n_environment, a) < 0)
                        return loader_oom(l);
        }
}

/* Reads the file named at N (relative to the registry's directory) into the job's environment;
 * its problems are reported at the file's own line and column. */
static void parse_environment_file(loader *l, source *s, job_def *j, yaml_node_t *n, const char *job) {
        const char *name = expect_string(l, s, n, job, "environment_file", "a file of KEY=VALUE lines");
        _cleanup_free_ char *path = NULL, *line = NULL;
        size_t cap = 0, total = 0;
        unsigned lineno = 0;
        FILE *f;

        if (!name)
                return;
        if (name[0] == '/' ? !(path = strdup(name)) : asprintf(&path, "%s/%s", l->base_dir_abs, name) < 0)
                return loader_oom(l);
        f = fopen(path, "re");
        if (!f) {
                report_at(l, s, n, job, "environment_file: cannot open %s: %s; expected a readable file of "
                          "KEY=VALUE lines", path, strerror(errno));
                return;
        }
        const char *file = loader_intern(l, path);
        if (!file) {
                fclose(f);
                return loader_oom(l);
        }
        for (ssize_t len; (len = getline(&line, &cap, f)) >= 0;) {
                char *a = NULL;
                const char *why = NULL;
                unsigned col = 0;

                lineno++;
                total += (size_t) len;
                if (total > ENV_FILE_MAX) {
                        loader_report(l, file, lineno, 1, job, "environment file is larger than %d bytes; expected a "
                                      "short list of KEY=VALUE lines", ENV_FILE_MAX);
                        break;
                }
                int q = env_file_parse_line(line, &a, &col, &why);
                if (q == -ENOMEM)
                        break;
                if (q < 0) {
                        /* where the operator must look: the environment file, not the registry */
                        loader_report(l, file, lineno, col, job, "%s", why);
                        continue;
                }
                if (q > 0 && env_list_put(&j->environment, &j->n_environment, a) < 0)
                        break;
        }
        if (ferror(f))
                report_at(l, s, n, job, "environment_file: cannot read %s: %s", path, strerror(errno));
        fclose(f);
}

static void parse_credentials(loader *l, source *s, job_def *j, yaml_node_t *seq, const char *job) {
        size_t n = (size_t) (seq->data.sequence.items.top - seq->data.sequence.items.start);
        j->credentials = calloc(n + 1, sizeof(char *));
        if (!j->credentials)
                return loader_oom(l);
        for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
                yaml_node_t *e = node_get(s, *it);
                const char *name = e ? expect_scalar(l, s, e, job, "credentials item", "a credential name") : NULL;
                if (!name)
                        continue;
                if (!job_credential_name_is_valid(name)) {
                        report_at(l, s, e, job, "credentials: \"%s\" is not a credential name; expected a file name "
                                  "of $CREDENTIALS_DIRECTORY ([A-Za-z0-9_.@-], as in LoadCredential=NAME:...)", name);
                        continue;
                }
                if (!(j->credentials[j->n_credentials++] = strdup(name)))
                        return loader_oom(l);
        }
}

void parse_job_identity(loader *l, source *s, job_def *j, const job_identity_nodes *n, const char *job) {
        const char *user = NULL, *group = NULL;
        yaml_node_t *at = n->user;

        if (n->user)
                user = expect_string(l, s, n->user, job, "user", "a user name or uid");
        else if (l->reg->default_user) {
                user = l->reg->default_user;
                at = n->job;
        }
        if (n->group) {
                group = expect_string(l, s, n->group, job, "group", "a group name or gid");
                if (group && !user)
                        report_at(l, s, n->group, job, "group \"%s\" without a user; expected user: (or "
                                  "scheduler.default_user) with it: a job runs as root unless given a user", group);
        }
        if (user && (!n->group || group)) {
                _cleanup_free_ char *error = NULL;
                int q = job_identity_resolve(user, group, &j->identity, &error);
                if (q == -ENOMEM)
                        return loader_oom(l);
                /* where the operator must look: the group's key for a group problem; a
                 * default_user that does not exist is reported once, at its own key */
                bool group_error = n->group && error && strstr(error, "group \"");
                if (q < 0 && group_error)
                        report_at(l, s, n->group, job, "group: %s", error);
                else if (q < 0 && at != n->job)
                        report_at(l, s, at, job, "user: %s", error ?: strerror(-q));
        }
        if (n->environment_file && !node_is_null(n->environment_file))
                parse_environment_file(l, s, j, n->environment_file, job);
        if (n->environment && !node_is_null(n->environment) &&
            expect_container(l, s, n->environment, YAML_MAPPING_NODE, job, "environment",
                             "a mapping of variable names to values"))
                parse_environment(l, s, j, n->environment, job);
        if (n->credentials && !node_is_null(n->credentials) &&
            expect_container(l, s, n->credentials, YAML_SEQUENCE_NODE, job, "credentials",
                             "a list of credential names (files of $CREDENTIALS_DIRECTORY)"))
                parse_credentials(l, s, j, n->credentials, job);
}

void check_job_plugin_owner(loader *l, source *s, job_def *j, yaml_node_t *plugin_node, const char *job) {
        _cleanup_free_ char *error = NULL;

        struct stat st;

        /* a plugin that cannot be found is reported by check_plugin() already */
        if (!j->identity.user || !j->plugin_path || (l->flags & REGISTRY_IGNORE_PLUGINS) || stat(j->plugin_path, &st) < 0)
                return;
        int q = job_identity_check_plugin(&j->identity, j->plugin_path, &error);
        if (q == -ENOMEM)
                return loader_oom(l);
        if (q < 0)
                report_at(l, s, plugin_node, job, "plugin \"%s\": %s", j->plugin_name, error ?: strerror(-q));
}

void job_def_free_identity(job_def *j) {
        job_identity_done(&j->identity);
        for (size_t i = 0; i < j->n_environment; i++)
                free(j->environment[i]);
        free(j->environment);
        for (size_t i = 0; i < j->n_credentials; i++)
                free(j->credentials[i]);
        free(j->credentials);
}
