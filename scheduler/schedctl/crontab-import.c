/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse-error.h"
#include "basic/schedule.h"
#include "schedctl/crontab-import.h"

#define ENV_MAX 64
/* @reboot: a placeholder schedule that does not come round (ten years of uptime) */
#define REBOOT_SCHEDULE "@every 87600h"

typedef struct env_var {
        char *name, *value;
} env_var;

typedef struct importer {
        FILE *out;
        env_var env[ENV_MAX];
        size_t n_env;
        char *tz;
        crontab_import_stats st;
        unsigned line;
} importer;

/* A YAML double-quoted scalar. */
static void yaml_quoted(FILE *f, const char *s, size_t n) {
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c < 0x20)
                        fprintf(f, "\\x%02x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

/* S in single quotes for /bin/sh. */
static void sh_quoted(FILE *f, const char *s, size_t n) {
        fputc('\'', f);
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\'')
                        fputs("'\\''", f);
                else
                        fputc(s[i], f);
        }
        fputc('\'', f);
}

static void skip_line(importer *im, const char *line, const char *why) {
        fprintf(im->out, "  # line %u could not be carried over: %s\n  #   %s\n", im->line, why, line);
        im->st.skipped++;
}

/* "backup" from "/usr/local/bin/backup.sh --all": the program's base name, lower case,
 * [a-z0-9-] only, or "cron". */
static void job_name(const char *cmd, unsigned line, char *buf, size_t size) {
        char base[40];
        size_t n = 0;
        const char *p = cmd, *word_end;

        while (*p == ' ' || *p == '\t')
                p++;
        word_end = p + strcspn(p, " \t;|&<>()");
        const char *slash = p;
        for (const char *q = p; q < word_end; q++)
                if (*q == '/')
                        slash = q + 1;
        for (const char *q = slash; q < word_end && n < sizeof(base) - 1; q++) {
                char c = (char) tolower((unsigned char) *q);
                if (c == '.' && n > 0)
                        break; /* backup.sh -> backup */
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                        base[n++] = c;
                else if (n > 0 && base[n - 1] != '-')
                        base[n++] = '-';
        }
        while (n > 0 && base[n - 1] == '-')
                n--;
        base[n] = '\0';
        snprintf(buf, size, "%s-%u", n > 0 ? base : "cron", line);
}

/* NAME=VALUE (spaces around '=' allowed, value optionally quoted); returns whether LINE is one. */
static int parse_env(importer *im, const char *line, bool *ret_is_env) {
        const char *p = line;
        *ret_is_env = false;
        if (!isalpha((unsigned char) *p) && *p != '_')
                return 0;
        while (isalnum((unsigned char) *p) || *p == '_')
                p++;
        const char *name_end = p;
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p != '=')
                return 0;
        *ret_is_env = true;
        p++;
        while (*p == ' ' || *p == '\t')
                p++;
        size_t vn = strlen(p);
        while (vn > 0 && (p[vn - 1] == ' ' || p[vn - 1] == '\t'))
                vn--;
        if (vn >= 2 && (p[0] == '"' || p[0] == '\'') && p[vn - 1] == p[0]) {
                p++;
                vn -= 2;
        }
        _cleanup_free_ char *name = strndup(line, (size_t) (name_end - line));
        _cleanup_free_ char *value = strndup(p, vn);
        if (!name || !value)
                return -ENOMEM;

        if (streq(name, "MAILTO") || streq(name, "MAILFROM")) {
                fprintf(im->out, "  # line %u: %s=%s is not supported: schedulerd mails nothing; output is logged and "
                        "kept in history (schedctl history --output); to be told of failures, chain a job to "
                        "on_failure (webhook.so posts to a URL)\n", im->line, name, value);
                im->st.notes++;
                return 0;
        }
        if (streq(name, "SHELL")) {
                fprintf(im->out, "  # line %u: SHELL=%s is not carried over: commands run with /bin/sh -c; to use "
                        "another shell, write command: [%s, -c, \"...\"] without shell: true\n", im->line, value, value);
                im->st.notes++;
                return 0;
        }
        if (streq(name, "CRON_TZ") || streq(name, "TZ")) {
                free(im->tz);
                im->tz = TAKE_PTR(value);
                fprintf(im->out, "  # line %u: %s=%s: the jobs below get timezone: %s\n", im->line, name, im->tz, im->tz);
                return 0;
        }
        for (size_t i = 0; i < im->n_env; i++)
                if (streq(im->env[i].name, name)) {
                        free(im->env[i].value);
                        im->env[i].value = TAKE_PTR(value);
                        return 0;
                }
        if (im->n_env == ENV_MAX) {
                skip_line(im, line, "more than 64 variables");
                return 0;
        }
        im->env[im->n_env++] = (env_var) { TAKE_PTR(name), TAKE_PTR(value) };
        return 0;
}

