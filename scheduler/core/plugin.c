/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdarg.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "core/plugin.h"

static int fail(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(char **ret_error, int r, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                char *s = NULL;
                va_start(ap, fmt);
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                *ret_error = s;
        }
        return r;
}

int plugin_load(const char *path, plugin **ret, char **ret_error) {
        struct stat st;
        void *h;

        if (stat(path, &st) < 0)
                return fail(ret_error, -errno, "plugin %s: %s; expected a job shared object (.so) there", path,
                            strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail(ret_error, -EISDIR, "plugin %s: not a regular file; expected a job shared object (.so)",
                            path);

        /* RTLD_LOCAL: plugins must not see each other's symbols; RTLD_NOW: an unresolved symbol
         * is a load-time error here, not a crash in the middle of a run. */
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return fail(ret_error, -ELIBBAD, "plugin %s: cannot be loaded: %s", path, dlerror());

        const sched_job_descriptor *d = dlsym(h, SCHEDULERD_JOB_SYMBOL);
        if (!d) {
                dlclose(h);
                return fail(ret_error, -ENOEXEC,
                            "plugin %s: no \"%s\" symbol; expected a descriptor declared with SCHEDULERD_JOB_DEFINE()",
                            path, SCHEDULERD_JOB_SYMBOL);
        }
        if (d->abi_version != SCHEDULERD_JOB_ABI_VERSION) {
                uint32_t v = d->abi_version;
                dlclose(h);
                return fail(ret_error, -EPROTO,
                            "plugin %s: job ABI version %" PRIu32 ", expected %d; rebuild it against this "
                            "schedulerd's <schedulerd/job.h>",
                            path, v, SCHEDULERD_JOB_ABI_VERSION);
        }
        if (d->struct_size < sizeof(sched_job_descriptor)) {
                uint32_t sz = d->struct_size;
                dlclose(h);
                return fail(ret_error, -EPROTO, "plugin %s: descriptor is %" PRIu32 " bytes, expected %zu; rebuild it",
                            path, sz, sizeof(sched_job_descriptor));
        }
        if (!d->run) {
                dlclose(h);
                return fail(ret_error, -EINVAL, "plugin %s: descriptor has no run callback; a job must set .run", path);
        }
        if (isempty(d->name)) {
                dlclose(h);
                return fail(ret_error, -EINVAL, "plugin %s: descriptor has no name; set .name", path);
        }

        plugin *p = calloc(1, sizeof(plugin));
        if (!p) {
                dlclose(h);
                return -ENOMEM;
        }
        p->path = strdup(path);
        if (!p->path) {
                free(p);
                dlclose(h);
                return -ENOMEM;
        }
        p->n_ref = 1;
        p->handle = h;
        p->desc = d;
        *ret = p;
        return 0;
}

plugin *plugin_ref(plugin *p) {
        if (p)
                p->n_ref++;
        return p;
}

plugin *plugin_unref(plugin *p) {
        if (!p)
                return NULL;
        if (--p->n_ref > 0)
                return NULL;
        dlclose(p->handle);
        free(p->path);
        free(p);
        return NULL;
}

char *plugin_resolve_path(const char *dir, const char *name) {
        char *s;
        if (name[0] == '/' || isempty(dir))
                return strdup(name);
        if (asprintf(&s, "%s/%s", dir, name) < 0)
                return NULL;
        return s;
}
