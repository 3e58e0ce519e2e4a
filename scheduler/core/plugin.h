/* SPDX-License-Identifier: MIT */
#pragma once

/* Loading job plugins: dlopen, ABI check, mandatory callbacks. */

#include <schedulerd/job.h>

#include "basic/macro.h"
#include "core/params.h"

typedef struct plugin {
        unsigned n_ref;
        char *path;
        int fd; /* the checked file, open while mapped: dlopen()ed as /proc/self/fd/N */
        void *handle;
        const sched_job_descriptor *desc;
        uint32_t flags; /* desc->flags, or 0 for a descriptor of ABI 1.0 (without them) */
        params defaults; /* its param table's defaults, shared by the jobs that set no params */
} plugin;

/* Loads the shared object at PATH (RTLD_NOW | RTLD_LOCAL), finds SCHEDULERD_JOB_SYMBOL and
 * checks the ABI version and that `run` is set. Nothing of the file runs before it passed
 * trust_open_file() (basic/trust.h: owned by root or the daemon's user, not writable by group
 * or others, nor any directory above it, not a symbolic link); the checked descriptor is what
 * gets loaded. On every rejection the object is unloaded and
 * *ret_error (if RET_ERROR is non-NULL) gets a malloc'ed message saying what is wrong and what
 * was expected. Returns 0 and a plugin with one reference, or -ENOENT (no such file),
 * -ELIBBAD (dlopen failed), -ENOEXEC (no descriptor symbol), -EPROTO (ABI mismatch),
 * -EINVAL (descriptor incomplete). */
int plugin_load(const char *path, plugin **ret, char **ret_error);

plugin *plugin_ref(plugin *p);

/* Drops a reference; unloads at zero. NULL-tolerant; returns NULL. */
plugin *plugin_unref(plugin *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(plugin *, plugin_unref);

/* Resolves a registry `plugin:` value against plugin_dir DIR: a plain file name, or an absolute
 * path naming a file directly in DIR. Anything else (another directory, "..", a relative path
 * with a '/') is refused: plugins come from plugin_dir only. Returns 0 and a malloc'ed path in
 * *RET, -EINVAL with a malloc'ed message in *RET_ERROR (if non-NULL), or -ENOMEM. */
int plugin_resolve_path(const char *dir, const char *name, char **ret, char **ret_error);
