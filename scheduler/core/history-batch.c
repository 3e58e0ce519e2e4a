/* SPDX-License-Identifier: MIT */
/* History writes batched into one transaction per burst, and a failing database (full,
 * read-only) that never stops the firing. */
#include "basic/clock.h"
#include "basic/log.h"
#include "core/manager-internal.h"

/* --- history, failing soft -------------------------------------------------------
 * The database can be full or read-only; the daemon keeps firing regardless and says so once
 * per burst of failures rather than once per row. */

/* The database counts as recovered only after this long without a failure: a nearly full disk
 * lets some commits through, and flapping would repeat the message. */
#define HISTORY_RECOVERY_USEC (10 * USEC_PER_SEC)
#define BATCH_MAX_USEC (100 * USEC_PER_MSEC)
/* no commit this close before a due cron fire */
#define COMMIT_GUARD (20 * USEC_PER_MSEC)
/* Commits only append to the WAL; the checkpoint (its fsyncs can take milliseconds, or seconds
 * on a slow disk) is taken after an idle commit when no fire is due within CHECKPOINT_GUARD, at
 * most every CHECKPOINT_INTERVAL, and when fires never leave that much room, after
 * CHECKPOINT_MAX_WAIT regardless (the WAL must not grow for ever). */
#define CHECKPOINT_INTERVAL (10 * USEC_PER_SEC)
#define CHECKPOINT_GUARD (250 * USEC_PER_MSEC)
#define CHECKPOINT_MAX_WAIT (5 * USEC_PER_MINUTE)
/* ... or, without waiting for CHECKPOINT_INTERVAL, once the WAL reaches this many pages (16 MiB
 * of 4 KiB pages); and at CHECKPOINT_WAL_FORCE times that, whatever is due: under a load that
 * never leaves CHECKPOINT_GUARD free, a WAL grown to hundreds of MiB made every commit extend the
 * file (ext4 zeroing each new block) and every read search a longer WAL index, and the daemon
 * ran a third slower. Forcing it already at CHECKPOINT_WAL_PAGES put a checkpoint (two fsyncs,
 * 40 ms here) in front of an instant every few minutes at 10,000 jobs a minute: every run of
 * that instant started 10-13 ms late, the whole p99 of the spread benchmark (issue 16). */
#define CHECKPOINT_WAL_PAGES 4096
#define CHECKPOINT_WAL_FORCE 4

void manager_history_failed(manager *m, int r, const char *what) {
        m->history_failed_at = clock_now_monotonic();
        if (!m->history_failing)
                log_error_errno(r, "History database %s: %s failed: %s (%m). Runs continue but are not recorded until "
                                   "this is fixed (%s).",
                                m->history_path, what, history_last_error(m->hist),
                                r == -ENOTCONN ? "is the PostgreSQL server up and reachable? the daemon reconnects by "
                                                 "itself" : "disk space? permissions?");
        m->history_failing = true;
}

static void history_ok(manager *m) {
        if (!m->history_failing || clock_now_monotonic() - m->history_failed_at < HISTORY_RECOVERY_USEC)
                return;
        log_notice("History database %s is writable again.", m->history_path);
        m->history_failing = false;
}

int manager_on_history_post(sd_event_source *s, void *userdata);

/* A cron fire is due within COMMIT_GUARD (not overdue: a backlog must still commit). */
static bool fire_imminent(const manager *m) {
        usec_t next = manager_next_due_real(m), now = clock_now_realtime();
        return next > now && next - now <= COMMIT_GUARD;
}

/* History writes go into one transaction until the event loop has nothing more pending (the
 * commit source has the lowest priority), and at most BATCH_MAX_USEC: a burst of a thousand
 * run exits is one commit, not a thousand. */
void manager_history_batch(manager *m) {
        /* (not between deciding fires and releasing them: a commit can wait on a checkpoint's fsync) */
        if (m->batch_open && !m->deferring && m->n_due == 0 &&
            !fire_imminent(m) &&
            clock_now_monotonic() - m->batch_opened_at > BATCH_MAX_USEC)
                (void) manager_on_history_post(NULL, m);
        /* In a cluster every write commits alone: a batch holding claims of one instant would wait
         * on another node's batch holding others (a deadlock PostgreSQL breaks by rolling one
         * back, claims already acted on included). */
        if (m->batch_open) {
                (void) sd_event_source_set_enabled(m->post_source, SD_EVENT_ONESHOT);
                return;
        }
        if (!m->hist || m->clustered)
                return;
        if (history_begin(m->hist) >= 0) {
                m->batch_open = true;
                m->batch_opened_at = clock_now_monotonic();
                (void) sd_event_source_set_enabled(m->post_source, SD_EVENT_ONESHOT);
        }
}

