/* SPDX-License-Identifier: MIT */
/* A worker pool's zygote (worker-zygote.h). */
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "basic/shared-maps.h"
#include "basic/socket-util.h"
#include "core/fork-sibling.h"
#include "core/worker-zygote.h"
#include "core/worker.h"

/* where the zygote keeps its socket once it has closed everything else of the daemon's */
#define ZYGOTE_SOCKET_FD 3
/* a fork takes a millisecond or so; beyond this the zygote is taken for stuck */
#define ZYGOTE_ANSWER_MS 5000

typedef struct zygote_request {
        uint8_t marker[WORKER_MARKER_SIZE];
} zygote_request;

typedef struct zygote_reply {
        int32_t pid; /* or -errno */
} zygote_reply;

struct worker_zygote {
        int fd;
        pid_t pid;
};

static void zygote_serve(const registry *reg, const job_def *proto, pid_t daemon, const zygote_request *req,
                         const int fds[2]) {
        zygote_reply rep = { .pid = -EINVAL };

        if (req && fds[0] >= 0 && fds[1] >= 0) {
                pid_t pid = fork_sibling();
                if (pid == 0) {
                        close(ZYGOTE_SOCKET_FD);
                        worker_main(reg, proto, fds[0], fds[1], daemon, req->marker);
                }
                rep.pid = pid < 0 ? -errno : pid;
        }
        while (send(ZYGOTE_SOCKET_FD, &rep, sizeof(rep), MSG_NOSIGNAL) < 0)
                if (errno != EINTR)
                        _exit(EXIT_FAILURE);
}

_Noreturn static void zygote_main(const registry *reg, const job_def *proto, int fd, pid_t daemon) {
        /* it must not outlive the daemon, nor hold what the daemon opened */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != daemon)
                _exit(EXIT_FAILURE);
        if (fd != ZYGOTE_SOCKET_FD && dup2(fd, ZYGOTE_SOCKET_FD) < 0)
                _exit(EXIT_FAILURE);
        (void) close_range(ZYGOTE_SOCKET_FD + 1, ~0U, 0);
        (void) prctl(PR_SET_NAME, "sched-zygote");
        /* what each worker would drop first, dropped once: the daemon's writable shared mappings
         * (each worker checks again) and its free heap, whose pages every fork would copy */
        (void) shared_maps_drop_writable();
        (void) malloc_trim(0);

        for (;;) {
                zygote_request req;
                int fds[2];

                ssize_t n = recv_with_fds(ZYGOTE_SOCKET_FD, &req, sizeof(req), fds, 2);
                if (n == 0 || (n < 0 && n != -EMSGSIZE))
                        _exit(n == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
                zygote_serve(reg, proto, daemon, n == (ssize_t) sizeof(req) ? &req : NULL, fds);
                for (int i = 0; i < 2; i++)
                        if (fds[i] >= 0)
                                close(fds[i]);
        }
}

int worker_zygote_new(const registry *reg, const job_def *proto, worker_zygote **ret) {
        _cleanup_free_ worker_zygote *z = calloc(1, sizeof(worker_zygote));
        pid_t daemon = getpid();
        int fd;

        if (!z)
                return -ENOMEM;
        pid_t pid = fork_with_socket(&fd);
        if (pid < 0)
                return pid;
        if (pid == 0)
                zygote_main(reg, proto, fd, daemon);
        z->fd = fd;
        z->pid = pid;
        *ret = TAKE_PTR(z);
        return 0;
}

int worker_zygote_fork(worker_zygote *z, int sock, int out, const uint8_t *marker, pid_t *ret_pid) {
        zygote_request req;
        zygote_reply rep;
        int fds[2] = { sock, out };
        ssize_t n;
        int k;

        memcpy(req.marker, marker, sizeof(req.marker));
        if (send_with_fds(z->fd, &req, sizeof(req), fds, 2, MSG_NOSIGNAL) < 0)
                return -EPIPE;
        /* the daemon waits for this fork as it waited for its own: a worker is forked when a
         * pool first needs one and when one is replaced, not per run */
        struct pollfd p = { .fd = z->fd, .events = POLLIN };
        do
                k = poll(&p, 1, ZYGOTE_ANSWER_MS);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -EPIPE;
        if (k == 0)
                return -ETIMEDOUT;
        do
                n = recv(z->fd, &rep, sizeof(rep), MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) sizeof(rep))
                return -EPIPE;
        if (rep.pid < 0)
                return rep.pid == -EINVAL ? -EPIPE : rep.pid;
        if (rep.pid == 0)
                return -EPIPE;
        *ret_pid = rep.pid;
        return 0;
}

pid_t worker_zygote_pid(const worker_zygote *z) {
        return z->pid;
}

worker_zygote *worker_zygote_free(worker_zygote *z) {
        if (!z)
                return NULL;
        if (z->fd >= 0)
                close(z->fd);
        (void) kill(z->pid, SIGKILL);
        (void) waitpid(z->pid, NULL, 0);
        free(z);
        return NULL;
}
