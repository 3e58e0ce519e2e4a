/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <limits.h>

#include "core/registry.h"

/* The fixtures live in the source tree; `make check` exports top_srcdir. */
static char *fixture(const char *name) {
        const char *top = getenv("top_srcdir");
        char *p;
        ck_assert_msg(top, "top_srcdir is not set (make check sets it)");
        ck_assert_int_ge(asprintf(&p, "%s/tests/fixtures/registry/%s", top, name), 0);
        return p;
}

static char *fixture_dir(void) {
        _cleanup_free_ char *d = fixture(".");
        char *abs = realpath(d, NULL);
        ck_assert_ptr_nonnull(abs);
        return abs;
}

static char *diags_to_string(const diag_list *d) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        ck_assert_ptr_nonnull(f);
        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *line = diag_format(&d->items[i]);
                fprintf(f, "  [%zu] %s\n", i, line);
        }
        fclose(f);
        return s;
}

/* Asserts diagnostic I: FILE (NULL: don't care), LINE, COLUMN, JOB (NULL: none), and that the
 * message contains each of the NULL-terminated needles. */
static void assert_diag(const diag_list *d, size_t i, const char *file, unsigned line, unsigned column,
                        const char *job, const char *const *needles) {
        _cleanup_free_ char *all = diags_to_string(d);

        ck_assert_msg(i < d->n, "expected a diagnostic #%zu, got %zu:\n%s", i, d->n, all);
        const diag *x = &d->items[i];
        if (file)
                ck_assert_msg(streq_ptr(x->file, file), "diag %zu: file %s, expected %s\n%s", i, x->file, file, all);
        ck_assert_msg(x->line == line && x->column == column, "diag %zu: at %u:%u, expected %u:%u\n%s", i, x->line,
                      x->column, line, column, all);
        ck_assert_msg(streq_ptr(x->job, job), "diag %zu: job %s, expected %s\n%s", i, x->job ?: "(none)",
                      job ?: "(none)", all);
        for (; *needles; needles++)
                ck_assert_msg(strstr(x->message, *needles), "diag %zu: message lacks \"%s\"\n%s", i, *needles, all);
}

#define NEEDLES(...) ((const char *const[]) { __VA_ARGS__, NULL })

static int load(const char *path, registry_flags flags, registry **ret, diag_list *d) {
        return registry_load(path, flags, ret, d);
}

/* ---- one fixture per error class ------------------------------------------------------- */

#define A8 "aaaaaaaa"
#define LONG_NAME A8 A8 A8 A8 A8 A8 A8 A8 "a" /* 65 characters */

static const struct {
        const char *fixture;
        size_t n_diags; /* how many the fixture produces in all */
        size_t index;
        unsigned line, column;
        const char *job;
        const char *needles[4];
} errors[] = {
        { "err-syntax.yaml", 1, 0, 7, 1, NULL, { "invalid YAML", "unexpected end of stream", "line 6, column 15" } },
        { "err-two-documents.yaml", 1, 0, 3, 1, NULL, { "second YAML document", "expected one document" } },
        { "err-root.yaml", 1, 0, 1, 1, NULL, { "found a sequence", "expected a mapping with the keys scheduler and jobs" } },
        { "err-unknown-key.yaml", 1, 0, 7, 5, "backup",
          { "unknown key \"schedual\"", "expected one of name, description, plugin, schedule, timezone, enabled, "
                                        "singleton, timeout, retry, run_on_startup, catch_up, params" } },
        { "err-type.yaml", 1, 0, 7, 12, "typed", { "retry", "found \"3\"", "expected a mapping" } },
        { "err-duplicate-key.yaml", 1, 0, 7, 5, "twice", { "duplicate key \"schedule\"", "line 6, column 5" } },
        { "err-missing.yaml", 3, 0, 4, 5, "lonely", { "missing required key \"plugin\"", "expected" } },
        { "err-missing.yaml", 3, 1, 4, 5, "lonely", { "missing required key \"schedule\"", "expected" } },
        { "err-missing.yaml", 3, 2, 6, 5, "#2", { "missing required key \"name\"", "expected" } },
        { "err-name.yaml", 4, 0, 4, 11, "Backup_1", { "name \"Backup_1\"", "'B'", "[a-z0-9][a-z0-9-]*" } },
        { "err-name.yaml", 4, 1, 7, 27, "ok-but-quoted-x_y", { "'_'", "position 16", "[a-z0-9][a-z0-9-]*" } },
        { "err-name.yaml", 4, 2, 10, 11, "-lead", { "'-'", "position 1" } },
        { "err-name.yaml", 4, 3, 13, 75, LONG_NAME, { "65 characters long", "expected at most 64" } },
        { "err-duration.yaml", 3, 0, 3, 21, NULL, { "scheduler.shutdown_grace \"30x\"", "unknown unit \"x\"", "expected" } },
        { "err-duration.yaml", 3, 1, 8, 18, "slow", { "timeout \"1h30q\"", "unknown unit \"q\"", "expected" } },
        { "err-duration.yaml", 3, 2, 12, 14, "zero", { "timeout", "found 0s", "greater than zero" } },
        { "err-schedule.yaml", 2, 0, 6, 16, "backup", { "schedule \"61 * * * *\"", "61", "0-59" } },
        { "err-schedule.yaml", 2, 1, 9, 17, "plain", { "schedule \"0 25 * * *\"", "25", "0-23" } },
        { "err-timezone.yaml", 2, 0, 3, 13, NULL, { "unknown time zone \"Mars/Olympus\"", "no such file", "IANA" } },
        { "err-timezone.yaml", 2, 1, 8, 15, "x", { "unknown time zone \"Europe/Atlantis\"", "no such file", "IANA" } },
        { "err-bool.yaml", 1, 0, 7, 14, "unsure", { "enabled", "found \"maybe\"", "true/false, yes/no or on/off" } },
        { "err-range.yaml", 2, 0, 3, 19, NULL, { "scheduler.max_concurrent", "0 is out of range", "1-10000" } },
        { "err-range.yaml", 2, 1, 8, 24, "many", { "retry.attempts", "101 is out of range", "0-100" } },
        { "err-backoff.yaml", 1, 0, 7, 54, "impatient", { "max_backoff 5s is less than retry.backoff 10s", "expected" } },
        { "err-plugin-missing.yaml", 1, 0, 5, 13, "ghost", { "plugin \"nothere.so\" not found", "/plugins/nothere.so", "plugin_dir" } },
        { "err-params.yaml", 3, 0, 8, 11, "nested", { "params: db", "found a mapping", "expected a scalar or a list" } },
        { "err-params.yaml", 3, 1, 9, 17, "nested", { "params: list", "item 2", "expected a scalar" } },
        { "err-params.yaml", 3, 2, 11, 7, "nested", { "params: duplicate key \"fine\"", "line 10" } },
        { "err-tasks.yaml", 3, 0, 7, 22, "none", { "limits.tasks", "0 is out of range", "1-4194304" } },
        { "err-tasks.yaml", 3, 1, 12, 14, "word", { "limits.tasks", "found \"many\"", "integer from 1 to 4194304" } },
        { "err-tasks.yaml", 3, 2, 16, 22, "huge", { "limits.tasks", "4194305 is out of range", "1-4194304" } },
};