/* The shell text of a crontab command: variables exported first, '%' handled. */
static int shell_text(importer *im, const char *cmd, char **ret, bool *ret_stdin) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < im->n_env; i++) {
                fprintf(f, "%s=", im->env[i].name);
                sh_quoted(f, im->env[i].value, strlen(im->env[i].value));
                fprintf(f, "; export %s; ", im->env[i].name);
        }
        /* the command up to the first unescaped %, with \% made % */
        const char *p = cmd;
        bool have_stdin = false;
        _cleanup_free_ char *command = calloc(strlen(cmd) + 1, 1), *input = calloc(strlen(cmd) + 1, 1);
        if (!command || !input) {
                fclose(f);
                free(text);
                return -ENOMEM;
        }
        char *o = command;
        for (; *p; p++) {
                if (p[0] == '\\' && p[1] == '%') {
                        *o++ = '%';
                        p++;
                } else if (*p == '%' && !have_stdin) {
                        *o = '\0';
                        have_stdin = true;
                        o = input;
                } else if (*p == '%')
                        *o++ = '\n';
                else
                        *o++ = *p;
        }
        *o = '\0';
        if (have_stdin) {
                fputs("printf '%s\\n' ", f);
                sh_quoted(f, input, strlen(input));
                fprintf(f, " | { %s; }", command);
        } else
                fputs(command, f);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        *ret_stdin = have_stdin;
        return 0;
}

static int job_line(importer *im, const char *line) {
        static const char *const macros[] = { "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                                              "@hourly" };
        char sched[256], name[64];
        const char *p = line, *cmd;
        bool reboot = false;

        if (*p == '@') {
                size_t n = strcspn(p, " \t");
                if (n == 7 && strncmp(p, "@reboot", 7) == 0)
                        reboot = true;
                else {
                        bool known = false;
                        for (size_t i = 0; i < ELEMENTSOF(macros); i++)
                                known = known || (strlen(macros[i]) == n && strncmp(p, macros[i], n) == 0);
                        if (!known) {
                                skip_line(im, line, "unknown @ macro; expected @reboot, @yearly, @annually, @monthly, "
                                          "@weekly, @daily, @midnight or @hourly");
                                return 0;
                        }
                }
                snprintf(sched, sizeof(sched), "%.*s", (int) n, p);
                cmd = p + n;
        } else {
                /* five fields, then the command */
                const char *q = p;
                for (int fld = 0; fld < 5; fld++) {
                        while (*q == ' ' || *q == '\t')
                                q++;
                        if (*q == '\0') {
                                skip_line(im, line, "fewer than five time fields and a command");
                                return 0;
                        }
                        q += strcspn(q, " \t");
                }
                size_t n = (size_t) (q - p);
                if (n >= sizeof(sched)) {
                        skip_line(im, line, "the time fields are too long");
                        return 0;
                }
                memcpy(sched, p, n);
                sched[n] = '\0';
                cmd = q;
        }
        while (*cmd == ' ' || *cmd == '\t')
                cmd++;
        if (*cmd == '\0') {
                skip_line(im, line, "no command after the schedule");
                return 0;
        }
        if (!reboot) {
                schedule s;
                parse_error pe = {};
                if (schedule_parse(sched, &s, &pe) < 0) {
                        char why[600];
                        snprintf(why, sizeof(why), "schedule \"%s\": %s", sched, pe.message);
                        skip_line(im, line, why);
                        return 0;
                }
        }

        _cleanup_free_ char *text = NULL;
        bool has_stdin;
        int r = shell_text(im, cmd, &text, &has_stdin);
        if (r < 0)
                return r;
        job_name(cmd, im->line, name, sizeof(name));

        fprintf(im->out, "  # line %u: %s\n", im->line, line);
        if (reboot) {
                fputs("  # @reboot: runs when schedulerd starts (run_on_startup), which is at boot under systemd but "
                      "also after a restart of the daemon; the schedule is a placeholder that does not come round\n",
                      im->out);
                im->st.notes++;
        }
        fprintf(im->out, "  - name: %s\n    schedule: ", name);
        yaml_quoted(im->out, reboot ? REBOOT_SCHEDULE : sched, strlen(reboot ? REBOOT_SCHEDULE : sched));
        fputc('\n', im->out);
        if (reboot)
                fputs("    run_on_startup: true\n", im->out);
        if (im->tz) {
                fputs("    timezone: ", im->out);
                yaml_quoted(im->out, im->tz, strlen(im->tz));
                fputc('\n', im->out);
        }
        fputs("    command: ", im->out);
        yaml_quoted(im->out, text, strlen(text));
        fputs("\n    shell: true\n", im->out);
        im->st.jobs++;
        return 0;
}

int crontab_import(const char *text, const char *source, FILE *out, crontab_import_stats *ret_stats) {
        importer im = { .out = out };
        int r = 0;

        fprintf(out, "# Imported from %s by schedctl import-crontab: review before use (schedctl check FILE).\n"
                "# Each command runs with /bin/sh -c as cron ran it, in the job's state directory with the\n"
                "# daemon's environment (cron's was PATH=/usr/bin:/bin and the user's HOME).\n"
                "jobs:\n", source);
        for (const char *p = text; *p && r >= 0;) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, n);
                p += n + (p[n] == '\n');
                im.line++;
                if (!line) {
                        r = -ENOMEM;
                        break;
                }
                char *s = line, *e = line + strlen(line);
                while (*s == ' ' || *s == '\t')
                        s++;
                while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                        *--e = '\0';
                if (*s == '\0')
                        continue;
                if (*s == '#') {
                        fprintf(out, "  %s\n", s);
                        continue;
                }
                bool is_env;
                r = parse_env(&im, s, &is_env);
                if (r >= 0 && !is_env)
                        r = job_line(&im, s);
        }
        if (im.st.jobs == 0)
                fputs("  []\n", out);
        for (size_t i = 0; i < im.n_env; i++) {
                free(im.env[i].name);
                free(im.env[i].value);
        }
        free(im.tz);
        if (r < 0)
                return r;
        *ret_stats = im.st;
        return 0;
}
