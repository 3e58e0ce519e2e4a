/* SPDX-License-Identifier: MIT */
#pragma once

/* Secrets of a job's runs (`credentials:`): files of the daemon's $CREDENTIALS_DIRECTORY
 * (systemd's LoadCredential=), read in the run's child while it still has the daemon's
 * privileges and handed to the plugin by sched_job_credential(). Never in the registry, the
 * log or history. */

#include <schedulerd/job.h>

#include "core/registry.h"

/* The largest credential read. */
#define JOB_CREDENTIAL_MAX (1024 * 1024)

/* Whether NAME can name a credential: a file name ([A-Za-z0-9_.@-], not "." or ".."). */
bool job_credential_name_is_valid(const char *name);

/* In the run's child, before it gives up privileges: reads DEF's credentials from
 * $CREDENTIALS_DIRECTORY into this process. One that cannot be read is reported on stderr and
 * left out (the plugin gets -ENOENT for it). */
void job_credentials_load(const job_def *def);

/* The api entry behind sched_job_credential(): 0 with the bytes of credential NAME (NUL
 * terminated after *RET_SIZE bytes), -ENOENT when the job does not list it, it could not be
 * read, or outside a run. */
int job_credential_get(sched_job_ctx *ctx, const char *name, const char **ret_data, size_t *ret_size);
