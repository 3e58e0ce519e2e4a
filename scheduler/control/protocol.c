/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "basic/macro.h"
#include "control/protocol.h"

static const char *const no_fields[] = { NULL };
static const char *const job_fields[] = { FIELD_JOB, NULL };
static const char *const run_fields[] = { FIELD_JOB, FIELD_AT, FIELD_WAIT, NULL };
static const char *const list_fields[] = { FIELD_AFTER, FIELD_LIMIT, NULL };
static const char *const pause_fields[] = { FIELD_JOB, FIELD_UNTIL, NULL };
static const char *const backfill_fields[] = { FIELD_JOB, FIELD_FROM, FIELD_TO, FIELD_DRY_RUN, NULL };
static const char *const history_fields[] = { FIELD_JOB, FIELD_LIMIT, FIELD_SINCE, FIELD_STATUS, NULL };

/* In the order of CONTROL_COMMANDS_EXPECTED. */
const control_command control_commands[_CONTROL_COMMAND_MAX] = {
        [CONTROL_LIST] = { CONTROL_LIST, "list", false, list_fields },
        [CONTROL_STATUS] = { CONTROL_STATUS, "status", false, job_fields },
        [CONTROL_RUN] = { CONTROL_RUN, "run", true, run_fields },
        [CONTROL_ENABLE] = { CONTROL_ENABLE, "enable", true, job_fields },
        [CONTROL_DISABLE] = { CONTROL_DISABLE, "disable", true, job_fields },
        [CONTROL_HISTORY] = { CONTROL_HISTORY, "history", false, history_fields },
        [CONTROL_RELOAD] = { CONTROL_RELOAD, "reload", true, no_fields },
        [CONTROL_METRICS] = { CONTROL_METRICS, "metrics", false, no_fields },
        [CONTROL_PAUSE] = { CONTROL_PAUSE, "pause", true, pause_fields },
        [CONTROL_RESUME] = { CONTROL_RESUME, "resume", true, job_fields },
        [CONTROL_BACKFILL] = { CONTROL_BACKFILL, "backfill", true, backfill_fields },
        [CONTROL_NODES] = { CONTROL_NODES, "nodes", false, no_fields },
};

const control_command *control_command_find(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(control_commands); i++)
                if (streq(control_commands[i].name, name))
                        return &control_commands[i];
        return NULL;
}

const char *control_command_name(control_command_id id) {
        return control_commands[id].name;
}

bool control_command_takes(const control_command *c, const char *field) {
        for (const char *const *f = c->fields; *f; f++)
                if (streq(*f, field))
                        return true;
        return false;
}
