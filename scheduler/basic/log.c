/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "basic/escape.h"
#include "basic/log.h"

static const char *log_ident = "schedulerd";
static int log_max_level = LOG_INFO;
static bool log_to_journal = false;

/* Lines for stderr waiting for log_flush() (log_batch_start()). Bounded: a full buffer is written
 * at once, so a loop that never idles still logs, in chunks. */
#define LOG_BATCH_MAX (32 * 1024)
static struct {
        bool on, registered;
        void (*wake)(void *userdata);
        void *userdata;
        size_t len;
        char buf[LOG_BATCH_MAX];
} batch;

static void write_all(const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(STDERR_FILENO, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* nowhere to say it: dropped, as fprintf() would */
                p += k;
                n -= (size_t) k;
        }
}

void log_flush(void) {
        size_t n = batch.len;
        batch.len = 0;
        if (n > 0) {
                int saved = errno;
                write_all(batch.buf, n);
                errno = saved;
        }
}

/* the child of a fork() writes its own lines at once: nobody would flush them */
static void batch_after_fork_child(void) {
        batch.on = false;
        batch.len = 0;
}

void log_batch_start(void (*wake)(void *userdata), void *userdata) {
        if (!batch.registered) {
                /* a child must not inherit lines its parent is still to write (they would be written
                 * twice, or lost with the child's _exit()) */
                (void) pthread_atfork(log_flush, NULL, batch_after_fork_child);
                (void) atexit(log_flush);
                batch.registered = true;
        }
        batch.wake = wake;
        batch.userdata = userdata;
        batch.on = !log_to_journal;
}

void log_batch_stop(void) {
        log_flush();
        batch.on = false;
        batch.wake = NULL;
        batch.userdata = NULL;
}

/* Adds one line to the batch, or writes it (and what waits before it) when LEVEL is urgent or
 * there is no room. */
static void batch_line(int level, const char *p, size_t n) {
        if (n > sizeof(batch.buf) - batch.len)
                log_flush();
        if (n > sizeof(batch.buf)) {
                write_all(p, n);
                return;
        }
        bool was_empty = batch.len == 0;
        memcpy(batch.buf + batch.len, p, n);
        batch.len += n;
        if (level <= LOG_WARNING)
                log_flush();
        else if (was_empty && batch.wake)
                batch.wake(batch.userdata);
}

/* systemd sets $JOURNAL_STREAM to "dev:ino" of the stream it connected; stderr is the journal
 * only if it is still that very stream (not redirected by a wrapper). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_open(const char *ident) {
        const char *l = getenv("SCHEDULERD_LOG_LEVEL");

        if (ident)
                log_ident = ident;
        log_to_journal = stderr_is_journal();
        if (l && streq(l, "debug"))
                log_max_level = LOG_DEBUG;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

static const char *level_name(int level) {
        static const char *const names[] = { "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" };
        return level >= 0 && level < (int) ELEMENTSOF(names) ? names[level] : "info";
}

_printf_(8, 0) static int log_emit(int level, int error, const char *job, uint64_t run_id, int attempt,
                                  const char *const *fields, size_t n_fields, const char *fmt, va_list ap) {
        int ret = error < 0 ? error : -error;
        char msg[4096];

        if (level > log_max_level)
                return ret;

        /* make %m print ERROR */
        if (error != 0)
                errno = error < 0 ? -error : error;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        /* a message is one line, and may hold what a job wrote: CR, ESC and newlines would
         * redraw a terminal or forge lines of their own */
        char line[sizeof(msg)];
        (void) escape_controls_buf(msg, strlen(msg), "\t", line, sizeof(line));

        /* the prefix goes into MESSAGE too: plain `journalctl -u` output shows no fields */
        char prefix[300] = "";
        if (job && run_id > 0 && attempt > 0)
                snprintf(prefix, sizeof(prefix), "%s[run %llu, attempt %d]: ", job, (unsigned long long) run_id,
                         attempt);
        else if (job && run_id > 0)
                snprintf(prefix, sizeof(prefix), "%s[run %llu]: ", job, (unsigned long long) run_id);
        else if (job)
                snprintf(prefix, sizeof(prefix), "%s: ", job);
        if (log_to_journal) {
                char m[sizeof(prefix) + sizeof(line) + 8], pr[16], id[64], jf[300] = "", rf[64] = "", af[32] = "";
                struct iovec iov[6 + LOG_FIELDS_MAX];
                size_t n = 0;
                snprintf(m, sizeof(m), "MESSAGE=%s%s", prefix, line);
                snprintf(pr, sizeof(pr), "PRIORITY=%d", level);
                snprintf(id, sizeof(id), "SYSLOG_IDENTIFIER=%s", log_ident);
                iov[n++] = (struct iovec) { m, strlen(m) };
                iov[n++] = (struct iovec) { pr, strlen(pr) };
                iov[n++] = (struct iovec) { id, strlen(id) };
                if (job) {
                        snprintf(jf, sizeof(jf), "JOB=%s", job);
                        iov[n++] = (struct iovec) { jf, strlen(jf) };
                }
                if (run_id > 0) {
                        snprintf(rf, sizeof(rf), "RUN_ID=%llu", (unsigned long long) run_id);
                        iov[n++] = (struct iovec) { rf, strlen(rf) };
                }
                if (attempt >= 0) {
                        snprintf(af, sizeof(af), "ATTEMPT=%d", attempt);
                        iov[n++] = (struct iovec) { af, strlen(af) };
                }
                for (size_t i = 0; i < n_fields && i < LOG_FIELDS_MAX; i++)
                        iov[n++] = (struct iovec) { (void *) fields[i], strlen(fields[i]) };
                (void) sd_journal_sendv(iov, (int) n);
                return ret;
        }

        if (batch.on) {
                char out[sizeof(prefix) + sizeof(line) + 64];
                int k = snprintf(out, sizeof(out), "%s: <%s> %s%s\n", log_ident, level_name(level), prefix, line);
                if (k > 0)
                        batch_line(level, out, MIN((size_t) k, sizeof(out) - 1));
                return ret;
        }
        fprintf(stderr, "%s: <%s> %s%s\n", log_ident, level_name(level), prefix, line);
        return ret;
}

int log_full(int level, int error, const char *job, uint64_t run_id, int attempt, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_emit(level, error, job, run_id, attempt, NULL, 0, fmt, ap);
        va_end(ap);
        return r;
}

int log_full_fields(int level, const char *job, uint64_t run_id, int attempt, const char *const *fields,
                    size_t n_fields, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_emit(level, 0, job, run_id, attempt, fields, n_fields, fmt, ap);
        va_end(ap);
        return r;
}
