/* SPDX-License-Identifier: MIT */
/* exec.so: a job that runs a program. The registry's `command:` (an argv list, or with
 * `shell: true` one string for /bin/sh -c) and `working_directory:` arrive as this plugin's
 * params, so `plugin: exec.so` with those params is the same job written out.
 *
 * The program is a child of the run's process, in the run's process group: the daemon's
 * deadline (SIGTERM to the group, SIGKILL 5 s later) reaches it and anything it started. Its
 * stdout and stderr are the run's, so its output is logged and kept in history as for any job.
 * Exit status 0 is success, 75 (EX_TEMPFAIL) asks for a retry, anything else is a failure. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <schedulerd/job.h>

#define EXEC_EXIT_RETRY 75
/* what the child exits with when the program cannot be started at all (as a shell does) */
#define EXEC_EXIT_CANNOT_RUN 127

static const sched_job_param exec_params[] = {
        { "command", SCHED_PARAM_LIST, NULL,
          "the program and its arguments, run without a shell; with shell: true, one string for /bin/sh -c" },
        { "shell", SCHED_PARAM_BOOL, "false", "run the one string of command with /bin/sh -c" },
        { "working_directory", SCHED_PARAM_STRING, "", "where the program runs; default the job's state directory" },
        {}
};

static int exec_init(sched_job_ctx *ctx, void **ret_userdata) {
        const char *const *argv;
        const char *wd = "";
        size_t n = 0;
        bool shell = false;

        if (sched_job_param_list(ctx, "command", &argv, &n) < 0 || n == 0 || argv[0][0] == '\0') {
                sched_job_set_message(ctx, "command: found an empty list, expected the program and its arguments");
                return -EINVAL;
        }
        (void) sched_job_param_bool(ctx, "shell", &shell);
        if (shell && n != 1) {
                sched_job_set_message(ctx, "command: found a list of %zu items with shell: true, expected one "
                                      "string for /bin/sh -c", n);
                return -EINVAL;
        }
        (void) sched_job_param_string(ctx, "working_directory", &wd);
        if (wd[0] != '\0' && wd[0] != '/') {
                sched_job_set_message(ctx, "working_directory: found \"%s\", expected an absolute path", wd);
                return -EINVAL;
        }
        *ret_userdata = NULL;
        return 0;
}

/* In the program's child: never returns. */
static _Noreturn void exec_child(const char *const *argv, size_t n, bool shell, const char *wd) {
        /* the run's message pipe and anything else the run process holds is not the program's */
        (void) close_range(STDERR_FILENO + 1, ~0U, 0);
        if (wd[0] != '\0' && chdir(wd) < 0) {
                fprintf(stderr, "cannot enter working_directory %s: %s\n", wd, strerror(errno));
                _exit(EXEC_EXIT_CANNOT_RUN);
        }
        if (shell) {
                execl("/bin/sh", "sh", "-c", argv[0], (char *) NULL);
                fprintf(stderr, "cannot execute /bin/sh: %s\n", strerror(errno));
                _exit(EXEC_EXIT_CANNOT_RUN);
        }
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                _exit(EXEC_EXIT_CANNOT_RUN);
        memcpy(v, argv, n * sizeof(char *));
        execvp(v[0], v);
        fprintf(stderr, "cannot execute %s: %s\n", v[0], strerror(errno));
        _exit(EXEC_EXIT_CANNOT_RUN);
}

static sched_job_result exec_run(sched_job_ctx *ctx) {
        const char *const *argv;
        const char *wd = "";
        size_t n = 0;
        bool shell = false;
        int status;

        if (sched_job_param_list(ctx, "command", &argv, &n) < 0 || n == 0) {
                sched_job_set_message(ctx, "no command to run");
                return SCHED_JOB_FAIL;
        }
        (void) sched_job_param_bool(ctx, "shell", &shell);
        (void) sched_job_param_string(ctx, "working_directory", &wd);

        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                sched_job_set_message(ctx, "cannot fork for %s: %s", argv[0], strerror(errno));
                return SCHED_JOB_RETRY;
        }
        if (pid == 0)
                exec_child(argv, n, shell, wd);

        /* the daemon's SIGTERM at the deadline interrupts this wait; the program got the same
         * signal (same process group) and decides itself how fast it ends */
        for (;;) {
                pid_t w = waitpid(pid, &status, 0);
                if (w == pid)
                        break;
                if (w < 0 && errno != EINTR) {
                        sched_job_set_message(ctx, "cannot wait for %s: %s", argv[0], strerror(errno));
                        return SCHED_JOB_FAIL;
                }
        }

        const char *what = shell ? "command" : argv[0];
        if (WIFSIGNALED(status)) {
                sched_job_set_message(ctx, "%s killed by signal %s", what, sigabbrev_np(WTERMSIG(status)) ?: "?");
                return SCHED_JOB_FAIL;
        }
        int code = WEXITSTATUS(status);
        if (code == 0) {
                sched_job_set_message(ctx, "%s exited with status 0", what);
                return SCHED_JOB_OK;
        }
        if (code == EXEC_EXIT_RETRY) {
                sched_job_set_message(ctx, "%s exited with status 75 (temporary failure): retry", what);
                return SCHED_JOB_RETRY;
        }
        sched_job_set_message(ctx, "%s exited with status %d", what, code);
        return SCHED_JOB_FAIL;
}

SCHEDULERD_JOB_DEFINE(
        .name = "exec",
        .description = "Runs a program (command:, shell:, working_directory:)",
        .params = exec_params,
        .init = exec_init,
        .run = exec_run,
);
