/* SPDX-License-Identifier: MIT */
#pragma once

/* Loading job plugins: dlopen, ABI check, mandatory callbacks. */

#include <schedulerd/job.h>

#include "basic/macro.h"

typedef struct plugin {
        unsigned n_ref;
        char *path;
        void *handle;
        const sched_job_descriptor *desc;
} plugin;

/* Loads the shared object at PATH (RTLD_NOW | RTLD_LOCAL), finds SCHEDULERD_JOB_SYMBOL and
 * checks the ABI version and that `run` is set. On every rejection the object is unloaded and
 * *ret_error (if RET_ERROR is non-NULL) gets a malloc'ed message saying what is wrong and what
 * was expected. Returns 0 and a plugin with one reference, or -ENOENT (no such file),
 * -ELIBBAD (dlopen failed), -ENOEXEC (no descriptor symbol), -EPROTO (ABI mismatch),
 * -EINVAL (descriptor incomplete). */
int plugin_load(const char *path, plugin **ret, char **ret_error);

plugin *plugin_ref(plugin *p);

/* Drops a reference; unloads at zero. NULL-tolerant; returns NULL. */
plugin *plugin_unref(plugin *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(plugin *, plugin_unref);

/* Resolves a registry `plugin:` value: absolute paths as is; otherwise relative to DIR.
 * Returns a malloc'ed path or NULL on OOM. */
char *plugin_resolve_path(const char *dir, const char *name);
