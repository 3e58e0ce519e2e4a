/* SPDX-License-Identifier: MIT */
#include <fcntl.h>

#include "core/job-credentials.h"
#include "core/jobctx.h"

typedef struct credential {
        const char *name; /* the job's (in the registry) */
        char *data;
        size_t size;
} credential;

/* a run child has one job: its credentials live as long as the process */
static credential *loaded;
static size_t n_loaded;

bool job_credential_name_is_valid(const char *name) {
        if (isempty(name) || streq(name, ".") || streq(name, "..") || strlen(name) > 255)
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                      *p == '.' || *p == '@' || *p == '-'))
                        return false;
        return true;
}

static int read_credential(int dir_fd, const char *name, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        buf = malloc(JOB_CREDENTIAL_MAX + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf + size, JOB_CREDENTIAL_MAX + 1 - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int q = -errno;
                        close(fd);
                        return q;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > JOB_CREDENTIAL_MAX) {
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

void job_credentials_load(const job_def *def) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        int dir_fd;

        if (def->n_credentials == 0)
                return;
        if (!dir) {
                fprintf(stderr, "<4/%s>credentials: $CREDENTIALS_DIRECTORY is not set (the daemon was started without "
                                "LoadCredential=); the run gets none of its %zu credential(s)\n", jobctx_log_tag(),
                        def->n_credentials);
                return;
        }
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                fprintf(stderr, "<4/%s>credentials: cannot open $CREDENTIALS_DIRECTORY %s: %m\n", jobctx_log_tag(), dir);
                return;
        }
        loaded = calloc(def->n_credentials, sizeof(credential));
        for (size_t i = 0; loaded && i < def->n_credentials; i++) {
                credential *c = &loaded[n_loaded];
                int q = read_credential(dir_fd, def->credentials[i], &c->data, &c->size);
                if (q < 0) {
                        fprintf(stderr, "<4/%s>credential \"%s\": cannot read %s/%s: %s; expected LoadCredential=%s:... "
                                        "in the daemon's unit\n", jobctx_log_tag(), def->credentials[i], dir, def->credentials[i],
                                strerror(-q), def->credentials[i]);
                        continue;
                }
                c->name = def->credentials[i];
                n_loaded++;
        }
        close(dir_fd);
}

int job_credential_get(sched_job_ctx *ctx, const char *name, const char **ret_data, size_t *ret_size) {
        for (size_t i = 0; name && i < n_loaded; i++)
                if (streq(loaded[i].name, name)) {
                        *ret_data = loaded[i].data;
                        if (ret_size)
                                *ret_size = loaded[i].size;
                        return 0;
                }
        return -ENOENT;
}
