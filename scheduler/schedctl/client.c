/* SPDX-License-Identifier: MIT */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "basic/clock.h"
#include "schedctl/client.h"

int ctl_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return TAKE_FD(fd);
}

static int send_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return negative_errno();
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

/* Milliseconds for poll() until DEADLINE (USEC_INFINITY: -1, forever). */
static int poll_timeout(usec_t deadline) {
        if (deadline == USEC_INFINITY)
                return -1;
        usec_t now = clock_now_monotonic();
        if (now >= deadline)
                return 0;
        usec_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return ms > INT32_MAX ? INT32_MAX : (int) ms;
}

int ctl_call(int fd, json_t *req, usec_t timeout, json_t **ret_reply) {
        usec_t deadline = timeout == USEC_INFINITY ? USEC_INFINITY : clock_now_monotonic() + timeout;
        _cleanup_free_ char *line = json_dumps(req, JSON_COMPACT), *buf = NULL;
        size_t len = 0, cap = 0;
        int q;

        if (!line)
                return -ENOMEM;
        size_t n = strlen(line);
        /* json_dumps' terminating NUL becomes the line's end */
        line[n] = '\n';
        q = send_all(fd, line, n + 1);
        if (q < 0)
                return q;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = poll(&p, 1, poll_timeout(deadline));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return -ETIMEDOUT;
                if (cap - len < 4096) {
                        if (cap >= CTL_REPLY_MAX)
                                return -EBADMSG;
                        size_t ncap = cap ? cap * 2 : 16384;
                        char *nb = realloc(buf, ncap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap = ncap;
                }
                ssize_t r = recv(fd, buf + len, cap - len, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return errno == ECONNRESET ? -ECONNRESET : negative_errno();
                if (r == 0)
                        return -ECONNRESET;
                char *nl = memchr(buf + len, '\n', (size_t) r);
                len += (size_t) r;
                /* a long reply (a list of 100,000 jobs) comes in batches: silence is the timeout */
                if (timeout != USEC_INFINITY)
                        deadline = clock_now_monotonic() + timeout;
                if (!nl)
                        continue;
                json_t *reply = json_loadb(buf, (size_t) (nl - buf), 0, NULL);
                if (!json_is_object(reply)) {
                        json_decref(reply);
                        return -EBADMSG;
                }
                *ret_reply = reply;
                return 0;
        }
}
