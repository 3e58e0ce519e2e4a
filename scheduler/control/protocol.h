/* SPDX-License-Identifier: MIT */
#pragma once

/* The control protocol's vocabulary (SPEC section 7), shared by the daemon (control/server.c)
 * and schedctl so that neither spells a command or a field on its own: the table of commands
 * (name, whether it needs admin rights, which request fields it takes) and the name of every
 * field of a request or a reply. server.h describes the requests and replies. */

#include <stdbool.h>
#include <stddef.h>

typedef enum control_command_id {
        CONTROL_LIST,
        CONTROL_STATUS,
        CONTROL_RUN,
        CONTROL_ENABLE,
        CONTROL_DISABLE,
        CONTROL_HISTORY,
        CONTROL_RELOAD,
        CONTROL_METRICS,
        CONTROL_PAUSE,
        CONTROL_RESUME,
        CONTROL_BACKFILL,
        CONTROL_NODES,
        _CONTROL_COMMAND_MAX,
} control_command_id;

typedef struct control_command {
        control_command_id id;
        const char *name;           /* the value of "command" */
        bool admin;                 /* changes the scheduler: root or admin_group only */
        const char *const *fields;  /* request fields besides "command", NULL-terminated */
} control_command;

/* Indexed by control_command_id. */
extern const control_command control_commands[_CONTROL_COMMAND_MAX];

/* The command named NAME (case-sensitive), or NULL for NULL or an unknown name. */
const control_command *control_command_find(const char *name);

/* The wire name of ID; ID must be a valid id. */
const char *control_command_name(control_command_id id);

/* Whether command C takes request field FIELD. */
bool control_command_takes(const control_command *c, const char *field);

/* The commands for "expected ..." in messages, in table order. */
#define CONTROL_COMMANDS_EXPECTED "list, status, run, enable, disable, history, reload, metrics, pause, resume, backfill or nodes"

/* ---- request fields ---- */
#define FIELD_COMMAND "command"
#define FIELD_JOB "job"         /* also a reply field: a job's name, or (status) the job object */
#define FIELD_AT "at"           /* run: when, microseconds since the epoch, or null for now */
#define FIELD_WAIT "wait"       /* run: reply when the run finished */
#define FIELD_LIMIT "limit"     /* history, list: at most this many */
#define FIELD_AFTER "after"     /* list: only the jobs whose names sort after this one */
#define FIELD_SINCE "since"     /* history */
#define FIELD_STATUS "status"   /* history filter; also a run's status in replies */
#define FIELD_UNTIL "until"     /* pause: microseconds since the epoch, or null: until resumed */
#define FIELD_FROM "from"       /* backfill: the range's first instant, microseconds */
#define FIELD_TO "to"           /* backfill: its last instant (included) */
#define FIELD_DRY_RUN "dry_run" /* backfill: list the instants, run nothing */

/* ---- reply fields ---- */
#define FIELD_OK "ok"
#define FIELD_ERROR "error"
#define FIELD_ERRNO "errno"
#define FIELD_ERRORS "errors"   /* reload: the new registry's problems */
#define FIELD_JOBS "jobs"       /* list: the job objects; reload: how many jobs */
#define FIELD_PLUGINS_CHANGED "plugins_changed" /* reload: plugin files loaded anew */
#define FIELD_NOW_USEC "now_usec"
#define FIELD_MORE "more"       /* list: the limit left jobs out; ask again "after" the last one */
#define FIELD_RUNS "runs"       /* history: run objects; in a job object: runs so far */
#define FIELD_RUN_ID "run_id"
#define FIELD_ENABLED "enabled"
#define FIELD_IN_REGISTRY "in_registry" /* history of one job: false when it was removed */
/* status without a job: the daemon's */
#define FIELD_HISTORY_RUNS "history_runs"
#define FIELD_HISTORY_BYTES "history_bytes"
#define FIELD_RUNNING_RUNS "running_runs"
#define FIELD_WAITING_FIRES "waiting_fires" /* fires held back by max_concurrent, waiting for a slot */
#define FIELD_TEXT "text"       /* metrics: the Prometheus text exposition */

