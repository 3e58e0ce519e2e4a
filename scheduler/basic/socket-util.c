/* SPDX-License-Identifier: MIT */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/log.h"
#include "basic/socket-util.h"

int socket_remove_stale(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : log_error_errno(-errno, "Cannot inspect %s: %m.", path);
        if (!S_ISSOCK(st.st_mode))
                return log_error_errno(-EEXIST, "%s exists and is not a socket; remove it or set another "
                                                "control_socket.", path);
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot create a socket: %m.");
        /* a blocking connect() to a listening socket with a full backlog still succeeds or
         * fails with EAGAIN: either way something is there */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0 || errno == EAGAIN)
                return log_error_errno(-EADDRINUSE, "Something already answers on %s (another schedulerd?); stop "
                                                    "it, or give this daemon another control_socket.",
                                       path);
        if (errno != ECONNREFUSED)
                return log_error_errno(-errno, "Cannot tell whether %s is in use: %m.", path);
        if (unlink(path) < 0 && errno != ENOENT)
                return log_error_errno(-errno, "Cannot remove the stale socket %s: %m.", path);
        return 0;
}
