/* SPDX-License-Identifier: MIT */
/* Fuzzes registry_load() on the input written as registry.yaml in a private directory that also
 * holds plugins/stub.job and stub.job (empty files: plugins are only checked to exist) and a
 * drop-in drop.yaml for `scheduler.include` patterns to find.
 *
 * The include glob opens whatever it matches, and fuzzing runs as any user, possibly root: an
 * input could name /dev/watchdog or a tty. So an input that mentions `include` and has a scalar
 * with a '/' in it, or an alias anywhere after `include`, is skipped: patterns then stay inside the
 * private directory. Properties: success and diagnostics exclude each other, every diagnostic
 * says something, every job is found by its name. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "fuzz.h"
#include "core/registry.h"

static char dir[] = "/tmp/fuzz-registry-XXXXXX";
static char path[sizeof(dir) + 32];

static void write_file(const char *name, const char *text) {
        char p[sizeof(dir) + 64];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        FILE *f = fopen(p, "we");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
                fprintf(stderr, "fuzz_registry: cannot write %s\n", p);
                abort();
        }
}

static void cleanup(void) {
        char p[sizeof(dir) + 64];
        static const char *const names[] = { "registry.yaml", "drop.yaml", "stub.job", "plugins/stub.job", "plugins" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
                (void) remove(p);
        }
        (void) rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char p[sizeof(dir) + 64];
        if (!mkdtemp(dir)) {
                perror("fuzz_registry: mkdtemp");
                abort();
        }
        atexit(cleanup);
        snprintf(p, sizeof(p), "%s/plugins", dir);
        if (mkdir(p, 0700) < 0) {
                perror("fuzz_registry: mkdir");
                abort();
        }
        write_file("stub.job", "");
        write_file("plugins/stub.job", "");
        write_file("drop.yaml", "jobs:\n  - name: dropped\n    plugin: stub.job\n    schedule: \"@hourly\"\n");
        snprintf(path, sizeof(path), "%s/registry.yaml", dir);
        return 0;
}

/* Whether an include pattern in DATA could leave the private directory (see above). */
static bool include_unsafe(const uint8_t *data, size_t size) {
        yaml_parser_t p;
        yaml_event_t ev;
        bool saw_include = false, saw_slash = false, alias_after_include = false;

        if (!yaml_parser_initialize(&p))
                return true;
        yaml_parser_set_input_string(&p, data, size);
        for (bool done = false; !done;) {
                if (!yaml_parser_parse(&p, &ev))
                        break; /* registry_load stops at the same place */
                if (ev.type == YAML_SCALAR_EVENT) {
                        const char *v = (const char *) ev.data.scalar.value;
                        size_t n = ev.data.scalar.length;
                        if (memchr(v, '/', n))
                                saw_slash = true;
                        if (n == 7 && memcmp(v, "include", 7) == 0)
                                saw_include = true;
                } else {
                        if (ev.type == YAML_ALIAS_EVENT && saw_include)
                                alias_after_include = true;
                }
                done = ev.type == YAML_STREAM_END_EVENT;
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&p);
        return (saw_include && saw_slash) || alias_after_include;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        registry *reg = NULL;
        diag_list diags = {};
        int r;

        if (include_unsafe(data, size))
                return 0;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t) size) || close(fd) < 0) {
                perror("fuzz_registry: writing the input");
                abort();
        }

        r = registry_load(path, 0, &reg, &diags);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EFBIG, "registry_load returned %d", r);
        if (r == 0) {
                FUZZ_CHECK(reg, "success without a registry");
                FUZZ_CHECK(diags.n == 0, "success with %zu diagnostics", diags.n);
                for (size_t i = 0; i < reg->n_jobs; i++)
                        FUZZ_CHECK(registry_find(reg, reg->jobs[i]->name) == reg->jobs[i], "job %s not found by name",
                                   reg->jobs[i]->name);
        } else
                FUZZ_CHECK(diags.n > 0, "registry_load failed (%d) without saying why", r);
        for (size_t i = 0; i < diags.n; i++) {
                char *m = diag_format(&diags.items[i]);
                FUZZ_CHECK(m && m[0], "diagnostic %zu is empty", i);
                free(m);
        }
        registry_free(reg);
        diag_list_clear(&diags);
        return 0;
}
