/* SPDX-License-Identifier: MIT */
#pragma once

/* Least privilege per job: the identity a job's runs take (`user:`, `group:`,
 * scheduler.default_user), resolved when the registry is read and entered in the run's child;
 * the check that the job's user cannot change the code the daemon loads for it; and the job's
 * state directory handed to that user. */

#include <sys/stat.h>

#include "core/registry.h"

/* Looks up USER (a name, or a numeric uid that has a passwd entry) and GROUP (NULL: the user's
 * primary group; else a name or numeric gid) and fills *RET: ids, supplementary groups, home,
 * shell. Returns 0, -ENOENT (no such user or group: *RET_ERROR, malloc'ed, says which and what
 * to do), -ENOMEM, or another -errno of the lookup (also explained). *RET is set only on
 * success; free it with job_identity_done(). */
int job_identity_resolve(const char *user, const char *group, job_identity *ret, char **ret_error);

/* Frees what job_identity_resolve() put into ID and clears it. NULL-tolerant. */
void job_identity_done(job_identity *id);

/* Pure: whether a process with UID, GID and supplementary GROUPS (N) may write a file whose
 * owner, group and mode are ST's, by its permission bits (root may write anything). */
bool job_identity_may_write(const struct stat *st, uid_t uid, gid_t gid, const gid_t *groups, size_t n);

/* Refuses a plugin ID's user could replace: PLUGIN_PATH or the directory holding it writable
 * by that user means the user could make the daemon (root) run their code. Returns 0 (also
 * when ID has no user, or is root), -EPERM with *RET_ERROR (malloc'ed) saying which file and
 * what to do, or -errno when they cannot be examined (also explained). */
int job_identity_check_plugin(const job_identity *id, const char *plugin_path, char **ret_error);

/* In the run's child, after everything that needs the daemon's privileges: sets the run's
 * environment (HOME, USER, LOGNAME, SHELL of the user; then the job's environment), takes the
 * supplementary groups, the gid and the uid, in that order, checks they cannot be regained, and
 * sets PR_SET_NO_NEW_PRIVS. A job without a user keeps the daemon's identity and gets only its
 * environment. Returns 0 or -errno (the run must then not start: it would run as root). */
int job_identity_enter(const job_def *def);

/* Makes DIR, the state directory of DEF (a job with a user), that user's (owner, mode 0700),
 * and the directories above it in R's state_dir passable (o+x, not listable) so the run can
 * enter it; history.db stays the daemon's alone (mode 0600). Failures are logged; the run
 * then says it cannot enter its directory. */
void job_identity_prepare_dir(const registry *r, const job_def *def, const char *dir);
