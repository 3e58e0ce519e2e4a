/* SPDX-License-Identifier: MIT */
/* Command jobs: `command:`, `shell:` and `working_directory:` of a job are the params of the
 * shipped exec.so, written where an operator expects them. */
#include "core/registry-internal.h"

static int add_param(loader *l, source *s, job_def *j, yaml_node_t *at, const char *key, const char *value,
                     const char *job) {
        unsigned line = (unsigned) at->start_mark.line + 1, column = (unsigned) at->start_mark.column + 1;
        int r = params_add_scalar(&j->params, key, value, line, column);
        if (r == -EEXIST) {
                report_at(l, s, at, job, "%s: also given in params (line %u); expected it once", key,
                          params_find(&j->params, key)->line);
                return 0;
        }
        return r;
}

/* After a bad command was reported: an empty one, so exec.so's param table does not report it
 * missing as well. Returns 0 or -ENOMEM. */
static int reported(job_def *j) {
        char **items = calloc(1, sizeof(char *));
        if (!items)
                return -ENOMEM;
        int r = params_add_list(&j->params, "command", items, 0, 0, 0);
        if (r < 0)
                free(items);
        return r == -EEXIST ? 0 : r;
}

int parse_command(loader *l, source *s, job_def *j, yaml_node_t *command, yaml_node_t *shell, yaml_node_t *wd,
                  yaml_node_t *plugin_key, const char *job) {
        bool use_shell = false;
        int r;

        if (!command) {
                if (shell)
                        report_at(l, s, shell, job, "shell: found without command:; expected it only beside a "
                                  "command: string");
                if (wd)
                        report_at(l, s, wd, job, "working_directory: found without command:; expected it only "
                                  "beside command:");
                return 0;
        }
        if (plugin_key && plugin_key->type == YAML_SCALAR_NODE && !streq(node_scalar(plugin_key), EXEC_PLUGIN))
                report_at(l, s, command, job, "command: runs with %s, but plugin is \"%s\"; expected either "
                          "command: or plugin:", EXEC_PLUGIN, node_scalar(plugin_key));
        if (shell)
                parse_bool(l, s, shell, job, "shell", &use_shell);

        unsigned line = (unsigned) command->start_mark.line + 1, column = (unsigned) command->start_mark.column + 1;
        if (command->type == YAML_SCALAR_NODE) {
                const char *c = node_scalar(command);
                if (isempty(c)) {
                        report_at(l, s, command, job, "command: found an empty value, expected the program and its "
                                  "arguments as a list, e.g. [/usr/bin/backup, --all]");
                        return reported(j);
                }
                if (!use_shell) {
                        report_at(l, s, command, job, "command: found the string \"%s\", expected a list of the "
                                  "program and its arguments, e.g. [/usr/bin/backup, --all] (no shell is involved); "
                                  "to run the string with /bin/sh -c, add shell: true", c);
                        return reported(j);
                }
                char **items = calloc(2, sizeof(char *));
                if (!items || !(items[0] = strdup(c))) {
                        free(items);
                        return -ENOMEM;
                }
                r = params_add_list(&j->params, "command", items, 1, line, column);
                if (r < 0) {
                        free(items[0]);
                        free(items);
                }
        } else if (command->type == YAML_SEQUENCE_NODE) {
                size_t n = (size_t) (command->data.sequence.items.top - command->data.sequence.items.start), i = 0;
                if (n == 0) {
                        report_at(l, s, command, job, "command: found an empty list, expected the program and its "
                                  "arguments, e.g. [/usr/bin/backup, --all]");
                        return reported(j);
                }
                if (use_shell && n != 1) {
                        report_at(l, s, command, job, "command: found a list of %zu items with shell: true, expected "
                                  "one string for /bin/sh -c", n);
                        return reported(j);
                }
                char **items = calloc(n + 1, sizeof(char *));
                bool oom = false;
                if (!items)
                        return -ENOMEM;
                for (yaml_node_item_t *it = command->data.sequence.items.start; it < command->data.sequence.items.top;
                     it++) {
                        yaml_node_t *e = node_get(s, *it);
                        const char *a = e ? expect_scalar(l, s, e, job, "command", "a program argument") : NULL;
                        if (!a)
                                break;
                        if (!(items[i] = strdup(a))) {
                                oom = true;
                                break;
                        }
                        i++;
                }
                r = i == n ? params_add_list(&j->params, "command", items, n, line, column) : oom ? -ENOMEM : 0;
                if (i < n || r < 0) {
                        for (size_t x = 0; x < i; x++)
                                free(items[x]);
                        free(items);
                        if (i < n)
                                return r < 0 ? r : reported(j); /* an item was reported, or -ENOMEM */
                }
        } else {
                report_type(l, s, command, job, "command", "a list of the program and its arguments");
                return reported(j);
        }
        if (r == -EEXIST) {
                report_at(l, s, command, job, "command: also given in params (line %u); expected it once",
                          params_find(&j->params, "command")->line);
                r = 0;
        }
        if (r < 0)
                return r;
        if (use_shell && (r = add_param(l, s, j, shell, "shell", "true", job)) < 0)
                return r;
        if (wd) {
                const char *d = expect_string(l, s, wd, job, "working_directory", "an absolute directory path");
                if (d && d[0] != '/')
                        report_at(l, s, wd, job, "working_directory: found \"%s\", expected an absolute path", d);
                else if (d && (r = add_param(l, s, j, wd, "working_directory", d, job)) < 0)
                        return r;
        }
        return 0;
}