START_TEST(test_error_fixture) {
        _cleanup_free_ char *path = fixture(errors[_i].fixture);
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), -EINVAL);
        ck_assert_ptr_null(r);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == errors[_i].n_diags, "%s: %zu diagnostics, expected %zu:\n%s", errors[_i].fixture, d.n,
                      errors[_i].n_diags, all);
        assert_diag(&d, errors[_i].index, path, errors[_i].line, errors[_i].column, errors[_i].job,
                    (const char *const *) errors[_i].needles);
        diag_list_clear(&d);
}
END_TEST

START_TEST(test_many_errors_all_reported) {
        _cleanup_free_ char *path = fixture("err-many.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), -EINVAL);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == 12, "%zu diagnostics, expected 12:\n%s", d.n, all);
        /* In file order, whatever order the checks ran in. */
        assert_diag(&d, 0, path, 1, 1, NULL, NEEDLES("unknown key \"schedular\"", "one of scheduler, jobs"));
        assert_diag(&d, 1, path, 5, 21, NULL, NEEDLES("max_concurrent", "\"12abc\"", "integer from 1 to 10000"));
        assert_diag(&d, 2, path, 6, 25, NULL, NEEDLES("retention \"forever\"", "durations look like"));
        assert_diag(&d, 3, path, 6, 34, NULL, NEEDLES("unknown key \"keep\"", "retention, max_runs_per_job"));
        assert_diag(&d, 4, path, 10, 23, "one", NEEDLES("schedule \"* * * *\"", "5 or 6 fields"));
        assert_diag(&d, 5, path, 11, 15, "one", NEEDLES("timeout \"5\"", "missing unit"));
        assert_diag(&d, 6, path, 12, 11, "Two", NEEDLES("'T'"));
        assert_diag(&d, 7, path, 15, 16, "Two", NEEDLES("singleton", "\"sometimes\""));
        assert_diag(&d, 8, path, 16, 5, NULL, NEEDLES("item 3", "\"just a string\"", "expected a job"));
        assert_diag(&d, 9, path, 17, 11, "one", NEEDLES("duplicate job name \"one\"", "err-many.yaml:8:5"));
        assert_diag(&d, 10, path, 18, 13, "one", NEEDLES("\"missing.so\" not found"));
        assert_diag(&d, 11, path, 20, 24, "one", NEEDLES("retry.attempts", "\"lots\""));
        for (size_t i = 0; i < d.n; i++) {
                _cleanup_free_ char *s = diag_format(&d.items[i]);
                ck_assert_msg(strncmp(s, path, strlen(path)) == 0 && s[strlen(path)] == ':', "%s", s);
        }
        diag_list_clear(&d);
}
END_TEST

START_TEST(test_duplicate_name_names_both_places) {
        _cleanup_free_ char *path = fixture("err-duplicate-name.yaml");
        _cleanup_free_ char *first = NULL;
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), -EINVAL);
        ck_assert_int_ge(asprintf(&first, "first defined at %s:4:5", path), 0);
        assert_diag(&d, 0, path, 7, 11, "same", NEEDLES("duplicate job name \"same\"", first, "expected unique"));
        diag_list_clear(&d);
}
END_TEST

