/* SPDX-License-Identifier: MIT */
/* What runs leave behind. The daemon is a child subreaper, and so is the main process of every
 * run: a process a run started stays below that run while its main process lives (even after
 * setsid() and a double fork), and when the main process ends, whatever is left becomes a
 * child of the daemon instead of PID 1. Those are the children of the daemon that are none of
 * its runs, warm runs or launchers; they are killed and reaped when a run ends, so nothing a
 * run started outlives it. Where runs have cgroups (core/cgroup.h), a run's cgroup is killed
 * first, as one, and the sweep only reaps what that killed. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "basic/clock.h"
#include "basic/log.h"
#include "core/cgroup.h"
#include "core/manager-internal.h"

/* orphans looked at per sweep at most (the rest at the next one) */
#define ORPHANS_MAX 256
/* how long a sweep waits for the orphans it killed to die (a process in uninterruptible sleep
 * dies only when that ends: it is reaped by a later sweep) */
#define ORPHAN_WAIT_MS 1000
/* a sweep repeats while it finds some: the orphans' own children come up one generation each */
#define SWEEPS_MAX 16
/* a child that may be a launcher's fork not announced yet is looked at again this much later */
#define RECHECK_DELAY (1 * USEC_PER_SEC)

typedef enum child_kind {
        CHILD_OTHER,    /* gone, not ours to end, or forked by the daemon's own code */
        CHILD_ORPHAN,   /* left behind by a run */
        CHILD_UNSURE,   /* a group leader in the daemon's session: a run's main process in the
                         * making (a launcher's fork whose pid is on its way), or a job's process
                         * that made itself a group without a session */
} child_kind;

int manager_setup_subreaper(manager *m) {
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return log_warning_errno(-errno, "Cannot make the daemon a child subreaper (%m): processes a run "
                                                 "leaves behind outlive it.");
        m->subreaper = true;
        return 0;
}

static int pid_cmp(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return CMP(x, y);
}

/* The daemon's own children, sorted: the main processes of its runs (warm or not, running, or
 * EXITED, which just ended) and its launchers. NULL on OOM. */
static pid_t *own_children(manager *m, pid_t exited, size_t *ret_n) {
        size_t n_workers = worker_pools_pids(m->workers, NULL, 0);
        size_t n = 1, cap = 1 + m->n_running + m->n_warm + n_workers;
        for (const struct launcher_slot *x = m->launchers; x; x = manager_launcher_next(x))
                cap++;
        pid_t *v = malloc(cap * sizeof(pid_t));
        if (!v)
                return NULL;
        v[0] = exited;
        /* idle workers are their own group leaders in the daemon's session, like a run's main process */
        n += worker_pools_pids(m->workers, v + n, n_workers);
        for (const run *list = m->runs;; list = m->warm_runs) {
                for (const run *r = list; r && n < cap; r = r->next)
                        if (r->pid > 0)
                                v[n++] = r->pid;
                if (list == m->warm_runs)
                        break;
        }
        for (const struct launcher_slot *x = m->launchers; x && n < cap; x = manager_launcher_next(x))
                v[n++] = manager_launcher_pid(x);
        qsort(v, n, sizeof(pid_t), pid_cmp);
        *ret_n = n;
        return v;
}

/* What PID, a child of the daemon that is none of its known ones, is (*ZOMBIE: dead already,
 * only to be reaped). Plugins' init callbacks run in the daemon: what they fork shares its
 * process group and is left alone. */
static child_kind classify_child(pid_t pid, bool *zombie) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return CHILD_OTHER;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return CHILD_OTHER;
        buf[n] = '\0';
        /* "pid (comm) state ppid pgrp session ...": comm may hold anything, so from its last ')' */
        const char *p = strrchr(buf, ')');
        int ppid, pgrp, sid;
        char state;
        if (!p || sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4 || ppid != getpid() ||
            pgrp == getpgrp())
                return CHILD_OTHER;
        *zombie = state == 'Z';
        return pgrp == pid && sid == getsid(0) ? CHILD_UNSURE : CHILD_ORPHAN;
}

static bool launches_pending(const manager *m) {
        for (const run *list = m->runs;; list = m->warm_runs) {
                for (const run *r = list; r; r = r->next)
                        if (r->launching)
                                return true;
                if (list == m->warm_runs)
                        return false;
        }
}

/* The daemon's children: its children file, or a scan of /proc where the kernel has none. */
static size_t list_children(pid_t *v, size_t max) {
        char path[64];
        size_t n = 0;
        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int) getpid());
        FILE *f = fopen(path, "re");
        if (f) {
                int pid;
                while (n < max && fscanf(f, "%d", &pid) == 1)
                        v[n++] = pid;
                fclose(f);
                return n;
        }
        DIR *d = opendir("/proc");
        if (!d)
                return 0;
        for (struct dirent *de; n < max && (de = readdir(d));) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                v[n++] = (pid_t) pid; /* is_orphan() checks the parent */
        }
        closedir(d);
        return n;
}

