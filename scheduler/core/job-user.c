/* SPDX-License-Identifier: MIT */
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>

#include "basic/log.h"
#include "core/job-user.h"

#define GROUPS_MAX 65536

/* getpw*_r/getgr*_r want a buffer of a size sysconf may not know */
static int lookup_buffer(int name, char **ret, size_t *ret_size) {
        long n = sysconf(name);
        size_t size = n > 0 ? (size_t) n : 16384;
        char *b = malloc(size);
        if (!b)
                return -ENOMEM;
        *ret = b;
        *ret_size = size;
        return 0;
}

static bool parse_id(const char *s, unsigned long *ret) {
        char *end;
        if (!s[0] || s[0] < '0' || s[0] > '9')
                return false;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || *end || v >= (unsigned long) UINT32_MAX)
                return false;
        *ret = v;
        return true;
}

static int find_user(const char *user, struct passwd *pw, char **buf, char **ret_error) {
        struct passwd *res = NULL;
        unsigned long id;
        size_t size;
        int q = lookup_buffer(_SC_GETPW_R_SIZE_MAX, buf, &size);
        if (q < 0)
                return q;
        for (;;) {
                q = parse_id(user, &id) ? getpwuid_r((uid_t) id, pw, *buf, size, &res)
                                        : getpwnam_r(user, pw, *buf, size, &res);
                if (q != ERANGE || size > 1024 * 1024)
                        break;
                size *= 2;
                char *n = realloc(*buf, size);
                if (!n)
                        return -ENOMEM;
                *buf = n;
        }
        if (q != 0) {
                if (asprintf(ret_error, "cannot look up user \"%s\": %s", user, strerror(q)) < 0)
                        *ret_error = NULL;
                return -q;
        }
        if (!res) {
                if (asprintf(ret_error, "no user \"%s\" on this system (getent passwd %s finds nothing); expected an "
                             "existing user name or uid: create the user (useradd --system %s) or fix the name",
                             user, user, user) < 0)
                        *ret_error = NULL;
                return -ENOENT;
        }
        return 0;
}

static int find_group(const char *group, gid_t *ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        struct group gr, *res = NULL;
        unsigned long id;
        size_t size;
        int q = lookup_buffer(_SC_GETGR_R_SIZE_MAX, &buf, &size);
        if (q < 0)
                return q;
        for (;;) {
                q = parse_id(group, &id) ? getgrgid_r((gid_t) id, &gr, buf, size, &res)
                                         : getgrnam_r(group, &gr, buf, size, &res);
                if (q != ERANGE || size > 1024 * 1024)
                        break;
                size *= 2;
                char *n = realloc(buf, size);
                if (!n)
                        return -ENOMEM;
                buf = n;
        }
        if (q != 0) {
                if (asprintf(ret_error, "cannot look up group \"%s\": %s", group, strerror(q)) < 0)
                        *ret_error = NULL;
                return -q;
        }
        if (!res) {
                if (asprintf(ret_error, "no group \"%s\" on this system (getent group %s finds nothing); expected an "
                             "existing group name or gid", group, group) < 0)
                        *ret_error = NULL;
                return -ENOENT;
        }
        *ret = gr.gr_gid;
        return 0;
}

int job_identity_resolve(const char *user, const char *group, job_identity *ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ gid_t *groups = NULL;
        struct passwd pw;
        job_identity id = {};
        int n = 64, q;

        *ret_error = NULL;
        q = find_user(user, &pw, &buf, ret_error);
        if (q < 0)
                return q;
        id.uid = pw.pw_uid;
        id.gid = pw.pw_gid;
        if (group) {
                q = find_group(group, &id.gid, ret_error);
                if (q < 0)
                        return q;
        }
        /* the supplementary groups as login would give them, resolved now: the child does no
         * NSS lookup (a warm child waits at the gate; NSS may need the network) */
        for (;;) {
                gid_t *g = realloc(groups, (size_t) n * sizeof(gid_t));
                if (!g)
                        return -ENOMEM;
                groups = g;
                int have = n;
                if (getgrouplist(pw.pw_name, id.gid, groups, &have) >= 0) {
                        n = have;
                        break;
                }
                if (have <= n || have > GROUPS_MAX) {
                        n = 0;
                        break;
                }
                n = have;
        }
        id.user = strdup(pw.pw_name);
        id.group = group ? strdup(group) : NULL;
        id.home = strdup(pw.pw_dir && pw.pw_dir[0] ? pw.pw_dir : "/");
        id.shell = strdup(pw.pw_shell && pw.pw_shell[0] ? pw.pw_shell : "/bin/sh");
        if (!id.user || (group && !id.group) || !id.home || !id.shell) {
                job_identity_done(&id);
                return -ENOMEM;
        }
        id.groups = TAKE_PTR(groups);
        id.n_groups = (size_t) n;
        *ret = id;
        return 0;
}

void job_identity_done(job_identity *id) {
        if (!id)
                return;
        free(id->user);
        free(id->group);
        free(id->groups);
        free(id->home);
        free(id->shell);
        *id = (job_identity) {};
}