START_TEST(test_missing_file) {
        _cleanup_free_ char *path = fixture("does-not-exist.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), -ENOENT);
        ck_assert_ptr_null(r);
        ck_assert_uint_eq(d.n, 1);
        assert_diag(&d, 0, path, 0, 0, NULL, NEEDLES("cannot read", "No such file"));
        diag_list_clear(&d);
}
END_TEST

/* ---- valid registries ------------------------------------------------------------------ */

START_TEST(test_valid_full) {
        _cleanup_free_ char *path = fixture("valid-full.yaml"), *dir = fixture_dir();
        _cleanup_free_ char *state = NULL, *plugins = NULL, *stub = NULL;
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};
        int k;

        k = load(path, 0, &r, &d);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(k == 0, "load: %s\n%s", strerror(-k), all);
        ck_assert_uint_eq(d.n, 0);

        ck_assert_int_ge(asprintf(&state, "%s/state", dir), 0);
        ck_assert_int_ge(asprintf(&plugins, "%s/plugins", dir), 0);
        ck_assert_int_ge(asprintf(&stub, "%s/plugins/stub.job", dir), 0);
        ck_assert_str_eq(r->path, path);
        ck_assert_str_eq(r->state_dir, state);
        ck_assert_str_eq(r->plugin_dir, plugins);
        ck_assert_str_eq(r->control_socket, "/run/test/control.sock");
        ck_assert_str_eq(r->admin_group, "wheel");
        ck_assert_str_eq(r->timezone, "Europe/Amsterdam");
        ck_assert_ptr_nonnull(r->zone);
        ck_assert_str_eq(tz_name(r->zone), "Europe/Amsterdam");
        ck_assert_uint_eq(r->max_concurrent, 4);
        ck_assert_uint_eq(r->shutdown_grace, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(r->history_retention, 7 * USEC_PER_DAY);
        ck_assert_uint_eq(r->history_max_runs_per_job, 500);
        ck_assert_ptr_null(r->include);
        ck_assert_uint_eq(r->n_jobs, 3);

        const job_def *j = registry_find(r, "full");
        ck_assert_ptr_eq(j, r->jobs[0]);
        ck_assert_str_eq(j->description, "Every job key set");
        ck_assert_str_eq(j->plugin_name, "stub.job");
        ck_assert_str_eq(j->plugin_path, stub);
        ck_assert_ptr_null(j->plugin);
        ck_assert_str_eq(j->schedule_expr, "*/5 * * * *");
        ck_assert_int_eq(j->schedule.kind, SCHEDULE_CRON);
        ck_assert_str_eq(j->timezone, "America/New_York");
        ck_assert_str_eq(tz_name(j->zone), "America/New_York");
        ck_assert(!j->enabled);
        ck_assert(!j->singleton);
        ck_assert(j->run_on_startup);
        ck_assert(j->catch_up);
        ck_assert_uint_eq(j->timeout, 50 * USEC_PER_SEC);
        ck_assert_uint_eq(j->retry.attempts, 3);
        ck_assert_uint_eq(j->retry.backoff, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(j->retry.max_backoff, USEC_PER_MINUTE);
        ck_assert_str_eq(j->file, path);
        ck_assert_uint_eq(j->line, 13);
        ck_assert_uint_eq(j->column, 5);

        const char *s;
        int64_t n;
        const char *const *items;
        size_t n_items;
        ck_assert_int_eq(params_get_string(&j->params, "config", &s), 0);
        ck_assert_str_eq(s, "/etc/x.yaml");
        ck_assert_int_eq(params_get_int(&j->params, "count", &n), 0);
        ck_assert_int_eq(n, 3);
        ck_assert_int_eq(params_get_list(&j->params, "hosts", &items, &n_items), 0);
        ck_assert_uint_eq(n_items, 3);
        ck_assert_str_eq(items[0], "a");
        ck_assert_str_eq(items[2], "c");
        const param *p = params_find(&j->params, "hosts");
        ck_assert_uint_eq(p->line, 26);
        ck_assert_uint_eq(p->column, 14);

        /* Defaults. */
        j = registry_find(r, "minimal");
        ck_assert_ptr_eq(j, r->jobs[1]);
        ck_assert_ptr_null(j->description);
        ck_assert_int_eq(j->schedule.kind, SCHEDULE_EVERY);
        ck_assert_uint_eq(j->schedule.interval, 10 * USEC_PER_SEC);
        ck_assert_str_eq(j->timezone, "Europe/Amsterdam");
        ck_assert_ptr_eq(j->zone, r->zone);
        ck_assert(j->enabled);
        ck_assert(j->singleton);
        ck_assert(!j->run_on_startup);
        ck_assert(!j->catch_up);
        ck_assert_uint_eq(j->timeout, USEC_INFINITY);
        ck_assert_uint_eq(j->retry.attempts, 0);
        ck_assert_uint_eq(j->retry.backoff, REGISTRY_DEFAULT_BACKOFF);
        ck_assert_uint_eq(j->retry.max_backoff, REGISTRY_DEFAULT_MAX_BACKOFF);
        ck_assert_uint_eq(j->params.n, 0);

        /* A backoff longer than the default cap raises the cap instead of failing. */
        j = registry_find(r, "long-backoff");
        ck_assert_str_eq(j->schedule_expr, "30 2 * * *");
        ck_assert(j->schedule.fixed_time);
        ck_assert_uint_eq(j->retry.attempts, 1);
        ck_assert_uint_eq(j->retry.backoff, 2 * USEC_PER_HOUR);
        ck_assert_uint_eq(j->retry.max_backoff, 2 * USEC_PER_HOUR);

        ck_assert_ptr_null(registry_find(r, "nope"));
}
END_TEST

START_TEST(test_scheduler_defaults) {
        _cleanup_free_ char *path = fixture("defaults.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), 0);
        ck_assert_str_eq(r->state_dir, LOCALSTATEDIR "/lib/schedulerd");
        ck_assert_str_eq(r->control_socket, RUNSTATEDIR "/schedulerd/control.sock");
        ck_assert_str_eq(r->admin_group, "schedulerd");
        ck_assert_str_eq(r->timezone, "UTC");
        ck_assert_ptr_nonnull(r->zone);
        ck_assert_uint_eq(r->max_concurrent, 16);
        ck_assert_uint_eq(r->shutdown_grace, 30 * USEC_PER_SEC);
        ck_assert_uint_eq(r->history_retention, 30 * USEC_PER_DAY);
        ck_assert_uint_eq(r->history_max_runs_per_job, 10000);
        ck_assert_uint_eq(r->n_jobs, 1);
        ck_assert_str_eq(r->jobs[0]->timezone, "UTC");
        ck_assert_ptr_eq(r->jobs[0]->zone, r->zone);
}
END_TEST

START_TEST(test_empty_file) {
        _cleanup_free_ char *path = fixture("empty.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), 0);
        ck_assert_uint_eq(r->n_jobs, 0);
        ck_assert_str_eq(r->plugin_dir, PLUGINDIR);
}
END_TEST

START_TEST(test_overrides) {
        _cleanup_free_ char *path = fixture("defaults.yaml"), *cwd = getcwd(NULL, 0), *state = NULL;
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};
        registry_overrides o = { .state_dir = "state-here", .control_socket = "/tmp/override.sock" };

        ck_assert_int_eq(registry_load_with(path, 0, &o, &r, &d), 0);
        ck_assert_int_ge(asprintf(&state, "%s/state-here", cwd), 0);
        ck_assert_str_eq(r->state_dir, state);
        ck_assert_str_eq(r->control_socket, "/tmp/override.sock");
        r = registry_free(r);

        /* Jobs' plugins resolve against the overriding plugin_dir, not the file's. */
        o = (registry_overrides) { .plugin_dir = "/nonexistent-plugin-dir" };
        ck_assert_int_eq(registry_load_with(path, 0, &o, &r, &d), -EINVAL);
        assert_diag(&d, 0, path, 5, 13, "only-required", NEEDLES("/nonexistent-plugin-dir/stub.job"));
        ck_assert_uint_eq(d.n, 1);
        diag_list_clear(&d);
}
END_TEST

/* ---- includes -------------------------------------------------------------------------- */

START_TEST(test_include_merge_order) {
        _cleanup_free_ char *path = fixture("inc/main.yaml"), *a = fixture("inc/jobs.d/10-a.yaml");
        _cleanup_free_ char *b = fixture("inc/jobs.d/20-b.yaml"), *pattern = fixture("inc/jobs.d/*.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), 0);
        ck_assert_str_eq(r->include, pattern);
        ck_assert_uint_eq(r->n_jobs, 4);
        /* The main file's jobs, then the drop-ins by name; the README does not match. */
        ck_assert_str_eq(r->jobs[0]->name, "main-job");
        ck_assert_str_eq(r->jobs[1]->name, "a-job");
        ck_assert_str_eq(r->jobs[2]->name, "b-job");
        ck_assert_str_eq(r->jobs[3]->name, "b-job-2");
        ck_assert_str_eq(r->jobs[0]->file, path);
        ck_assert_str_eq(r->jobs[1]->file, a);
        ck_assert_str_eq(r->jobs[3]->file, b);
        ck_assert_uint_eq(r->jobs[3]->line, 5);
        ck_assert_int_eq(r->jobs[1]->schedule.kind, SCHEDULE_EVERY);
}
END_TEST

START_TEST(test_include_errors_name_the_dropin) {
        _cleanup_free_ char *path = fixture("inc-bad/main.yaml"), *bad = fixture("inc-bad/jobs.d/20-bad.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), -EINVAL);
        ck_assert_uint_eq(d.n, 2);
        assert_diag(&d, 0, bad, 1, 1, NULL, NEEDLES("unknown key \"scheduler\"", "a drop-in file holds only jobs"));
        assert_diag(&d, 1, bad, 7, 5, "broken", NEEDLES("unknown key \"colour\"", "expected one of name,"));
        diag_list_clear(&d);
}
END_TEST

START_TEST(test_include_duplicate_across_files) {
        _cleanup_free_ char *path = fixture("inc-dup/main.yaml"), *dropin = fixture("inc-dup/jobs.d/a.yaml");
        _cleanup_free_ char *first = NULL;
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), -EINVAL);
        ck_assert_uint_eq(d.n, 1);
        ck_assert_int_ge(asprintf(&first, "first defined at %s:5:5", path), 0);
        assert_diag(&d, 0, dropin, 5, 11, "shared", NEEDLES("duplicate job name \"shared\"", first));
        diag_list_clear(&d);
}
END_TEST

START_TEST(test_include_no_match) {
        _cleanup_free_ char *path = fixture("inc-missing/main.yaml");
        _cleanup_(registry_freep) registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, 0, &r, &d), 0);
        ck_assert_uint_eq(r->n_jobs, 1);
        ck_assert_str_eq(r->jobs[0]->name, "alone");
}
END_TEST

/* ---- plugins (real .so files from tests/plugins) ---------------------------------------- */

/* Writes fixture NAME.in with @TEST_PLUGIN_DIR@ replaced into a temporary directory. */
static char *instantiate(const char *name, char **ret_tmpdir) {
        const char *plugin_dir = getenv("TEST_PLUGIN_DIR");
        _cleanup_free_ char *in = NULL, *text = NULL, *tmpdir = strdup("/tmp/test-registry-XXXXXX");
        char *out;
        size_t n = 0;

        ck_assert_msg(plugin_dir, "TEST_PLUGIN_DIR is not set (make check sets it)");
        ck_assert_int_ge(asprintf(&in, "%s.in", name), 0);
        _cleanup_free_ char *in_path = fixture(in);
        FILE *f = fopen(in_path, "re");
        ck_assert_msg(f, "%s: %m", in_path);
        ck_assert_int_gt(getdelim(&text, &n, '\0', f), 0);
        fclose(f);

        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        ck_assert_int_ge(asprintf(&out, "%s/%s", tmpdir, name), 0);
        f = fopen(out, "we");
        ck_assert_ptr_nonnull(f);
        const char *marker = "@TEST_PLUGIN_DIR@", *p = text, *m;
        while ((m = strstr(p, marker))) {
                fprintf(f, "%.*s%s", (int) (m - p), p, plugin_dir);
                p = m + strlen(marker);
        }
        fputs(p, f);
        ck_assert_int_eq(fclose(f), 0);
        *ret_tmpdir = TAKE_PTR(tmpdir);
        return out;
}

static void cleanup_instance(char *path, char *tmpdir) {
        unlink(path);
        rmdir(tmpdir);
        free(path);
        free(tmpdir);
}

START_TEST(test_plugins_loaded_and_shared) {
        char *tmpdir;
        char *path = instantiate("plugins-ok.yaml", &tmpdir);
        registry *r = NULL;
        diag_list d = {};
        int k;

        k = load(path, REGISTRY_LOAD_PLUGINS, &r, &d);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(k == 0, "load: %s\n%s", strerror(-k), all);

        const job_def *good = registry_find(r, "good"), *too = registry_find(r, "good-too"),
                      *three = registry_find(r, "good-three");
        ck_assert_ptr_nonnull(good->plugin);
        ck_assert_ptr_eq(good->plugin, too->plugin); /* one object per path */
        ck_assert_ptr_eq(good->plugin, three->plugin);
        ck_assert_uint_eq(good->plugin->n_ref, 3);   /* held by the three jobs only */
        ck_assert_str_eq(good->plugin->desc->name, "ok");

        /* Given params kept, the table's defaults added. */
        int64_t n;
        const char *s;
        const char *const *items;
        size_t n_items;
        ck_assert_int_eq(params_get_int(&good->params, "count", &n), 0);
        ck_assert_int_eq(n, 3);
        ck_assert_int_eq(params_get_list(&good->params, "tags", &items, &n_items), 0);
        ck_assert_uint_eq(n_items, 2);
        ck_assert_str_eq(items[0], "x");
        ck_assert_int_eq(params_get_string(&good->params, "greeting", &s), 0);
        ck_assert_str_eq(s, "hi");
        ck_assert_int_eq(params_get_int(&too->params, "count", &n), 0);
        ck_assert_int_eq(n, 1);
        ck_assert_int_eq(params_get_list(&too->params, "tags", &items, &n_items), 0);
        ck_assert_uint_eq(n_items, 2);
        ck_assert_str_eq(items[1], "b");

        /* The jobs that set no params share the plugin's defaults (one array, not one each);
         * a job with params of its own has its own. registry_free() under ASan: each freed once. */
        ck_assert(too->params.shared && three->params.shared && !good->params.shared);
        ck_assert_ptr_eq(too->params.items, three->params.items);
        ck_assert_ptr_eq(too->params.items, good->plugin->defaults.items);
        ck_assert_uint_eq(three->params.n, 5);
        ck_assert_int_eq(params_get_list(&three->params, "tags", &items, &n_items), 0);
        ck_assert_uint_eq(n_items, 2);
        ck_assert_str_eq(items[0], "a");
        ck_assert_int_eq(params_get_string(&three->params, "greeting", &s), 0);
        ck_assert_str_eq(s, "hi");

        registry_free(r);
        cleanup_instance(path, tmpdir);
}
END_TEST

START_TEST(test_plugins_rejected) {
        char *tmpdir;
        char *path = instantiate("plugins-bad.yaml", &tmpdir);
        registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(load(path, REGISTRY_LOAD_PLUGINS, &r, &d), -EINVAL);
        ck_assert_ptr_null(r);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == 5, "%zu diagnostics, expected 5:\n%s", d.n, all);
        assert_diag(&d, 0, path, 6, 13, "wrong-abi", NEEDLES("badabi.so", "ABI version 42", "expected 1"));
        assert_diag(&d, 1, path, 9, 13, "no-run", NEEDLES("norun.so", "run"));
        assert_diag(&d, 2, path, 15, 14, "bad-params", NEEDLES("count", "\"many\"", "expected an integer"));
        assert_diag(&d, 3, path, 16, 15, "bad-params", NEEDLES("unknown key \"colour\"", "greeting, count"));
        /* The same broken plugin, reported for every job that uses it. */
        assert_diag(&d, 4, path, 18, 13, "wrong-abi-again", NEEDLES("badabi.so", "ABI version 42"));
        diag_list_clear(&d);

        /* Without loading, only the files' existence is checked: the same registry passes. */
        ck_assert_int_eq(load(path, 0, &r, &d), 0);
        ck_assert_uint_eq(d.n, 0);
        ck_assert_ptr_null(registry_find(r, "wrong-abi")->plugin);
        registry_free(r);
        cleanup_instance(path, tmpdir);
}
END_TEST

