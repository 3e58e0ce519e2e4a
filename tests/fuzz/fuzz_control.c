/* SPDX-License-Identifier: MIT */
/* Fuzzes the control protocol's request handling (SPEC section 7) the way the daemon does it:
 * json_loadb() with JSON_REJECT_DUPLICATES, then control_dispatch() on a real manager (registry,
 * history database, event loop that is never run) in a private directory. Each request is
 * dispatched as an unprivileged peer and, except for "run" (which would fork a job), as a
 * privileged one. Properties: every request gets a reply that serializes, with a boolean "ok",
 * and an "error" and "errno" string when it is false; nothing ever waits on a run.
 *
 * The registry has two jobs when the test plugin ok.so is found ($FUZZ_PLUGIN_DIR, else
 * $TEST_PLUGIN_DIR as `make check` sets it), else none. */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "control/server.h"
#include "fuzz.h"
#include "basic/log.h"
#include "core/manager.h"

static char dir[] = "/tmp/fuzz-control-XXXXXX";
static manager *mgr;
/* kept for the process lifetime: the manager points at them */
static char *config, *state, *sock;

static char *path_in(const char *name) {
        char *p;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                abort();
        return p;
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(p);
        return 0;
}

static void cleanup(void) {
        mgr = manager_free(mgr);
        /* history.db and its journal files, the jobs' state directories */
        (void) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *plugins = getenv("FUZZ_PLUGIN_DIR") ?: getenv("TEST_PLUGIN_DIR");
        char *ok = NULL;
        sigset_t ss;
        FILE *f;
        int r;

        if (!mkdtemp(dir)) {
                perror("fuzz_control: mkdtemp");
                abort();
        }
        config = path_in("registry.yaml");
        state = path_in("state");
        sock = path_in("control.sock");
        atexit(cleanup);
        if (plugins && asprintf(&ok, "%s/ok.so", plugins) >= 0 && access(ok, R_OK) < 0) {
                free(ok);
                ok = NULL;
        }
        f = fopen(config, "we");
        if (!f)
                abort();
        fprintf(f, "scheduler:\n  timezone: Europe/Amsterdam\n");
        if (ok) /* plugins load from plugin_dir only */
                fprintf(f,
                        "  plugin_dir: %s\n"
                        "jobs:\n"
                        "  - name: alpha\n    plugin: ok.so\n    schedule: \"*/5 * * * *\"\n"
                        "    params: { greeting: hello }\n"
                        "  - name: beta\n    plugin: ok.so\n    schedule: \"@every 1h\"\n    enabled: false\n",
                        plugins);
        if (fclose(f) != 0)
                abort();

        /* as schedulerd does: signals are taken through the event loop */
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        log_set_max_level(LOG_ERR);

        manager_options o = { .config = config, .state_dir = state, .control_socket = sock };
        r = manager_new(&o, &mgr);
        if (r < 0) {
                fprintf(stderr, "fuzz_control: manager_new failed: %s\n", strerror(-r));
                abort();
        }
        fprintf(stderr, "fuzz_control: %zu jobs (%s)\n", mgr->n_jobs, ok ?: "no ok.so found");
        /* the manager keeps pointers to the options' strings */
        free(ok);
        return 0;
}

static void check_reply(json_t *reply, const char *why) {
        FUZZ_CHECK(json_is_object(reply), "%s: the reply is not an object", why);
        json_t *okv = json_object_get(reply, "ok");
        FUZZ_CHECK(json_is_boolean(okv), "%s: the reply has no boolean \"ok\"", why);
        if (json_is_false(okv)) {
                FUZZ_CHECK(json_is_string(json_object_get(reply, "error")) &&
                                   json_string_length(json_object_get(reply, "error")) > 0,
                           "%s: a failure without an \"error\" message", why);
                FUZZ_CHECK(json_is_string(json_object_get(reply, "errno")), "%s: a failure without \"errno\"", why);
        }
        char *s = json_dumps(reply, JSON_COMPACT);
        FUZZ_CHECK(s && !strchr(s, '\n'), "%s: the reply does not serialize to one line", why);
        free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_error_t e;
        json_t *req, *reply;
        int64_t wait = 0;

        if (size > CONTROL_LINE_MAX)
                return 0;
        req = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &e);
        if (!req)
                return 0;

        reply = control_dispatch(mgr, req, false, &wait);
        FUZZ_CHECK(reply, "unprivileged: no reply (waiting on run %lld)", (long long) wait);
        check_reply(reply, "unprivileged");
        json_decref(reply);

        json_t *cmd = json_object_get(req, "command");
        if (!(json_is_string(cmd) && strcmp(json_string_value(cmd), "run") == 0)) {
                reply = control_dispatch(mgr, req, true, &wait);
                FUZZ_CHECK(reply, "privileged: no reply (waiting on run %lld)", (long long) wait);
                check_reply(reply, "privileged");
                json_decref(reply);
        }
        manager_flush_history(mgr);
        json_decref(req);
        return 0;
}
