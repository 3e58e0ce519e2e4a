/* SPDX-License-Identifier: MIT */
#pragma once

/* `schedctl import-crontab`: a crontab turned into registry YAML for a person to review. Pure:
 * text in, YAML out, no file or clock. */

#include <stdio.h>

typedef struct crontab_import_stats {
        unsigned jobs;    /* job entries written */
        unsigned skipped; /* lines that could not be carried over (each commented in the output) */
        unsigned notes;   /* lines carried over with a caveat (MAILTO, SHELL, @reboot, ...) */
} crontab_import_stats;

/* Writes to OUT a registry fragment (a `jobs:` list) for the crontab TEXT read from SOURCE (a name
 * for the header comment). Handled: 5-field lines (names, ranges, steps), @yearly/@annually/
 * @monthly/@weekly/@daily/@midnight/@hourly, @reboot (run_on_startup), VAR=value lines (exported
 * at the start of the commands that follow, as cron does), CRON_TZ (timezone:), % in commands (the
 * text after the first unescaped % is the command's standard input, % a newline; \% a literal
 * %). Every command runs with `shell: true`, as cron runs it with /bin/sh -c. MAILTO and SHELL are
 * noted as unsupported; a line that cannot be carried over is copied as a comment saying why.
 * Job names are the program's base name and the line number ("backup-12"). Returns 0 and
 * *RET_STATS, or -ENOMEM. */
int crontab_import(const char *text, const char *source, FILE *out, crontab_import_stats *ret_stats);