/* The example registry in etc/ with plugin_dir pointed at the build tree's hello.so and the
 * include pattern at the source tree's etc/jobs.d: it must be valid and load its plugin. */
START_TEST(test_example_registry) {
        const char *top = getenv("top_srcdir"), *build = getenv("top_builddir");
        _cleanup_free_ char *in = NULL, *text = NULL, *tmpdir = strdup("/tmp/test-registry-XXXXXX"), *out = NULL;
        registry *r = NULL;
        diag_list d = {};
        size_t n = 0;

        ck_assert_msg(top && build, "top_srcdir and top_builddir must be set (make check sets them)");
        ck_assert_int_ge(asprintf(&in, "%s/etc/schedulerd.yaml", top), 0);
        FILE *f = fopen(in, "re");
        ck_assert_msg(f, "%s: %m", in);
        ck_assert_int_gt(getdelim(&text, &n, '\0', f), 0);
        fclose(f);

        char *sched = strstr(text, "\nscheduler:\n"), *inc = strstr(text, "include: jobs.d/*.yaml");
        ck_assert_ptr_nonnull(sched);
        ck_assert_ptr_nonnull(inc);
        ck_assert(inc > sched);
        sched += strlen("\nscheduler:\n");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        ck_assert_int_ge(asprintf(&out, "%s/schedulerd.yaml", tmpdir), 0);
        f = fopen(out, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "%.*s  plugin_dir: %s/.libs\n%.*sinclude: %s/etc/jobs.d/*.yaml%s", (int) (sched - text), text,
                build, (int) (inc - sched), sched, top, inc + strlen("include: jobs.d/*.yaml"));
        ck_assert_int_eq(fclose(f), 0);

        int k = registry_load(out, REGISTRY_LOAD_PLUGINS, &r, &d);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(k == 0, "example registry: %s\n%s", strerror(-k), all);
        ck_assert_uint_eq(r->n_jobs, 6);
        ck_assert_str_eq(r->jobs[0]->name, "hello");
        ck_assert_str_eq(r->jobs[0]->plugin->desc->name, "hello");
        ck_assert_ptr_eq(r->jobs[0]->plugin, r->jobs[5]->plugin);
        ck_assert_str_eq(r->jobs[1]->timezone, "Europe/Amsterdam");
        /* a command job: exec.so with the command as its params, chained to a webhook */
        ck_assert_str_eq(r->jobs[2]->name, "disk-usage");
        ck_assert_str_eq(r->jobs[2]->plugin->desc->name, "exec");
        ck_assert_ptr_nonnull(params_find(&r->jobs[2]->params, "command"));
        ck_assert_uint_eq(r->jobs[2]->on_failure.n, 1);
        ck_assert_str_eq(r->jobs[2]->on_failure.items[0].name, "notify-failure");
        ck_assert_str_eq(r->jobs[3]->plugin->desc->name, "webhook");
        ck_assert_str_eq(r->metrics_listen, "127.0.0.1:9163");
        /* the demo's unprivileged job (issue 18) */
        ck_assert_str_eq(r->jobs[4]->name, "hello-unprivileged");
        ck_assert_str_eq(r->jobs[4]->identity.user, "nobody");
        ck_assert_uint_ne(r->jobs[4]->identity.uid, 0);
        ck_assert_str_eq(r->jobs[5]->name, "hello-every-10s");
        ck_assert_int_eq(r->jobs[5]->schedule.kind, SCHEDULE_EVERY);
        ck_assert_uint_eq(r->jobs[5]->schedule.interval, 10 * USEC_PER_SEC);
        registry_free(r);
        unlink(out);
        rmdir(tmpdir);
}
END_TEST

