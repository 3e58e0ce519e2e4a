/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "basic/fs-util.h"
#include "basic/log.h"
#include "core/state-dir.h"

#define STATE_LOCK_NAME "schedulerd.lock"

/* held until exit: closing it would let a second daemon in */
static int lock_fd = -EBADF;

static pid_t read_pid(int fd) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        long v = strtol(buf, NULL, 10);
        return v > 0 && v <= INT32_MAX ? (pid_t) v : 0;
}

int state_dir_claim(const char *state_dir) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        char buf[32];
        int q;

        if (lock_fd >= 0)
                return 0;
        q = mkdir_p(state_dir, 0750);
        if (q < 0)
                return log_error_errno(q, "Cannot create state directory %s: %m; create it (mode 0750) or point "
                                          "scheduler.state_dir (or --state-dir) at a writable directory.",
                                       state_dir);
        if (asprintf(&path, "%s/" STATE_LOCK_NAME, state_dir) < 0)
                return -ENOMEM;
        /* not following a link: the daemon would write its pid through it */
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot open lock file %s: %m; the state directory must be writable "
                                               "by schedulerd and the file must not be a symbolic link.",
                                       path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return log_error_errno(-errno, "Cannot lock %s: %m.", path);
                pid_t other = read_pid(fd);
                if (other > 0)
                        log_error("Another schedulerd (pid %d) already runs on state directory %s (it holds %s); "
                                  "stop it first, or give this one its own state_dir and control_socket.",
                                  (int) other, state_dir, path);
                else
                        log_error("Another schedulerd already runs on state directory %s (it holds %s); stop it "
                                  "first, or give this one its own state_dir and control_socket.",
                                  state_dir, path);
                return -EBUSY;
        }
        int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) n, 0) != n)
                log_warning_errno(-errno, "Cannot write the pid to %s: %m; a second daemon will not be able to "
                                          "name this one.",
                                  path);
        lock_fd = TAKE_FD(fd);
        return 0;
}

int state_dir_check(const char *dir, char **ret_error) {
        _cleanup_free_ char *p = strdup(dir);
        struct stat st;
        const char *what = "used";
        int r;

        if (!p)
                return -ENOMEM;
        /* the directory, or the nearest existing one above it that would hold it */
        for (;;) {
                if (stat(p, &st) >= 0)
                        break;
                if (errno != ENOENT)
                        goto fail;
                char *slash = strrchr(p, '/');
                if (!slash)
                        return 0; /* relative and nothing exists: the daemon resolves it elsewhere */
                if (slash == p)
                        slash[1] = '\0';
                else
                        *slash = '\0';
                what = "created";
        }
        if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                goto fail;
        }
        if (access(p, W_OK | X_OK) < 0)
                goto fail;
        return 0;

fail:
        r = -errno;
        if (ret_error && asprintf(ret_error, "%s cannot be %s: %s%s%s; make it writable for schedulerd, or choose "
                                              "another directory",
                                  dir, what, streq(p, dir) ? "" : p, streq(p, dir) ? "" : ": ", strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}