bool job_identity_may_write(const struct stat *st, uid_t uid, gid_t gid, const gid_t *groups, size_t n) {
        if (uid == 0)
                return true;
        if (st->st_uid == uid)
                return st->st_mode & S_IWUSR;
        bool member = st->st_gid == gid;
        for (size_t i = 0; i < n && !member; i++)
                member = groups[i] == st->st_gid;
        if (member)
                return st->st_mode & S_IWGRP;
        return st->st_mode & S_IWOTH;
}

int job_identity_check_plugin(const job_identity *id, const char *plugin_path, char **ret_error) {
        _cleanup_free_ char *dir = NULL;
        const char *slash;
        struct stat st;

        *ret_error = NULL;
        if (!id->user || id->uid == 0)
                return 0;
        slash = strrchr(plugin_path, '/');
        dir = slash == plugin_path ? strdup("/") : slash ? strndup(plugin_path, (size_t) (slash - plugin_path)) : strdup(".");
        if (!dir)
                return -ENOMEM;
        const char *paths[] = { plugin_path, dir };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                if (stat(paths[i], &st) < 0) {
                        int q = -errno;
                        if (asprintf(ret_error, "cannot examine %s: %s", paths[i], strerror(-q)) < 0)
                                *ret_error = NULL;
                        return q;
                }
                if (!job_identity_may_write(&st, id->uid, id->gid, id->groups, id->n_groups))
                        continue;
                /* the daemon loads the plugin as itself: whoever can replace it runs code as root */
                if (asprintf(ret_error, "%s %s is writable by user %s (uid %u), whom the job runs as: that user could "
                             "replace the code the daemon loads as root; expected it owned by root and not writable by "
                             "the job's user (chown root: %s && chmod go-w %s)",
                             i == 0 ? "plugin" : "plugin directory", paths[i], id->user, (unsigned) id->uid, paths[i],
                             paths[i]) < 0)
                        *ret_error = NULL;
                return -EPERM;
        }
        return 0;
}

static int set_env(const char *key, const char *value) {
        return setenv(key, value, 1) < 0 ? -errno : 0;
}

int job_identity_enter(const job_def *def) {
        const job_identity *id = &def->identity;
        int q;

        if (id->user) {
                /* a login's environment, not the daemon's (NOTIFY_SOCKET, CREDENTIALS_DIRECTORY...) */
                const char *lang = getenv("LANG"), *tzv = getenv("TZ");
                _cleanup_free_ char *lang_copy = lang ? strdup(lang) : NULL, *tz_copy = tzv ? strdup(tzv) : NULL;
                if (clearenv() != 0)
                        return -ENOMEM;
                if ((q = set_env("PATH", "/usr/local/bin:/usr/bin:/bin")) < 0 || (q = set_env("HOME", id->home)) < 0 ||
                    (q = set_env("USER", id->user)) < 0 || (q = set_env("LOGNAME", id->user)) < 0 ||
                    (q = set_env("SHELL", id->shell)) < 0 || (lang_copy && (q = set_env("LANG", lang_copy)) < 0) ||
                    (tz_copy && (q = set_env("TZ", tz_copy)) < 0))
                        return q;
        }
        for (size_t i = 0; i < def->n_environment; i++)
                if (putenv(def->environment[i]) != 0)
                        return -ENOMEM;

        if (!id->user)
                return 0;
        /* groups first, then the gid: both need the privileges the uid change gives up */
        if (setgroups(id->n_groups, id->groups) < 0)
                return -errno;
        if (setresgid(id->gid, id->gid, id->gid) < 0)
                return -errno;
        if (setresuid(id->uid, id->uid, id->uid) < 0)
                return -errno;
        /* a failed drop must never let the plugin run as root */
        if (id->uid != 0 && (setuid(0) == 0 || geteuid() != id->uid || getegid() != id->gid))
                return -EPERM;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

static void make_passable(const char *dir) {
        struct stat st;
        if (stat(dir, &st) < 0 || (st.st_mode & S_IXOTH))
                return;
        if (chmod(dir, (st.st_mode & 07777) | S_IXOTH) < 0)
                log_full(LOG_WARNING, -errno, NULL, 0, -1, "Cannot let job users pass through %s: %m", dir);
}

void job_identity_prepare_dir(const registry *r, const job_def *def, const char *dir) {
        const job_identity *id = &def->identity;
        _cleanup_free_ char *jobs = NULL;
        struct stat st;

        if (!id->user)
                return;
        /* the run enters its own directory through these, and may list neither */
        make_passable(r->state_dir);
        if (asprintf(&jobs, "%s/jobs", r->state_dir) >= 0)
                make_passable(jobs);
        static const char *const history_files[] = { "history.db", "history.db-wal", "history.db-shm" };
        for (size_t i = 0; i < ELEMENTSOF(history_files); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", r->state_dir, history_files[i]) >= 0 && stat(p, &st) >= 0 &&
                    (st.st_mode & 0077))
                        (void) chmod(p, st.st_mode & 0700);
        }
        if (stat(dir, &st) < 0)
                return;
        if ((st.st_uid != id->uid || st.st_gid != id->gid) && chown(dir, id->uid, id->gid) < 0)
                log_full(LOG_WARNING, -errno, def->name, 0, -1, "Cannot hand state directory %s to user %s: %m", dir,
                         id->user);
        if ((st.st_mode & 07777) != 0700)
                (void) chmod(dir, 0700);
}