/* ---- the jobs list checked while the file is read ---------------------------------------- */

/* Writes TEXT to DIR/NAME; returns the path. */
static char *write_in(const char *dir, const char *name, const char *text) {
        char *path;
        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
        return path;
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-registry-XXXXXX");
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

/* scheduler.cluster: defaults, values, and the errors that name the key. */
START_TEST(test_scheduler_cluster) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *ok = write_in(dir, "ok.yaml",
                                           "scheduler:\n  cluster: { node: host-a.1, lease: 6s, max_clock_skew: 500ms }\njobs: []\n");
        _cleanup_free_ char *dflt = write_in(dir, "dflt.yaml", "jobs: []\n");
        _cleanup_free_ char *bad = write_in(dir, "bad.yaml",
                                            "scheduler:\n  cluster: { node: \"a b\", lease: 2s, max_clock_skew: 3s, x: 1 }\n"
                                            "jobs: []\n");
        registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(registry_load(dflt, REGISTRY_IGNORE_PLUGINS, &r, &d), 0);
        ck_assert_ptr_null(r->cluster_node);
        ck_assert_uint_eq(r->cluster_lease, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(r->cluster_max_clock_skew, 2 * USEC_PER_SEC);
        r = registry_free(r);
        ck_assert_int_eq(registry_load(ok, REGISTRY_IGNORE_PLUGINS, &r, &d), 0);
        ck_assert_str_eq(r->cluster_node, "host-a.1");
        ck_assert_uint_eq(r->cluster_lease, 6 * USEC_PER_SEC);
        ck_assert_uint_eq(r->cluster_max_clock_skew, 500 * USEC_PER_MSEC);
        r = registry_free(r);
        ck_assert_int_eq(registry_load(bad, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_ptr_nonnull(strstr(all, "scheduler.cluster.node: \"a b\" is not a node name"));
        ck_assert_ptr_nonnull(strstr(all, "max_clock_skew must be shorter than the lease"));
        ck_assert_ptr_nonnull(strstr(all, "x"));
        diag_list_clear(&d);
        unlink(ok);
        unlink(dflt);
        unlink(bad);
        rmdir(dir);
}
END_TEST

/* Anchors in one job used by later ones: the earlier job's nodes must outlive its check. */
START_TEST(test_jobs_aliases_across_items) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = write_in(dir, "r.yaml",
                                             "scheduler:\n"
                                             "  timezone: Asia/Tokyo\n"
                                             "jobs:\n"
                                             "  - name: a\n"
                                             "    plugin: x.so\n"
                                             "    schedule: &daily \"0 3 * * *\"\n"
                                             "    params: &p {greeting: hi, tags: [x, y]}\n"
                                             "  - name: b\n"
                                             "    plugin: x.so\n"
                                             "    schedule: *daily\n"
                                             "    params: *p\n"
                                             "  - &c {name: c, plugin: x.so, schedule: \"@hourly\"}\n");
        registry *r = NULL;
        diag_list d = {};
        const char *v;
        const char *const *items;
        size_t n;

        int k = registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(k == 0, "load: %s\n%s", strerror(-k), all);
        ck_assert_uint_eq(r->n_jobs, 3);
        ck_assert_str_eq(r->jobs[1]->name, "b");
        ck_assert_str_eq(r->jobs[1]->schedule_expr, "0 3 * * *");
        ck_assert_str_eq(r->jobs[1]->timezone, "Asia/Tokyo"); /* the scheduler section came first */
        ck_assert_int_eq(params_get_string(&r->jobs[1]->params, "greeting", &v), 0);
        ck_assert_str_eq(v, "hi");
        ck_assert_int_eq(params_get_list(&r->jobs[1]->params, "tags", &items, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(items[1], "y");
        ck_assert_str_eq(r->jobs[2]->name, "c");
        registry_free(r);
        unlink(path);
        rmdir(dir);
}
END_TEST

/* scheduler.store: sqlite or a libpq string, checked where it is written; never a password. */
START_TEST(test_scheduler_store) {
        static const char *const good[] = { "sqlite", "host=db1,db2 dbname=s target_session_attrs=read-write",
                                            "postgresql://db1/s?sslmode=require" };
        static const struct {
                const char *value, *needle;
        } bad[] = {
                { "host=db1 password=hunter2", ".pgpass" },
                { "postgresql://u:hunter2@db1/s", "PGPASSFILE" },
                { "sqlite3", "not a libpq connection string" },
                { "[a, b]", "scheduler.store" },
        };
        _cleanup_free_ char *dir = make_tmpdir();

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *text = NULL;
                ck_assert_int_ge(asprintf(&text, "scheduler:\n  store: \"%s\"\njobs: []\n", good[i]), 0);
                _cleanup_free_ char *path = write_in(dir, "r.yaml", text);
                registry *r = NULL;
                diag_list d = {};
                int k = registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d);
                _cleanup_free_ char *all = diags_to_string(&d);
                ck_assert_msg(k == 0, "%s: %s", good[i], all);
                ck_assert_str_eq(r->store, good[i]);
                registry_free(r);
                unlink(path);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL;
                bool flow = bad[i].value[0] == '[';
                ck_assert_int_ge(asprintf(&text, flow ? "scheduler:\n  store: %s\njobs: []\n"
                                                      : "scheduler:\n  store: \"%s\"\njobs: []\n", bad[i].value), 0);
                _cleanup_free_ char *path = write_in(dir, "r.yaml", text);
                registry *r = NULL;
                diag_list d = {};
                ck_assert_int_eq(registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
                _cleanup_free_ char *all = diags_to_string(&d);
                ck_assert_msg(d.n == 1, "%s: %s", bad[i].value, all);
                assert_diag(&d, 0, path, 2, 10, NULL, NEEDLES(bad[i].needle));
                ck_assert_msg(!strstr(all, "hunter2"), "the password is not repeated: %s", all);
                diag_list_clear(&d);
                unlink(path);
        }
        rmdir(dir);
}
END_TEST

/* Loads TEXT as a registry and asserts the one diagnostic: invalid YAML at LINE:COLUMN naming
 * NEEDLE, and no registry. */
static void assert_yaml_refused(const char *text, unsigned line, unsigned column, const char *needle) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = write_in(dir, "r.yaml", text);
        registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
        ck_assert_ptr_null(r);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == 1, "%zu diagnostics, expected 1:\n%s", d.n, all);
        assert_diag(&d, 0, path, line, column, NULL, NEEDLES("invalid YAML", needle));
        diag_list_clear(&d);
        unlink(path);
        rmdir(dir);
}

/* 200 KB of "[" overflowed the stack of every recursive walk (the daemon died on reload); the
 * nesting is refused where it passes the limit. */
START_TEST(test_yaml_depth_limit) {
        size_t n = 100000;
        _cleanup_free_ char *text = malloc(6 + 2 * n + 2);
        ck_assert_ptr_nonnull(text);
        memcpy(text, "jobs: ", 6);
        memset(text + 6, '[', n);
        memset(text + 6 + n, ']', n);
        memcpy(text + 6 + 2 * n, "\n", 2);
        /* the root mapping is level 1, "jobs: [" (column 7) level 2: level 65 opens at column 70 */
        assert_yaml_refused(text, 1, 6 + REGISTRY_DEPTH_MAX, "nested deeper than 64 levels");

        /* an alias is as deep as its anchor: 41 levels used 41 levels down; refused at the alias */
        _cleanup_free_ char *deep = NULL, *anchor = NULL;
        ck_assert_int_ge(asprintf(&anchor, "x: &a %.*s1%.*s\n", 40, text + 6, 40, text + 6 + n), 0);
        ck_assert_int_ge(asprintf(&deep, "%sy: %.*s*a%.*s\n", anchor, 40, text + 6, 40, text + 6 + n), 0);
        assert_yaml_refused(deep, 2, 4 + 40, "nested deeper than 64 levels");
        /* the same anchor used shallower is fine as far as depth goes */
        _cleanup_free_ char *ok = NULL, *p = NULL;
        ck_assert_int_ge(asprintf(&ok, "%sjobs: []\ny: [*a]\n", anchor), 0);
        _cleanup_free_ char *dir = make_tmpdir();
        p = write_in(dir, "r.yaml", ok);
        registry *r = NULL;
        diag_list d = {};
        _cleanup_free_ char *all = NULL;
        (void) registry_load(p, REGISTRY_IGNORE_PLUGINS, &r, &d);
        all = diags_to_string(&d);
        ck_assert_msg(!strstr(all, "invalid YAML"), "%s", all);
        registry_free(r);
        diag_list_clear(&d);
        unlink(p);
        rmdir(dir);
}
END_TEST

/* "Billion laughs": each level aliases the previous one ten times; 11 levels stand for 10^11
 * nodes (a 447 KB file of this kind took more than 4 GB). Refused at the alias that passes the
 * count, before anything expands it. And an alias inside its own anchor is a cycle. */
START_TEST(test_yaml_alias_limits) {
        _cleanup_free_ char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        ck_assert_ptr_nonnull(f);
        fputs("x:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n", f);
        for (int i = 1; i < 12; i++) {
                fprintf(f, "  a%d: &a%d [", i, i);
                for (int k = 0; k < 10; k++)
                        fprintf(f, "%s*a%d", k ? ", " : "", i - 1);
                fputs("]\n", f);
        }
        fputs("jobs: []\n", f);
        ck_assert_int_eq(fclose(f), 0);
        /* a4 stands for 111,111 nodes; a1..a4 use 124,440: the eighth *a4 in a5 (line 7, column
         * 12 + 7 * 5) passes 1,000,000 */
        assert_yaml_refused(text, 7, 47, "aliases expand to more than 1000000 nodes");

        assert_yaml_refused("jobs: []\nx: &a [1, *a]\n", 2, 11, "alias refers to a node that contains it");
        assert_yaml_refused("jobs: []\nx: &a {k: *a}\n", 2, 11, "alias refers to a node that contains it");
}
END_TEST

/* A YAML error after jobs that were already checked: only the YAML error is reported, as when
 * the whole file was parsed before any job was looked at. */
START_TEST(test_jobs_then_yaml_error) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = write_in(dir, "r.yaml",
                                             "scheduler:\n"
                                             "  timezone: UTC\n"
                                             "jobs:\n"
                                             "  - name: Bad_Name\n"
                                             "    plugin: x.so\n"
                                             "    schedule: \"@daily\"\n"
                                             "  - name: b\n"
                                             "    plugin: x.so\n"
                                             "    schedule: *nowhere\n");
        registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
        ck_assert_ptr_null(r);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == 1, "%zu diagnostics, expected 1:\n%s", d.n, all);
        assert_diag(&d, 0, path, 9, 15, NULL, NEEDLES("invalid YAML", "found undefined alias"));
        diag_list_clear(&d);
        unlink(path);
        rmdir(dir);
}
END_TEST

