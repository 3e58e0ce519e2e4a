/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "basic/socket-util.h"
#include "core/fork-sibling.h"
#include "core/jobctx.h"
#include "core/launcher.h"
#include "basic/log.h"
#include "core/run.h"

/* where the launcher keeps its socket once it has closed everything else of the daemon's */
#define LAUNCHER_SOCKET_FD 3

typedef struct launch_request {
        uint64_t token;
        uint64_t job;
        usec_t scheduled;
        int64_t slot;
} launch_request;

typedef struct launch_reply {
        uint64_t token;
        int32_t pid; /* or -errno */
} launch_reply;

struct launcher {
        int fd;
        pid_t pid;
};

static void launcher_serve(const registry *reg, start_gate *gate, pid_t daemon, int fd, const launch_request *req,
                           int fds[2]) {
        launch_reply rep = { .token = req->token };
        _cleanup_free_ char *dir = NULL;

        if (req->job >= reg->n_jobs || req->slot < 0 || req->slot > INT_MAX || fds[0] < 0 || fds[1] < 0)
                rep.pid = -EINVAL;
        else if (!(dir = jobctx_state_dir_path(reg, reg->jobs[req->job])))
                rep.pid = -ENOMEM;
        else {
                pid_t pid = fork_sibling();
                if (pid == 0)
                        run_child(reg->jobs[req->job], dir, 0, req->scheduled, 0, fds[0], fds[1], gate, (int) req->slot,
                                  daemon);
                rep.pid = pid < 0 ? -errno : pid;
        }
        for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        /* blocking: the daemon reads replies in its event loop, and a full socket is back-pressure */
        while (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) < 0)
                if (errno != EINTR)
                        _exit(EXIT_FAILURE);
}

_Noreturn static void launcher_main(const registry *reg, start_gate *gate, int fd, pid_t daemon) {
        /* the launcher must not outlive the daemon; nor hold what the daemon opened */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != daemon)
                _exit(EXIT_FAILURE);
        if (fd != LAUNCHER_SOCKET_FD && dup2(fd, LAUNCHER_SOCKET_FD) < 0)
                _exit(EXIT_FAILURE);
        (void) close_range(LAUNCHER_SOCKET_FD + 1, ~0U, 0);
        fd = LAUNCHER_SOCKET_FD;
        (void) prctl(PR_SET_NAME, "sched-launcher");
        /* every page it keeps is a page table entry each fork copies */
        (void) malloc_trim(0);

        for (;;) {
                launch_request req;
                int fds[2];

                ssize_t n = recv_with_fds(fd, &req, sizeof(req), fds, 2);
                if (n == 0 || (n < 0 && n != -EMSGSIZE))
                        _exit(n == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
                /* answered with -EINVAL; a truncated one still has its token */
                if (n != (ssize_t) sizeof(req)) {
                        if (n >= 0 && n < (ssize_t) sizeof(req.token))
                                req.token = 0;
                        req.job = UINT64_MAX;
                }
                launcher_serve(reg, gate, daemon, fd, &req, fds);
        }
}

int launcher_new(const registry *reg, start_gate *gate, launcher **ret) {
        _cleanup_free_ launcher *l = calloc(1, sizeof(launcher));
        pid_t daemon = getpid();
        int fd;

        if (!l)
                return -ENOMEM;
        pid_t pid = fork_with_socket(&fd);
        if (pid < 0)
                return pid;
        if (pid == 0)
                launcher_main(reg, gate, fd, daemon);
        (void) fcntl(fd, F_SETFL, O_NONBLOCK);
        l->fd = fd;
        l->pid = pid;
        *ret = TAKE_PTR(l);
        return 0;
}

int launcher_request(launcher *l, uint64_t token, size_t job, usec_t scheduled, int slot, int out_w, int msg_w) {
        launch_request req = { .token = token, .job = job, .scheduled = scheduled, .slot = slot };
        int fds[2] = { out_w, msg_w };
        int q = send_with_fds(l->fd, &req, sizeof(req), fds, 2, MSG_NOSIGNAL | MSG_DONTWAIT);
        return q == -EWOULDBLOCK ? -EAGAIN : q;
}

int launcher_read_reply(launcher *l, uint64_t *ret_token, int *ret_pid) {
        launch_reply rep;
        ssize_t n;

        do
                n = recv(l->fd, &rep, sizeof(rep), MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -EPIPE;
        if (n != (ssize_t) sizeof(rep))
                return -EPIPE; /* EOF, or not our protocol */
        *ret_token = rep.token;
        *ret_pid = rep.pid;
        return 0;
}

int launcher_fd(const launcher *l) {
        return l->fd;
}

pid_t launcher_pid(const launcher *l) {
        return l->pid;
}

launcher *launcher_free(launcher *l) {
        if (!l)
                return NULL;
        if (l->fd >= 0)
                close(l->fd);
        free(l);
        return NULL;
}
