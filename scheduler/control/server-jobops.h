/* SPDX-License-Identifier: MIT */
#pragma once

/* The control commands of issue 18 (pause, resume, backfill) and what a job object says about
 * its pause, jitter, overlap, user and backfill; server.c calls these. */

#include <jansson.h>

#include "control/protocol.h"
#include "core/manager.h"

/* The reply to command ID (pause, resume or backfill) for job J of request REQ, or NULL when
 * ID is not one of them. */
json_t *control_jobops_dispatch(manager *m, control_command_id id, job_rt *j, json_t *req);

/* Adds those fields to job object O of J (DETAIL: status, else list). */
void control_jobops_job_fields(manager *m, job_rt *j, json_t *o, bool detail);
