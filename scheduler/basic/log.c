/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "basic/escape.h"
#include "basic/log.h"

static const char *log_ident = "schedulerd";
static int log_max_level = LOG_INFO;
static bool log_to_journal = false;

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

int log_full(int level, int error, const char *job, uint64_t run_id, int attempt, const char *fmt, ...) {
        int ret = error < 0 ? error : -error;
        char msg[4096];
        va_list ap;

        if (level > log_max_level)
                return ret;

        /* make %m print ERROR */
        if (error != 0)
                errno = error < 0 ? -error : error;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
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
                char jf[300] = "", rf[64] = "", af[32] = "";
                if (job)
                        snprintf(jf, sizeof(jf), "JOB=%s", job);
                if (run_id > 0)
                        snprintf(rf, sizeof(rf), "RUN_ID=%llu", (unsigned long long) run_id);
                if (attempt >= 0)
                        snprintf(af, sizeof(af), "ATTEMPT=%d", attempt);
                /* sd_journal_send() stops at the first NULL, so absent fields are skipped by
                 * passing them last */
                const char *f[3];
                size_t n = 0;
                if (jf[0])
                        f[n++] = jf;
                if (rf[0])
                        f[n++] = rf;
                if (af[0])
                        f[n++] = af;
                while (n < ELEMENTSOF(f))
                        f[n++] = NULL;
                sd_journal_send("MESSAGE=%s%s", prefix, line, "PRIORITY=%d", level, "SYSLOG_IDENTIFIER=%s", log_ident,
                                f[0], f[1], f[2], NULL);
                return ret;
        }

        fprintf(stderr, "%s: <%s> %s%s\n", log_ident, level_name(level), prefix, line);
        return ret;
}