/* a job object (list, status) */
#define FIELD_NAME "name"
#define FIELD_SCHEDULE "schedule"
#define FIELD_TIMEZONE "timezone"
#define FIELD_STATE "state"
#define FIELD_NEXT_USEC "next_usec"
#define FIELD_LAST_USEC "last_usec"
#define FIELD_LAST_STATUS "last_status"
#define FIELD_FAILURES "failures"
#define FIELD_MISSED "missed"   /* fire instants recorded missed, lifetime (as runs and failures) */
#define FIELD_AVERAGE_DURATION_USEC "average_duration_usec"
#define FIELD_ENABLED_OVERRIDE "enabled_override"
#define FIELD_RUNNING "running"
/* ... and with status, the definition */
#define FIELD_DESCRIPTION "description"
#define FIELD_PLUGIN "plugin"
#define FIELD_SINGLETON "singleton"
#define FIELD_TIMEOUT_USEC "timeout_usec"
#define FIELD_RETRY "retry"
#define FIELD_ATTEMPTS "attempts"
#define FIELD_BACKOFF_USEC "backoff_usec"
#define FIELD_MAX_BACKOFF_USEC "max_backoff_usec"
#define FIELD_RUN_ON_STARTUP "run_on_startup"
#define FIELD_CATCH_UP "catch_up"
#define FIELD_SOURCE "source"
#define FIELD_FILE "file"
#define FIELD_LINE "line"
#define FIELD_NEXT_FIRES_USEC "next_fires_usec"
#define FIELD_LAST_RUNS "last_runs"

/* a run object (history, status's last_runs, run --wait) */
#define FIELD_ID "id"
#define FIELD_TRIGGER "trigger"
#define FIELD_ATTEMPT "attempt"
#define FIELD_SCHEDULED_USEC "scheduled_usec"
#define FIELD_STARTED_USEC "started_usec"
#define FIELD_FINISHED_USEC "finished_usec"
#define FIELD_EXIT_CODE "exit_code"
#define FIELD_SIGNAL "signal"
#define FIELD_DURATION_USEC "duration_usec"
#define FIELD_MESSAGE "message"
#define FIELD_OUTPUT "output"
#define FIELD_PID "pid"
/* a missed row: the instants it stands for, scheduled_usec to missed_last_usec */
#define FIELD_MISSED_COUNT "missed_count"
#define FIELD_MISSED_LAST_USEC "missed_last_usec"
/* a job's misfire_threshold in force (status): null for auto */
#define FIELD_MISFIRE_THRESHOLD_USEC "misfire_threshold_usec"

/* features of issue 18 in a job object (list, status) */
#define FIELD_PAUSED "paused"                       /* a pause holds back its fires now */
#define FIELD_PAUSED_UNTIL_USEC "paused_until_usec" /* null: until resumed (when paused) */
#define FIELD_NEXT_DELAY_USEC "next_delay_usec"     /* the random_delay of the next fire */
#define FIELD_RANDOM_DELAY_USEC "random_delay_usec"
#define FIELD_OVERLAP "overlap"
#define FIELD_USER "user"                           /* null: runs as the daemon */
#define FIELD_GROUP "group"
#define FIELD_QUEUED_USEC "queued_usec"             /* the fire waiting (overlap queue/replace) */
#define FIELD_BACKFILL "backfill"                   /* in progress: from, to, next_usec; else null */
/* a backfill reply */
#define FIELD_INSTANTS_USEC "instants_usec"
#define FIELD_CLAIMED "claimed"                     /* of the instants, how many ran before */

/* cluster mode (issue 15) */
#define FIELD_NODE "node"             /* a run's node; a job's: of its last run; status: this daemon's ("" with SQLite) */
#define FIELD_NODES "nodes"           /* nodes: the node objects */
#define FIELD_INCARNATION "incarnation"
#define FIELD_LEASE_EXPIRES_USEC "lease_expires_usec" /* by the database's clock */
#define FIELD_LEASE_EXPIRED "lease_expired"           /* alive, but its lease ended: about to be taken over */
#define FIELD_CLOCK_OFFSET_USEC "clock_offset_usec"   /* the node's clock minus the database's */
#define FIELD_REGISTRY_DIGEST "registry_digest"
#define FIELD_REGISTRY_DIFFERS "registry_differs"     /* its registry is not the one most alive nodes run */
#define FIELD_RUNS_IN_FLIGHT "runs_in_flight"
#define FIELD_SELF "self"                             /* the node answering */
#define FIELD_REQUEST_ID "request_id"                 /* run: queued for a node that defines the job */

/* the values of a job object's "state" */
#define CONTROL_STATE_RUNNING "running"
#define CONTROL_STATE_RETRYING "retrying"
#define CONTROL_STATE_IDLE "idle"