/* Time until the next fire of either heap is due (0: overdue), USEC_INFINITY if none. */
static usec_t next_fire_in(const manager *m) {
        usec_t d = USEC_INFINITY, real = manager_next_due_real(m), now = clock_now_realtime();
        timer_entry *e = timer_heap_peek(&m->boot_heap);
        if (real != USEC_INFINITY)
                d = real > now ? real - now : 0;
        if (e) {
                usec_t boot = clock_now_boottime();
                d = MIN(d, e->when > boot ? e->when - boot : 0);
        }
        return d;
}

/* CHECKPOINT_WAL_PAGES; tests lower it (SCHEDULERD_TEST_CHECKPOINT_WAL_PAGES) to see the bound
 * hold within seconds. */
static int manager_checkpoint_wal_pages(manager *m) {
        if (m->checkpoint_wal_pages == 0) {
                const char *t = getenv("SCHEDULERD_TEST_CHECKPOINT_WAL_PAGES");
                int v = t ? atoi(t) : 0;
                m->checkpoint_wal_pages = v > 0 ? v : CHECKPOINT_WAL_PAGES;
        }
        return m->checkpoint_wal_pages;
}

/* After an idle commit: the WAL copied into the database, away from instants. */
static void maybe_checkpoint(manager *m) {
        usec_t now = clock_now_monotonic(), since = now - m->checkpointed_at;
        int pages = history_wal_pages(m->hist), limit = manager_checkpoint_wal_pages(m);
        bool big = pages >= limit, forced = pages >= CHECKPOINT_WAL_FORCE * limit;
        if (m->batch_open)
                return;
        if (!forced && (m->n_due > 0 || (!big && since < CHECKPOINT_INTERVAL) ||
                        (next_fire_in(m) < CHECKPOINT_GUARD && since < CHECKPOINT_MAX_WAIT)))
                return;
        m->checkpointed_at = now;
        int r = history_checkpoint(m->hist);
        if (r < 0 && r != -EBUSY)
                manager_history_failed(m, r, "checkpoint");
}

static void record_start(run *r, void *userdata) {
        manager *m = userdata;
        if (!r->start_owed)
                return;
        r->start_owed = false;
        (void) history_set_start(m->hist, r->id, r->start_owed_pid, r->started);
}

int manager_on_history_post(sd_event_source *s, void *userdata) {
        manager *m = userdata;
        if (!m->batch_open)
                return 0;
        /* Idle only because it waits for an instant to release runs, or a fire is about to be
         * due: the commit comes after (manager_finish_fires() enables this again); claims are
         * committed ahead of their runs by manager_history_write_ahead(). */
        if (s && (m->n_due > 0 || fire_imminent(m)))
                return 0;
        /* Idle only between two answers of a busy worker pool: runs wait for workers, so the next
         * run's end is a run's time away. Committing at each would cost a commit (a WAL write and
         * its locks) per run; the batch stays open, at most BATCH_MAX_USEC (manager_history_batch()
         * commits it then, and enables this again for when the queue is empty). */
        if (s && worker_pools_waiting(m->workers) > 0 &&
            clock_now_monotonic() - m->batch_opened_at <= BATCH_MAX_USEC) {
                /* looked at again then, should no run end before */
                manager_timer_at(m->commit_timer, m->batch_opened_at + BATCH_MAX_USEC + 1);
                return 0;
        }
        /* in the batch still: the starts of worker runs that have not ended yet */
        worker_pools_foreach_current(m->workers, record_start, m);
        m->batch_open = false;
        m->claims_uncommitted = false; /* committed, or lost with the batch: either way not pending */
        /* what the history says happened was logged before it is there to read */
        log_flush();
        int r = history_commit(m->hist);
        if (r < 0)
                manager_history_failed(m, r, "commit");
        else {
                m->history_commits++;
                history_ok(m);
        }
        if (r >= 0 && (s || history_wal_pages(m->hist) >= manager_checkpoint_wal_pages(m)))
                maybe_checkpoint(m);
        return 0;
}

int manager_on_commit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager *m = userdata;
        if (m->batch_open)
                (void) sd_event_source_set_enabled(m->post_source, SD_EVENT_ONESHOT);
        return 0;
}

void manager_history_write_ahead(manager *m) {
        if (m->claims_uncommitted)
                (void) manager_on_history_post(NULL, m);
}

void manager_flush_history(manager *m) {
        (void) manager_on_history_post(NULL, m);
}
