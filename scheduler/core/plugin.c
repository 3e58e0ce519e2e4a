/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "basic/trust.h"

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

/* Where the dynamic linker finds descriptor FD. glibc returns an already loaded object whose
 * name matches, so the name must stay unique while that object is mapped: the descriptor is
 * kept open for as long (see plugin_unref()). */
static void fd_path(int fd, char buf[static 32]) {
        snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

int plugin_load(const char *path, plugin **ret, char **ret_error) {
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int fd = -EBADF;
        char proc[32];
        void *h;
        int r;

        /* Its constructors run as the daemon's user the moment it is mapped: check the file and
         * every directory above it first, then load that very file through its descriptor. */
        r = trust_open_file(path, 0, &fd, &why);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                return fail(ret_error, r, "plugin %s: %s; expected a job shared object (.so) there", path,
                            strerror(-r));
        if (r == -EISDIR)
                return fail(ret_error, r, "plugin %s: not a regular file; expected a job shared object (.so)", path);
        if (r < 0)
                return fail(ret_error, r, "plugin %s: refused: %s", path, why ?: strerror(-r));

        /* RTLD_LOCAL: plugins must not see each other's symbols; RTLD_NOW: an unresolved symbol
         * is a load-time error here, not a crash in the middle of a run. */
        fd_path(fd, proc);
        h = dlopen(proc, RTLD_NOW | RTLD_LOCAL);
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
        /* ABI 1.0 ended before `flags`: such a plugin is fine, and has none */
        if (d->struct_size < offsetof(sched_job_descriptor, flags)) {
                uint32_t sz = d->struct_size;
                dlclose(h);
                return fail(ret_error, -EPROTO, "plugin %s: descriptor is %" PRIu32 " bytes, expected %zu; rebuild it",
                            path, sz, offsetof(sched_job_descriptor, flags));
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
        p->flags = d->struct_size >= offsetof(sched_job_descriptor, flags) + sizeof(d->flags) ? d->flags : 0;
        p->fd = TAKE_FD(fd);
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
        params_done(&p->defaults);
        dlclose(p->handle);
        if (p->fd >= 0) {
                char proc[32];
                fd_path(p->fd, proc);
                void *still = dlopen(proc, RTLD_LAZY | RTLD_NOLOAD);
                if (still)
                        dlclose(still); /* kept mapped (NODELETE): never reuse its name */
                else
                        close(p->fd);
        }
        free(p->path);
        free(p);
        return NULL;
}

int plugin_resolve_path(const char *dir, const char *name, char **ret, char **ret_error) {
        const char *slash = strrchr(name, '/');
        size_t n = dir ? strlen(dir) : 0;
        char *s;

        while (n > 1 && dir[n - 1] == '/')
                n--;
        /* an absolute path is fine if it names a file directly in plugin_dir */
        if (slash && name[0] == '/' && n > 0 && (size_t) (slash - name) == (n == 1 ? 0 : n) &&
            strncmp(name, dir, n) == 0)
                name = slash + 1, slash = NULL;
        if (slash || isempty(name) || streq(name, ".") || streq(name, ".."))
                return fail(ret_error, -EINVAL,
                            "plugin \"%s\": expected the name of a file in plugin_dir (%s), like \"name.so\"; "
                            "plugins are loaded from plugin_dir only: install it there and give its name",
                            name, isempty(dir) ? "unset" : dir);
        if (n == 0)
                s = strdup(name);
        else if (asprintf(&s, "%.*s/%s", n == 1 ? 0 : (int) n, dir, name) < 0)
                s = NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