/* A drop-in with a second document is not used: the jobs of its first document, checked while
 * it was read, must not count (here: no duplicate name with the next drop-in). */
START_TEST(test_dropin_second_document_undone) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = write_in(dir, "r.yaml",
                                             "scheduler:\n"
                                             "  include: d-*.yaml\n"
                                             "jobs: []\n");
        _cleanup_free_ char *a = write_in(dir, "d-a.yaml",
                                          "jobs:\n"
                                          "  - {name: dup, plugin: x.so, schedule: \"@daily\", enabled: maybe}\n"
                                          "---\n"
                                          "jobs: []\n");
        _cleanup_free_ char *b = write_in(dir, "d-b.yaml",
                                          "jobs:\n"
                                          "  - {name: dup, plugin: x.so, schedule: \"@daily\"}\n");
        registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == 1, "%zu diagnostics, expected 1:\n%s", d.n, all);
        assert_diag(&d, 0, NULL, 3, 1, NULL, NEEDLES("second YAML document"));
        ck_assert(strstr(d.items[0].file, "d-a.yaml"));
        diag_list_clear(&d);
        unlink(a);
        unlink(b);
        unlink(path);
        rmdir(dir);
}
END_TEST

/* The scheduler section after the jobs still applies to them (the jobs are then read from the
 * whole document, as before). */
