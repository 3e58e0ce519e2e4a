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

int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t n_fds, int flags) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(SOCKET_FDS_MAX * sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                .msg_controllen = CMSG_SPACE(n_fds * sizeof(int)),
        };

        if (n_fds == 0 || n_fds > SOCKET_FDS_MAX)
                return -EINVAL;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
        while (sendmsg(sock, &mh, flags) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

ssize_t recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(SOCKET_FDS_MAX * sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control),
        };
        ssize_t n;

        if (n_fds > SOCKET_FDS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n_fds; i++)
                fds[i] = -EBADF;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int v[SOCKET_FDS_MAX];
                memcpy(v, CMSG_DATA(c), MIN(got, (size_t) SOCKET_FDS_MAX) * sizeof(int));
                if (got == n_fds)
                        memcpy(fds, v, n_fds * sizeof(int));
                else
                        for (size_t i = 0; i < MIN(got, (size_t) SOCKET_FDS_MAX); i++)
                                close(v[i]);
        }
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                return -EMSGSIZE;
        return n;
}

pid_t fork_with_socket(int *ret_fd) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int q = -errno;
                close(sv[0]);
                close(sv[1]);
                return q;
        }
        close(sv[pid == 0 ? 0 : 1]);
        *ret_fd = sv[pid == 0 ? 1 : 0];
        return pid;
}
