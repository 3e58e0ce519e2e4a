/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/cgroup.h"

/* how long the end of a run waits for its killed cgroup to empty (a process in uninterruptible
 * sleep dies only when that ends: its cgroup is then removed at the next start) */
#define EMPTY_WAIT_MS 1000
/* rounds of the cgroup.kill fallback: each kills what the previous one missed (forks in flight) */
#define KILL_ROUNDS 64
/* pids read per round of the fallback */
#define KILL_BATCH 1024

struct run_cgroup {
        int fd, procs_fd;
        int killed; /* processes in it at its last kill */
        char name[CGROUP_RUN_NAME_MAX];
};

static struct {
        int root_fd, runs_fd;
        char *path;          /* D, for messages */
        bool enabled, pids, kill_file, freeze_file;
        char reason[512];    /* why runs get no cgroup */
        char tasks_why[1024]; /* why limits.tasks is not pids.max */
} cg = { .root_fd = -EBADF, .runs_fd = -EBADF };

int cgroup_parse_self(const char *text, char **ret_path) {
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, "0::", 3) != 0)
                        continue;
                p += 3;
                size_t n = strcspn(p, "\n");
                if (n == 0 || p[0] != '/')
                        continue;
                char *s = strndup(p, n);
                if (!s)
                        return -ENOMEM;
                *ret_path = s;
                return 0;
        }
        return -ENOENT;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static char *unescape_octal(const char *s, size_t n) {
        char *r = malloc(n + 1), *o = r;
        if (!r)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\' && i + 3 < n + 1 && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                    s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                        *o++ = (char) ((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                        i += 3;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        return r;
}

int cgroup_parse_mountinfo(const char *text, char **ret_mount) {
        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t) (end - line) : strlen(line);
                /* "id parent maj:min root mountpoint options [optional...] - fstype source super" */
                const char *f[5] = {};
                size_t fl[5] = {}, k = 0, i = 0;
                while (k < 5 && i < len) {
                        while (i < len && line[i] == ' ')
                                i++;
                        f[k] = line + i;
                        while (i < len && line[i] != ' ')
                                i++;
                        fl[k] = (size_t) (line + i - f[k]);
                        k++;
                }
                const char *sep = NULL;
                for (size_t j = 0; j + 3 <= len; j++)
                        if (memcmp(line + j, " - ", 3) == 0) {
                                sep = line + j + 3;
                                break;
                        }
                size_t rest = sep ? len - (size_t) (sep - line) : 0;
                if (k == 5 && sep && rest >= 8 && memcmp(sep, "cgroup2", 7) == 0 && sep[7] == ' ' && fl[3] == 1 &&
                    f[3][0] == '/') {
                        char *m = unescape_octal(f[4], fl[4]);
                        if (!m)
                                return -ENOMEM;
                        *ret_mount = m;
                        return 0;
                }
                line = end ? end + 1 : NULL;
        }
        return -ENOENT;
}