START_TEST(test_scheduler_after_jobs) {
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = write_in(dir, "r.yaml",
                                             "jobs:\n"
                                             "  - {name: a, plugin: x.so, schedule: \"@daily\"}\n"
                                             "  - {name: b, plugin: x.so, schedule: \"@daily\", enabled: maybe}\n"
                                             "scheduler:\n"
                                             "  timezone: Europe/Amsterdam\n"
                                             "  plugin_dir: /opt/p\n");
        registry *r = NULL;
        diag_list d = {};

        ck_assert_int_eq(registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d), -EINVAL);
        _cleanup_free_ char *all = diags_to_string(&d);
        ck_assert_msg(d.n == 1, "%zu diagnostics, expected 1:\n%s", d.n, all);
        assert_diag(&d, 0, path, 3, 58, "b", NEEDLES("enabled", "maybe"));
        diag_list_clear(&d);
        unlink(path);

        free(path);
        path = write_in(dir, "r.yaml",
                        "jobs:\n"
                        "  - {name: a, plugin: x.so, schedule: \"@daily\"}\n"
                        "scheduler:\n"
                        "  timezone: Europe/Amsterdam\n"
                        "  plugin_dir: /opt/p\n");
        int k = registry_load(path, REGISTRY_IGNORE_PLUGINS, &r, &d);
        _cleanup_free_ char *all2 = diags_to_string(&d);
        ck_assert_msg(k == 0, "load: %s\n%s", strerror(-k), all2);
        ck_assert_str_eq(r->jobs[0]->timezone, "Europe/Amsterdam");
        ck_assert_str_eq(r->jobs[0]->plugin_path, "/opt/p/x.so");
        registry_free(r);
        unlink(path);
        rmdir(dir);
}
END_TEST

