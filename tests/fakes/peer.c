/* SPDX-License-Identifier: MIT */
#include "peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *peer_fakes_dir(void) {
        static char buf[PATH_MAX];
        const char *top = getenv("top_srcdir");
        snprintf(buf, sizeof(buf), "%s/tests/fakes", top && *top ? top : ".");
        return buf;
}

static int spawn(char *const argv[], int out_fd, pid_t *ret) {
        posix_spawn_file_actions_t fa;
        int r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (out_fd >= 0)
                posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        else
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        r = posix_spawnp(ret, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

bool peer_program_works(const char *program, const char *arg) {
        char *argv[] = { (char *) program, (char *) arg, NULL };
        return peer_command_works(argv);
}

bool peer_command_works(char *const argv[]) {
        int devnull, status;
        pid_t pid;

        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (spawn(argv, devnull, &pid) < 0) {
                close(devnull);
                return false;
        }
        close(devnull);
        if (waitpid(pid, &status, 0) < 0)
                return false;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int peer_start(char *const argv[], peer *ret) {
        char line[4096];
        size_t len = 0;
        int fds[2], r;
        pid_t pid;
        json_error_t jerr;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        r = spawn(argv, fds[1], &pid);
        close(fds[1]);
        if (r < 0) {
                close(fds[0]);
                return r;
        }

        /* Read until the first newline; 30 s is generous for node's start-up on a slow CI. */
        for (;;) {
                struct pollfd p = { .fd = fds[0], .events = POLLIN };
                ssize_t n;

                r = poll(&p, 1, 30000);
                if (r <= 0) {
                        r = r == 0 ? -ETIMEDOUT : -errno;
                        break;
                }
                n = read(fds[0], line + len, sizeof(line) - 1 - len);
                if (n <= 0) {
                        r = -ECHILD;
                        break;
                }
                len += (size_t) n;
                line[len] = '\0';
                if (strchr(line, '\n')) {
                        r = 0;
                        break;
                }
                if (len == sizeof(line) - 1) {
                        r = -EBADMSG;
                        break;
                }
        }
        close(fds[0]); /* the peers print nothing more on stdout */

        if (r == 0) {
                ret->ready = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
                if (!json_is_object(ret->ready)) {
                        json_decref(ret->ready);
                        ret->ready = NULL;
                        r = -EBADMSG;
                }
        }
        if (r < 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return r;
        }
        ret->pid = pid;
        return 0;
}

void peer_stop(peer *p) {
        if (!p)
                return;
        if (p->pid > 0) {
                int status;
                kill(p->pid, SIGTERM);
                for (int i = 0; i < 500; i++) {
                        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
                                goto reaped;
                        nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
                }
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &status, 0);
        }
reaped:
        json_decref(p->ready);
        p->ready = NULL;
        p->pid = 0;
}

typedef struct buf {
        char *data;
        size_t size;
} buf;

static size_t buf_write(char *data, size_t size, size_t nmemb, void *userdata) {
        buf *b = userdata;
        size_t n = size * nmemb;
        char *p = realloc(b->data, b->size + n + 1);
        if (!p)
                return 0;
        memcpy(p + b->size, data, n);
        b->data = p;
        b->size += n;
        b->data[b->size] = '\0';
        return n;
}

int peer_http(const char *method, const char *url, const char *body, long *ret_status, char **ret_body) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        buf b = {};
        CURLcode rc;
        long status = 0;

        if (!c)
                return -ENOMEM;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (body) {
                h = curl_slist_append(h, "Content-Type: application/json");
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        }
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (rc != CURLE_OK) {
                free(b.data);
                return -EIO;
        }
        *ret_status = status;
        if (ret_body)
                *ret_body = b.data;
        else
                free(b.data);
        return 0;
}