int cgroup_run_name(const char *job, int64_t id, pid_t warm_pid, char *buf, size_t size) {
        int n = warm_pid > 0 ? snprintf(buf, size, "%s.warm-%d", job, (int) warm_pid)
                             : snprintf(buf, size, "%s.%" PRId64, job, id);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* The whole of a small file (a cgroup's or /proc's), NUL-terminated. */
static int read_at(int dirfd, const char *name, char **ret) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t n = 0, cap = 4096;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (cap - n < 2) {
                        char *b = realloc(buf, cap * 2);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        cap *= 2;
                }
                ssize_t k = read(fd, buf + n, cap - n - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

static int write_at(int dirfd, const char *name, const char *value) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t n = strlen(value);
        ssize_t k = write(fd, value, n);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EIO;
}

/* Whether the space-separated LIST holds WORD. */
static bool word_in(const char *list, const char *word) {
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ' || p[-1] == '\n') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
                        return true;
        return false;
}

/* Enables in DIRFD's subtree each controller it has (one by one: one the kernel refuses must not
 * keep the others off). Returns what its cgroup.subtree_control holds then, or NULL. */
static char *enable_controllers(int dirfd) {
        _cleanup_free_ char *have = NULL;
        char *on = NULL;
        if (read_at(dirfd, "cgroup.controllers", &have) < 0)
                return NULL;
        for (char *save = NULL, *c = strtok_r(have, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
                char w[64];
                snprintf(w, sizeof(w), "+%s", c);
                int q = write_at(dirfd, "cgroup.subtree_control", w);
                if (q < 0)
                        log_debug("Cannot enable the %s controller in %s's subtree: %s", c, cg.path, strerror(-q));
        }
        if (read_at(dirfd, "cgroup.subtree_control", &on) < 0)
                return NULL;
        on[strcspn(on, "\n")] = '\0';
        return on;
}

/* Whether DIRFD's cgroup is empty (cgroup.events: "populated 0"), waiting up to TIMEOUT_MS for it. */
static bool wait_empty(int dirfd, int timeout_ms) {
        _cleanup_close_ int fd = openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        usec_t deadline = clock_now_monotonic() + (usec_t) timeout_ms * USEC_PER_MSEC;
        if (fd < 0)
                return false;
        for (;;) {
                char buf[256];
                ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
                if (n < 0)
                        return false;
                buf[n] = '\0';
                const char *p = strstr(buf, "populated ");
                if (p && p[10] == '0')
                        return true;
                usec_t now = clock_now_monotonic();
                if (now >= deadline)
                        return false;
                /* the kernel wakes POLLPRI when cgroup.events changes */
                struct pollfd pfd = { .fd = fd, .events = POLLPRI };
                (void) poll(&pfd, 1, (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        }
}

/* How many processes DIRFD's cgroup holds (-errno). */
static int count_procs(int dirfd) {
        _cleanup_free_ char *s = NULL;
        int q = read_at(dirfd, "cgroup.procs", &s), n = 0;
        if (q < 0)
                return q;
        for (const char *p = s; *p; p++)
                n += *p == '\n';
        return n;
}

/* SIGKILL to every process of DIRFD's cgroup and its descendants; returns how many processes it
 * held (not counting its descendants'). */
static int kill_cgroup(int dirfd) {
        int n = MAX(count_procs(dirfd), 0);
        if (n == 0 && wait_empty(dirfd, 0))
                return 0;
        if (cg.kill_file && write_at(dirfd, "cgroup.kill", "1") >= 0)
                return n;
        /* before 5.14: pid by pid, frozen first (5.2) so nothing forks between the read and the kill */
        bool frozen = cg.freeze_file && write_at(dirfd, "cgroup.freeze", "1") >= 0;
        for (unsigned round = 0; round < KILL_ROUNDS; round++) {
                _cleanup_free_ char *s = NULL;
                bool any = false;
                if (read_at(dirfd, "cgroup.procs", &s) < 0)
                        break;
                for (char *save = NULL, *p = strtok_r(s, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
                        long pid = strtol(p, NULL, 10);
                        if (pid > 0 && kill((pid_t) pid, SIGKILL) >= 0)
                                any = true;
                }
                /* the children's cgroups: a job running as root may have made some */
                _cleanup_close_ int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *d = dfd >= 0 ? fdopendir(TAKE_FD(dfd)) : NULL;
                for (struct dirent *de; d && (de = readdir(d));) {
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        _cleanup_close_ int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (sub >= 0)
                                (void) kill_cgroup(sub);
                }
                if (d)
                        closedir(d);
                if (!any)
                        break;
        }
        /* a frozen cgroup's killed processes die only once thawed */
        if (frozen)
                (void) write_at(dirfd, "cgroup.freeze", "0");
        return n;
}

/* Removes the cgroup NAME of PARENT and any it holds, deepest first. */
static int remove_cgroup(int parent, const char *name) {
        _cleanup_close_ int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
                if (!d && dfd >= 0)
                        close(dfd);
                for (struct dirent *de; d && (de = readdir(d));)
                        if (de->d_type == DT_DIR && de->d_name[0] != '.')
                                (void) remove_cgroup(fd, de->d_name);
                if (d)
                        closedir(d);
        }
        return unlinkat(parent, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Kills, empties and removes the cgroup NAME under D/runs; returns how many processes it held. */
static int end_cgroup(const char *name, int *ret_left) {
        _cleanup_close_ int fd = openat(cg.runs_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int n = kill_cgroup(fd);
        if (!wait_empty(fd, EMPTY_WAIT_MS))
                return -EBUSY;
        *ret_left = n;
        return remove_cgroup(cg.runs_fd, name);
}

/* The run cgroups a daemon that did not stop cleanly left: nothing of them may live on. */
static void remove_leftovers(void) {
        int dfd = openat(cg.runs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                return;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                int left = 0, q = end_cgroup(de->d_name, &left);
                if (q < 0)
                        log_warning_errno(q, "Cannot remove the cgroup %s/" CGROUP_RUNS "/%s a previous daemon left (%m)%s",
                                          cg.path, de->d_name,
                                          q == -EBUSY ? ": its processes did not die within a second of SIGKILL "
                                                        "(uninterruptible sleep?); the next start tries again."
                                                      : ".");
                else
                        log_notice("Removed the cgroup %s/" CGROUP_RUNS "/%s a previous daemon left, killing the %d "
                                   "process%s still in it.",
                                   cg.path, de->d_name, left, left == 1 ? "" : "es");
        }
        closedir(d);
}

/* Whether the cgroup DIRFD holds no process but this one. */
static int holds_only_self(int dirfd, pid_t *ret_other) {
        _cleanup_free_ char *s = NULL;
        int q = read_at(dirfd, "cgroup.procs", &s);
        if (q < 0)
                return q;
        for (char *save = NULL, *p = strtok_r(s, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
                pid_t pid = (pid_t) strtol(p, NULL, 10);
                if (pid != getpid()) {
                        *ret_other = pid;
                        return 0;
                }
        }
        return 1;
}

static int not_delegated(const char *fmt, ...) _printf_(1, 2);
static int not_delegated(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cg.reason, sizeof(cg.reason), fmt, ap);
        va_end(ap);
        snprintf(cg.tasks_why, sizeof(cg.tasks_why), "runs get no cgroup: %s", cg.reason);
        log_info("Runs get no cgroup of their own: %s. Processes a run leaves behind are ended by the daemon as their "
                 "subreaper instead.",
                 cg.reason);
        return 0;
}

int cgroup_setup(void) {
        _cleanup_free_ char *self = NULL, *mounts = NULL, *mnt = NULL, *rel = NULL, *controllers = NULL;
        int q;

        if (cg.enabled)
                return 1;
        if (read_at(AT_FDCWD, "/proc/self/cgroup", &self) < 0 || cgroup_parse_self(self, &rel) < 0)
                return not_delegated("the host has no cgroup v2 hierarchy (no \"0::\" line in /proc/self/cgroup)");
        if (read_at(AT_FDCWD, "/proc/self/mountinfo", &mounts) < 0 || cgroup_parse_mountinfo(mounts, &mnt) < 0)
                return not_delegated("no cgroup2 file system is mounted (/proc/self/mountinfo)");
        if (streq(rel, "/"))
                return not_delegated("the daemon is in the root cgroup (start it with Delegate=yes, or in a cgroup "
                                     "of its own: schedulerd(8))");

        /* started in D/supervisor (a restart, or systemd's DelegateSubgroup=supervisor): D is the parent */
        char *slash = strrchr(rel, '/');
        bool in_supervisor = streq(slash + 1, CGROUP_SUPERVISOR) && slash != rel;
        if (in_supervisor)
                *slash = '\0';
        free(cg.path);
        if (asprintf(&cg.path, "%s%s", mnt, rel) < 0) {
                cg.path = NULL;
                return -ENOMEM;
        }
        _cleanup_close_ int root = open(cg.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return not_delegated("cannot open %s: %s", cg.path, strerror(errno));
        if (faccessat(root, "cgroup.procs", W_OK, AT_EACCESS) < 0 ||
            faccessat(root, "cgroup.subtree_control", W_OK, AT_EACCESS) < 0 || faccessat(root, ".", W_OK, AT_EACCESS) < 0)
                return not_delegated("%s is not writable by the daemon (%s; systemd: Delegate=yes, and with "
                                     "ProtectControlGroups=yes a ReadWritePaths= of it, as the shipped unit has)",
                                     cg.path, strerror(errno));
        /* D and D/supervisor hold no process but this one: not a login session's cgroup, nor
         * another daemon's whose runs would be taken for leftovers */
        for (unsigned i = 0; i < 2; i++) {
                pid_t other = 0;
                _cleanup_close_ int fd = i == 0 ? openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                                : openat(root, CGROUP_SUPERVISOR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0 && i == 1 && errno == ENOENT)
                        break;
                q = fd < 0 ? -errno : holds_only_self(fd, &other);
                if (q == 0)
                        return not_delegated("%s%s holds another process than the daemon (pid %d): it is not the "
                                             "daemon's alone to divide",
                                             cg.path, i == 1 ? "/" CGROUP_SUPERVISOR : "", (int) other);
                if (q < 0)
                        return not_delegated("cannot read %s%s/cgroup.procs: %s", cg.path,
                                             i == 1 ? "/" CGROUP_SUPERVISOR : "", strerror(-q));
        }

        if (mkdirat(root, CGROUP_SUPERVISOR, 0755) < 0 && errno != EEXIST)
                return not_delegated("cannot create %s/" CGROUP_SUPERVISOR ": %s", cg.path, strerror(errno));
        {
                _cleanup_close_ int sup = openat(root, CGROUP_SUPERVISOR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                q = sup < 0 ? -errno : write_at(sup, "cgroup.procs", "0");
                if (q < 0)
                        return not_delegated("cannot move the daemon into %s/" CGROUP_SUPERVISOR ": %s", cg.path,
                                             strerror(-q));
        }
        cg.root_fd = TAKE_FD(root);
        cg.kill_file = faccessat(cg.root_fd, CGROUP_SUPERVISOR "/cgroup.kill", F_OK, 0) >= 0;
        cg.freeze_file = faccessat(cg.root_fd, CGROUP_SUPERVISOR "/cgroup.freeze", F_OK, 0) >= 0;

        free(enable_controllers(cg.root_fd));
        if (mkdirat(cg.root_fd, CGROUP_RUNS, 0755) < 0 && errno != EEXIST) {
                q = -errno;
                closep(&cg.root_fd);
                cg.root_fd = -EBADF;
                return not_delegated("cannot create %s/" CGROUP_RUNS ": %s", cg.path, strerror(-q));
        }
        cg.runs_fd = openat(cg.root_fd, CGROUP_RUNS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg.runs_fd < 0) {
                q = -errno;
                closep(&cg.root_fd);
                cg.root_fd = -EBADF;
                return not_delegated("cannot open %s/" CGROUP_RUNS ": %s", cg.path, strerror(-q));
        }
        controllers = enable_controllers(cg.runs_fd);
        cg.pids = controllers && word_in(controllers, "pids");
        if (!cg.pids) {
                _cleanup_free_ char *have = NULL;
                (void) read_at(cg.root_fd, "cgroup.controllers", &have);
                if (have)
                        have[strcspn(have, "\n")] = '\0';
                snprintf(cg.tasks_why, sizeof(cg.tasks_why),
                         "the pids controller is not available to %s (its cgroup.controllers: \"%s\"; systemd "
                         "delegates it with Delegate=yes on cgroup v2; on a hybrid host it may be bound to cgroup v1)",
                         cg.path, have ? have : "?");
        }
        cg.enabled = true;
        remove_leftovers();
        log_info("Each run gets a cgroup under %s/" CGROUP_RUNS " (controllers: %s; end by %s).", cg.path,
                 controllers && controllers[0] ? controllers : "none",
                 cg.kill_file ? "cgroup.kill" : "SIGKILL to each process of cgroup.procs");
        return 1;
}

bool cgroup_enabled(void) {
        return cg.enabled;
}

const char *cgroup_tasks_unavailable(void) {
        if (cg.enabled && cg.pids)
                return NULL;
        return cg.tasks_why[0] ? cg.tasks_why : "runs get no cgroup (the daemon did not look for one)";
}

void cgroup_warn_tasks_limits(const registry *reg) {
        const char *why = cgroup_tasks_unavailable();
        if (!why)
                return;
        for (size_t i = 0; i < reg->n_jobs; i++) {
                const job_def *j = reg->jobs[i];
                if (j->limits.tasks == 0)
                        continue;
                uid_t uid = j->identity.user ? j->identity.uid : geteuid();
                if (uid != 0)
                        log_full(LOG_WARNING, 0, j->name, 0, -1,
                                 "%s:%u: limits.tasks %" PRIu64 " cannot be the run's pids.max: %s. It is applied as "
                                 "RLIMIT_NPROC instead, which counts every process of uid %u on the machine, not "
                                 "only this run's.",
                                 j->file, j->line, j->limits.tasks, why, (unsigned) uid);
                else
                        log_full(LOG_WARNING, 0, j->name, 0, -1,
                                 "%s:%u: limits.tasks %" PRIu64 " cannot be the run's pids.max: %s. The job runs as "
                                 "root, which RLIMIT_NPROC does not bind: the limit is NOT enforced. Give the job a "
                                 "user: or the daemon the pids controller.",
                                 j->file, j->line, j->limits.tasks, why);
        }
}

int run_cgroup_new(const char *job, int64_t id, pid_t warm_pid, uint64_t tasks, run_cgroup **ret) {
        if (!cg.enabled) {
                *ret = NULL;
                return 0;
        }
        _cleanup_free_ run_cgroup *c = calloc(1, sizeof(run_cgroup));
        if (!c)
                return -ENOMEM;
        int q = cgroup_run_name(job, id, warm_pid, c->name, sizeof(c->name));
        if (q < 0)
                return q;
        if (mkdirat(cg.runs_fd, c->name, 0755) < 0) {
                int left = 0;
                if (errno != EEXIST)
                        return -errno;
                /* a stale one (a run id that history reused after it was lost): nothing of it lives on */
                q = end_cgroup(c->name, &left);
                if (q < 0)
                        return q;
                if (mkdirat(cg.runs_fd, c->name, 0755) < 0)
                        return -errno;
        }
        c->fd = openat(cg.runs_fd, c->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->fd < 0) {
                q = -errno;
                (void) unlinkat(cg.runs_fd, c->name, AT_REMOVEDIR);
                return q;
        }
        if (tasks > 0 && cg.pids) {
                char v[32];
                snprintf(v, sizeof(v), "%" PRIu64, tasks);
                q = write_at(c->fd, "pids.max", v);
        }
        c->procs_fd = q < 0 ? -EBADF : openat(c->fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (q >= 0 && c->procs_fd < 0)
                q = -errno;
        if (q < 0) {
                close(c->fd);
                (void) unlinkat(cg.runs_fd, c->name, AT_REMOVEDIR);
                return q;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int run_cgroup_enter(const run_cgroup *c) {
        return write(c->procs_fd, "0", 1) == 1 ? 0 : -errno;
}

int run_cgroup_attach(const run_cgroup *c, pid_t pid) {
        char v[32];
        int n = snprintf(v, sizeof(v), "%d", (int) pid);
        return write(c->procs_fd, v, (size_t) n) == n ? 0 : -errno;
}

void run_cgroup_kill(run_cgroup *c) {
        if (c)
                c->killed = kill_cgroup(c->fd);
}

run_cgroup *run_cgroup_end(run_cgroup *c, const char *job, int64_t id, int attempt) {
        if (!c)
                return NULL;
        int n = kill_cgroup(c->fd), left = MAX(n, c->killed);
        if (!wait_empty(c->fd, EMPTY_WAIT_MS))
                log_full(LOG_WARNING, 0, job, (uint64_t) id, attempt,
                         "The run's cgroup %s/" CGROUP_RUNS "/%s still has processes a second after SIGKILL (in "
                         "uninterruptible sleep?); the next start of the daemon removes it.",
                         cg.path, c->name);
        else {
                if (left > 0)
                        log_full(LOG_NOTICE, 0, job, (uint64_t) id, attempt,
                                 "Killed %d process%s the run left behind with its cgroup %s: nothing a run starts "
                                 "outlives it.",
                                 left, left == 1 ? "" : "es", c->name);
                int q = remove_cgroup(cg.runs_fd, c->name);
                if (q < 0)
                        log_full(LOG_WARNING, -q, job, (uint64_t) id, attempt,
                                 "Cannot remove the run's cgroup %s/" CGROUP_RUNS "/%s (%m); the next start of the "
                                 "daemon removes it.",
                                 cg.path, c->name);
        }
        closep(&c->procs_fd);
        closep(&c->fd);
        free(c);
        return NULL;
}
