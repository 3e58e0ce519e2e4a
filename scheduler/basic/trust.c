/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "basic/macro.h"
#include "basic/trust.h"

bool trust_uid_ok(unsigned uid) {
        return uid == 0 || uid == (unsigned) geteuid();
}

static int refuse(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int refuse(char **ret_error, int r, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                char *s;
                va_start(ap, fmt);
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                *ret_error = s;
        }
        return r;
}

static void owner_name(uid_t uid, char *buf, size_t size) {
        struct passwd *pw = getpwuid(uid);
        if (pw)
                snprintf(buf, size, "%u (%s)", (unsigned) uid, pw->pw_name);
        else
                snprintf(buf, size, "%u", (unsigned) uid);
}

/* Checks what ST (of PATH, a "directory" or "file" by WHAT) says. HOLDER: PATH is the directory
 * holding the checked file, which gets no sticky exception. */
static int check_stat(const struct stat *st, const char *what, const char *path, bool holder, char **ret_error) {
        char owner[64];

        if (!trust_uid_ok(st->st_uid)) {
                owner_name(st->st_uid, owner, sizeof(owner));
                if (geteuid() == 0)
                        return refuse(ret_error, -EPERM,
                                      "%s %s is owned by uid %s; expected root, as anything it holds runs as root: "
                                      "chown root %s (or move the file somewhere only root can write)",
                                      what, path, owner, path);
                return refuse(ret_error, -EPERM,
                              "%s %s is owned by uid %s; expected root or uid %u (the daemon's user): chown it to one "
                              "of them (or move the file somewhere only they can write)",
                              what, path, owner, (unsigned) geteuid());
        }
        if ((st->st_mode & (S_IWGRP | S_IWOTH)) == 0)
                return 0;
        if (S_ISDIR(st->st_mode) && !holder && (st->st_mode & S_ISVTX))
                return 0; /* like /tmp: others cannot rename or remove the (trusted) entry below */
        return refuse(ret_error, -EPERM,
                      "%s %s is writable by %s (mode %04o); expected no write access for group and others, as anyone "
                      "who can write there can make the daemon run their code: chmod go-w %s",
                      what, path, (st->st_mode & S_IWOTH) ? "others" : "its group", (unsigned) (st->st_mode & 07777),
                      path);
}

/* Walks the absolute, symlink-free path RESOLVED from / and returns an O_PATH descriptor of
 * its last directory, every directory on the way checked. */
static int walk_dirs(const char *resolved, bool sticky_holder, int *ret_fd, char **ret_error) {
        _cleanup_free_ char *cur = calloc(1, strlen(resolved) + 2);
        _cleanup_close_ int fd = -EBADF;
        const char *s = resolved;
        struct stat st;
        int r;

        if (!cur)
                return -ENOMEM;
        fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return refuse(ret_error, -errno, "cannot open /: %s", strerror(errno));
        strcpy(cur, "/");

        for (;;) {
                while (*s == '/')
                        s++;
                size_t n = strcspn(s, "/");
                bool last = n == 0;

                if (fstat(fd, &st) < 0)
                        return refuse(ret_error, -errno, "cannot inspect directory %s: %s", cur, strerror(errno));
                r = check_stat(&st, "directory", cur, last && !sticky_holder, ret_error);
                if (r < 0)
                        return r;
                if (last)
                        break;

                if (!streq(cur, "/"))
                        strcat(cur, "/");
                strncat(cur, s, n);
                int nfd = openat(fd, cur + strlen(cur) - n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0) {
                        r = -errno;
                        return refuse(ret_error, r, "cannot open directory %s: %s%s", cur, strerror(-r),
                                      r == -ELOOP || r == -ENOTDIR ? " (it changed while it was checked)" : "");
                }
                close(fd);
                fd = nfd;
                s += n;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int trust_open_dir(const char *path, int *ret_fd, char **ret_error) {
        return trust_open_dir_full(path, 0, ret_fd, ret_error);
}

int trust_open_dir_full(const char *path, trust_flags flags, int *ret_fd, char **ret_error) {
        _cleanup_free_ char *resolved = realpath(path, NULL);
        if (!resolved) {
                int r = -errno;
                if (r == -ENOMEM)
                        return r;
                return refuse(ret_error, r, "cannot resolve directory %s: %s", path, strerror(-r));
        }
        return walk_dirs(resolved, flags & TRUST_STICKY_HOLDER, ret_fd, ret_error);
}

int trust_open_file(const char *path, trust_flags flags, int *ret_fd, char **ret_error) {
        _cleanup_free_ char *resolved = NULL, *dir = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        const char *base;
        struct stat st;
        int r;

        if (flags & TRUST_FOLLOW) {
                resolved = realpath(path, NULL);
                if (!resolved) {
                        r = -errno;
                        return r == -ENOMEM ? r : refuse(ret_error, r, "cannot resolve %s: %s", path, strerror(-r));
                }
                path = resolved;
        }
        const char *slash = strrchr(path, '/');
        if (!slash) {
                dir = strdup(".");
                base = path;
        } else {
                dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                base = slash + 1;
        }
        if (!dir)
                return -ENOMEM;
        if (isempty(base) || streq(base, ".") || streq(base, ".."))
                return refuse(ret_error, -EISDIR, "%s: expected a file name, not a directory", path);

        r = trust_open_dir_full(dir, flags, &dfd, ret_error);
        if (r < 0)
                return r;
        fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP)
                        return refuse(ret_error, -EPERM,
                                      "%s is a symbolic link; expected the file itself, so the file checked is the "
                                      "one used: replace the link with the file it points to",
                                      path);
                return refuse(ret_error, r, "cannot open %s: %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0)
                return refuse(ret_error, -errno, "cannot inspect %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return refuse(ret_error, S_ISDIR(st.st_mode) ? -EISDIR : -EPERM, "%s is not a regular file", path);
        r = check_stat(&st, "file", path, false, ret_error);
        if (r < 0)
                return r;
        /* O_NONBLOCK only kept a FIFO from blocking the open; reads should block as usual */
        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        *ret_fd = TAKE_FD(fd);
        return 0;
}