static Suite *registry_suite(void) {
        Suite *s = suite_create("registry");
        TCase *tc = tcase_create("errors");
        tcase_add_loop_test(tc, test_error_fixture, 0, (int) ELEMENTSOF(errors));
        tcase_add_test(tc, test_many_errors_all_reported);
        tcase_add_test(tc, test_duplicate_name_names_both_places);
        tcase_add_test(tc, test_missing_file);
        suite_add_tcase(s, tc);

        tc = tcase_create("valid");
        tcase_add_test(tc, test_valid_full);
        tcase_add_test(tc, test_scheduler_defaults);
        tcase_add_test(tc, test_scheduler_store);
        tcase_add_test(tc, test_empty_file);
        tcase_add_test(tc, test_overrides);
        suite_add_tcase(s, tc);

        tc = tcase_create("streamed");
        tcase_add_test(tc, test_jobs_aliases_across_items);
        tcase_add_test(tc, test_scheduler_cluster);
        tcase_add_test(tc, test_jobs_then_yaml_error);
        tcase_add_test(tc, test_yaml_depth_limit);
        tcase_add_test(tc, test_yaml_alias_limits);
        tcase_add_test(tc, test_dropin_second_document_undone);
        tcase_add_test(tc, test_scheduler_after_jobs);
        suite_add_tcase(s, tc);

        tc = tcase_create("includes");
        tcase_add_test(tc, test_include_merge_order);
        tcase_add_test(tc, test_include_errors_name_the_dropin);
        tcase_add_test(tc, test_include_duplicate_across_files);
        tcase_add_test(tc, test_include_no_match);
        suite_add_tcase(s, tc);

        tc = tcase_create("plugins");
        tcase_add_test(tc, test_plugins_loaded_and_shared);
        tcase_add_test(tc, test_plugins_rejected);
        tcase_add_test(tc, test_example_registry);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(registry_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