/* Kills the orphans of this generation and waits (bounded) for them; returns how many, or 0
 * when some did not die in time (the next generation comes up only when they do). */
static size_t sweep_once(manager *m, const run *r, pid_t exited, bool *unsure) {
        size_t max = 2 * (m->n_running + m->n_warm) + worker_pools_pids(m->workers, NULL, 0) + ORPHANS_MAX, n_own = 0,
               n = 0;
        _cleanup_free_ pid_t *kids = malloc(max * sizeof(pid_t)), *own = own_children(m, exited, &n_own);
        struct pollfd pfd[ORPHANS_MAX];
        pid_t pid[ORPHANS_MAX];
        size_t n_kids = kids && own ? list_children(kids, max) : 0;
        bool pending = launches_pending(m);
        size_t n_live = 0;
        /* tests prove the cgroup path alone ends a run's processes: the sweep only reaps */
        static int reap_only = -1;
        if (reap_only < 0)
                reap_only = !!getenv("SCHEDULERD_TEST_ORPHANS_REAP_ONLY");

        for (size_t i = 0; i < n_kids && n < ORPHANS_MAX; i++) {
                if (bsearch(&kids[i], own, n_own, sizeof(pid_t), pid_cmp))
                        continue;
                bool zombie = false;
                child_kind k = classify_child(kids[i], &zombie);
                if (k == CHILD_UNSURE && pending) {
                        *unsure = true; /* looked at again once the launcher's answers are in */
                        continue;
                }
                if (k == CHILD_OTHER || (reap_only && !zombie))
                        continue;
                int fd = (int) syscall(SYS_pidfd_open, kids[i], 0);
                if (fd < 0)
                        continue;
                if (!zombie) {
                        (void) syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
                        n_live++;
                }
                pfd[n] = (struct pollfd) { .fd = fd, .events = POLLIN };
                pid[n++] = kids[i];
        }
        if (n == 0)
                return 0;
        /* the dead ones were killed with the run's cgroup, and said so there */
        if (n_live > 0)
                log_full(LOG_NOTICE, 0, r ? r->def->name : NULL, r ? (uint64_t) r->id : 0, r ? (int) r->attempt : -1,
                         "Killed %zu process%s the run left behind (pid %d%s): nothing a run starts outlives it.",
                         n_live, n_live == 1 ? "" : "es", (int) pid[0], n > 1 ? ", ..." : "");
        usec_t deadline = clock_now_monotonic() + ORPHAN_WAIT_MS * USEC_PER_MSEC;
        for (size_t left = n;;) {
                for (size_t i = 0; i < n; i++) {
                        siginfo_t si = {};
                        if (pfd[i].fd < 0 || waitid(P_PIDFD, (id_t) pfd[i].fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
                                continue;
                        close(pfd[i].fd);
                        pfd[i].fd = -1; /* poll() skips it */
                        left--;
                }
                usec_t now = clock_now_monotonic();
                if (left == 0 || now >= deadline)
                        break;
                (void) poll(pfd, n, (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        }
        size_t dead = n;
        for (size_t i = 0; i < n; i++)
                if (pfd[i].fd >= 0) {
                        dead = 0;
                        log_full(LOG_WARNING, 0, r ? r->def->name : NULL, r ? (uint64_t) r->id : 0,
                                 r ? (int) r->attempt : -1,
                                 "Process %d the run left behind is still there a second after SIGKILL (in "
                                 "uninterruptible sleep? `cat /proc/%d/stack`); it is reaped when it dies.",
                                 (int) pid[i], (int) pid[i]);
                        close(pfd[i].fd);
                }
        return dead;
}

static int on_recheck(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_end_orphans(userdata, NULL, 0);
        return 0;
}

void manager_end_orphans(manager *m, run *r, pid_t exited) {
        bool unsure = false;
        if (r)
                r->cgroup = run_cgroup_end(r->cgroup, r->def->name, r->id, (int) r->attempt);
        if (!m->subreaper)
                return;
        for (unsigned i = 0; i < SWEEPS_MAX && sweep_once(m, r, exited, &unsure) > 0; i++)
                ;
        if (!unsure)
                return;
        if (!m->orphan_timer)
                (void) sd_event_add_time_relative(m->event, &m->orphan_timer, CLOCK_MONOTONIC, RECHECK_DELAY, 0,
                                                  on_recheck, m);
        else {
                (void) sd_event_source_set_time_relative(m->orphan_timer, RECHECK_DELAY);
                (void) sd_event_source_set_enabled(m->orphan_timer, SD_EVENT_ONESHOT);
        }
}
