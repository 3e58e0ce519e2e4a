/* SPDX-License-Identifier: MIT */
#include "basic/clock.h"
#include "control/server-jobops.h"

static json_t *usec_or_null(usec_t u) {
        return u == USEC_INFINITY ? json_null() : json_integer((json_int_t) u);
}

static json_t *error_reply(int err, const char *msg) {
        return json_pack("{s:b, s:s, s:s}", FIELD_OK, 0, FIELD_ERROR, msg, FIELD_ERRNO, strerrorname_np(-err) ?: "EIO");
}

/* An instant field: absent or null is DEF; else microseconds since the epoch. */
static bool req_usec(json_t *req, const char *key, usec_t def, usec_t *ret) {
        json_t *v = json_object_get(req, key);
        if (!v || json_is_null(v)) {
                *ret = def;
                return true;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return false;
        *ret = (usec_t) json_integer_value(v);
        return true;
}

json_t *control_jobops_dispatch(manager *m, control_command_id id, job_rt *j, json_t *req) {
        const char *name = j->def->name;
        char msg[512];
        int q;

        if (id == CONTROL_PAUSE || id == CONTROL_RESUME) {
                usec_t until = USEC_INFINITY;
                if (id == CONTROL_PAUSE && !req_usec(req, FIELD_UNTIL, USEC_INFINITY, &until))
                        return error_reply(-EINVAL, "\"" FIELD_UNTIL "\" must be microseconds since the epoch, or null");
                q = manager_set_paused(m, name, id == CONTROL_PAUSE, until);
                if (q < 0) {
                        snprintf(msg, sizeof(msg), "could not persist the change: %s", history_last_error(m->hist));
                        return error_reply(q, msg);
                }
                return json_pack("{s:b, s:s, s:b, s:o}", FIELD_OK, 1, FIELD_JOB, name, FIELD_PAUSED,
                                 id == CONTROL_PAUSE, FIELD_PAUSED_UNTIL_USEC,
                                 id == CONTROL_PAUSE ? usec_or_null(until) : json_null());
        }
        if (id == CONTROL_BACKFILL) {
                usec_t from, to;
                usec_t *v = NULL;
                size_t n = 0, claimed = 0;
                const char *why = NULL;
                bool dry = json_is_true(json_object_get(req, FIELD_DRY_RUN));

                if (!req_usec(req, FIELD_FROM, USEC_INFINITY, &from) || from == USEC_INFINITY ||
                    !req_usec(req, FIELD_TO, USEC_INFINITY, &to) || to == USEC_INFINITY)
                        return error_reply(-EINVAL, "backfill needs \"" FIELD_FROM "\" and \"" FIELD_TO
                                                    "\", microseconds since the epoch");
                q = manager_backfill(m, name, from, to, dry, &v, &n, &claimed, &why);
                if (q < 0) {
                        snprintf(msg, sizeof(msg), "cannot backfill job \"%s\": %s", name,
                                 why ?: q == -ENOMEM ? strerror(-q) : history_last_error(m->hist));
                        return error_reply(q, msg);
                }
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, json_integer((json_int_t) v[i]));
                free(v);
                return json_pack("{s:b, s:s, s:b, s:o, s:I}", FIELD_OK, 1, FIELD_JOB, name, FIELD_DRY_RUN, dry,
                                 FIELD_INSTANTS_USEC, arr, FIELD_CLAIMED, (json_int_t) claimed);
        }
        return NULL;
}

void control_jobops_job_fields(manager *m, job_rt *j, json_t *o, bool detail) {
        bool paused = j->paused_until > 0 && j->paused_until > clock_now_realtime();
        const job_def *d = j->def;

        json_object_set_new(o, FIELD_PAUSED, json_boolean(paused));
        json_object_set_new(o, FIELD_PAUSED_UNTIL_USEC, paused ? usec_or_null(j->paused_until) : json_null());
        json_object_set_new(o, FIELD_NEXT_DELAY_USEC,
                            j->next_fire == USEC_INFINITY ? json_null() : json_integer((json_int_t) j->fire_delay));
        json_object_set_new(o, FIELD_BACKFILL,
                            j->backfilling ? json_pack("{s:I, s:I, s:I}", FIELD_FROM, (json_int_t) j->backfill_from,
                                                       FIELD_TO, (json_int_t) j->backfill_to, FIELD_NEXT_USEC,
                                                       (json_int_t) j->backfill_next)
                                           : json_null());
        if (!detail)
                return;
        json_object_set_new(o, FIELD_RANDOM_DELAY_USEC, json_integer((json_int_t) d->random_delay));
        json_object_set_new(o, FIELD_OVERLAP, json_string(job_overlap_to_string(d->overlap)));
        json_object_set_new(o, FIELD_USER, d->identity.user ? json_string(d->identity.user) : json_null());
        json_object_set_new(o, FIELD_GROUP, d->identity.group ? json_string(d->identity.group) : json_null());
        json_object_set_new(o, FIELD_QUEUED_USEC, j->queued ? json_integer((json_int_t) j->queued_scheduled) : json_null());
}
