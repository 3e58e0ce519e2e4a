#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 14: runtime guarantees across reload, restart and retry, judged by a witness plugin
(tests/plugins/witness.c) that records from inside every run, compared with history.db."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import unittest

from harness import PLUGINS, SCHEDCTL, DaemonTestCase, job, wait_for


def schedctl(d, *args):
    p = subprocess.run([SCHEDCTL, "--config", d.config, "--socket", d.sock] + list(args), capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, NO_COLOR="1"))
    return p.returncode, p.stdout, p.stderr


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between open() and read()
        return False


class Guarantees(DaemonTestCase):
    def witnessed(self, d):
        self.wfile = os.path.join(d.tmp, "witness.jsonl")
        return self.wfile

    def wjob(self, name, schedule, d=None, **kw):
        params = dict(kw.pop("params", {}))
        params["file"] = self.wfile
        return job(name, kw.pop("plugin", "witness.so"), schedule, params=params, **kw)

    def daemon_w(self, jobs_fn, scheduler=""):
        d = self.daemon("", scheduler)
        self.witnessed(d)
        d.write_registry(jobs_fn(), scheduler)
        return d

    def lines(self, job=None):
        try:
            with open(self.wfile) as f:
                ls = [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []
        return [x for x in ls if job is None or x["job"] == job]

    def reload(self, d, jobs, scheduler=""):
        d.write_registry(jobs, scheduler)
        r = d.ctl({"command": "reload"})
        self.assertTrue(r["ok"], r)
        return r

    def assert_no_overlap(self, events):
        in_flight = set()
        for e in events:
            if e["event"] == "start":
                self.assertFalse(in_flight, "run %s started while %s ran: %s" % (e["run_id"], in_flight, events))
                in_flight.add(e["run_id"])
            else:
                in_flight.discard(e["run_id"])

    # --- 1 ---------------------------------------------------------------------------
    def test_singleton_kept_across_remove_and_readd(self):
        d = self.daemon_w(lambda: self.wjob("s", "@yearly", params={"duration": "4s"}) + job("other", "ok.so", "@yearly"))
        d.start()
        first = d.ctl({"command": "run", "job": "s"})["run_id"]
        wait_for(lambda: self.lines("s"), what="the first run to start")
        self.reload(d, job("other", "ok.so", "@yearly"))
        self.reload(d, self.wjob("s", "* * * * * *", params={"duration": "300ms"}) + job("other", "ok.so", "@yearly"))
        wait_for(lambda: any(e["event"] == "end" and e["run_id"] == first for e in self.lines("s")), timeout=8,
                 what="the first run to end")
        time.sleep(3.2)  # several fires of the re-added job after the first run ended
        d.stop()
        ev = self.lines("s")
        self.assert_no_overlap(ev)
        self.assertGreaterEqual(len([e for e in ev if e["event"] == "start"]), 3, ev)
        for r in d.runs("s"):
            if r["status"] == "skipped":
                self.assertIn("previous run %d still running" % first, r["message"])

    # --- 2 ---------------------------------------------------------------------------
    def test_new_run_keeps_pending_retry(self):
        d = self.daemon_w(lambda: self.wjob("r", "@yearly", singleton=False, retry={"attempts": 1, "backoff": "2s"},
                                            params={"result": "retry"}))
        d.start()
        a = d.ctl({"command": "run", "job": "r"})["run_id"]
        wait_for(lambda: "Retry 1 of 1" in d.log(), what="the first retry to be scheduled")
        b = d.ctl({"command": "run", "job": "r"})["run_id"]
        rows = d.wait_runs("r", lambda rs: len([x for x in rs if x["attempt"] == 1 and x["finished_usec"]]) >= 2,
                           timeout=8, what="a retry of each run")
        self.assertEqual(sorted(x["retry_of"] for x in rows if x["attempt"] == 1), [a, b])
        d.stop()

    # --- 3 ---------------------------------------------------------------------------
    def pending_retry_survives(self, stop):
        d = self.daemon_w(lambda: self.wjob("r", "@yearly", retry={"attempts": 1, "backoff": "3s"},
                                            params={"result": "retry"}))
        d.start()
        a = d.ctl({"command": "run", "job": "r"})["run_id"]
        wait_for(lambda: "Retry 1 of 1" in d.log(), what="the retry to be scheduled")
        stop(d)
        d.start()
        st = d.ctl({"command": "status", "job": "r"})
        self.assertEqual(st["job"]["state"], "retrying", st)
        rows = d.wait_runs("r", lambda rs: any(x["attempt"] == 1 and x["finished_usec"] for x in rs), timeout=8,
                           what="the retry after the restart")
        self.assertEqual([x["retry_of"] for x in rows if x["attempt"] == 1], [a])
        self.assertEqual([e["attempt"] for e in self.lines("r") if e["event"] == "start"], [0, 1])
        d.stop()

    def test_pending_retry_survives_sigterm(self):
        self.pending_retry_survives(lambda d: d.stop())

    def test_pending_retry_survives_kill9(self):
        self.pending_retry_survives(lambda d: d.kill9())

    # --- 4 ---------------------------------------------------------------------------
    def test_reload_loads_the_replaced_plugin(self):
        d = self.daemon("")
        self.witnessed(d)
        # plugins load from plugin_dir only: one of the test's own, where the file can be replaced
        d.plugin_dir = os.path.join(d.tmp, "plugins")
        os.mkdir(d.plugin_dir, 0o755)
        so = os.path.join(d.plugin_dir, "p.so")
        shutil.copy(os.path.join(PLUGINS, "witness.so"), so)
        jobs = self.wjob("p", "@yearly", plugin="p.so")
        d.write_registry(jobs)
        d.start()
        d.ctl({"command": "run", "job": "p", "wait": True})
        r = self.reload(d, jobs)
        self.assertEqual(r.get("plugins_changed"), [], r)
        shutil.copy(os.path.join(PLUGINS, "witness2.so"), so + ".new")
        os.rename(so + ".new", so)
        for _ in range(2):  # the second reload must not go back to the old file either
            r = self.reload(d, jobs)
            d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual([e["version"] for e in self.lines("p") if e["event"] == "start"], [1, 2, 2])
        # the first of the two reloads named the plugin
        self.assertIn("plugin %s changed" % so, d.log())
        with open("/proc/%d/maps" % d.proc.pid) as f:
            self.assertNotIn("p.so (deleted)", f.read())
        d.stop()

    # --- 5 ---------------------------------------------------------------------------
    def test_run_of_a_killed_daemon_ends_before_restart(self):
        d = self.daemon_w(lambda: self.wjob("o", "@yearly", timeout="15s",
                                            params={"duration": "30s", "ignore_term": "true"}))
        d.start()
        d.ctl({"command": "run", "job": "o"})
        wait_for(lambda: self.lines("o"), what="the run to start")
        pid = self.lines("o")[0]["pid"]
        d.kill9()
        time.sleep(0.3)
        self.assertTrue(pid_alive(pid), "the run ignores SIGTERM and must outlive the daemon here")
        d.start()
        self.assertFalse(pid_alive(pid), "the previous daemon's run still runs after the restart's READY=1")
        row = d.runs("o")[0]
        self.assertEqual(row["status"], "interrupted")
        self.assertIn("killed", row["message"])
        self.assertIn("pid %d" % pid, d.log())
        d.stop()

    # --- 6 ---------------------------------------------------------------------------
    def test_catch_up_before_the_first_fire(self):
        d = self.daemon_w(lambda: self.wjob("c", "0 * * * *", catch_up=True))
        offset = os.path.join(d.tmp, "clock-offset")
        with open(offset, "w") as f:
            f.write("0\n")
        env = {"SCHEDULERD_TEST_CLOCK_OFFSET_FILE": offset}
        d.start(extra_env=env)
        d.stop()
        self.assertEqual(d.runs("c"), [])
        with open(offset, "w") as f:
            f.write("%d\n" % (2 * 3600))  # down across the job's first two fires
        d.start(extra_env=env)
        rows = d.wait_runs("c", lambda rs: rs, timeout=5, what="a catch-up run")
        self.assertEqual([r["trigger"] for r in rows], ["catch_up"])
        d.stop()

    # --- 7 ---------------------------------------------------------------------------
    def test_retention_prune_interval_reload_and_status_size(self):
        hist = "  history:\n    max_runs_per_job: %d\n    prune_interval: %s\n"
        jobs = job("e", "ok.so", "* * * * * *")
        d = self.daemon(jobs, hist % (3, "1s"))
        d.start()
        time.sleep(5)
        n = len(d.runs("e"))
        self.assertLessEqual(n, 3 + 2, "pruned every second to 3 rows, give or take a fire")
        self.assertIn("every 1s", d.log())
        st = d.ctl({"command": "status"})
        self.assertIn("history_runs", st)
        self.assertGreater(st["history_bytes"], 0)
        # a reload with a lower limit prunes at once, whatever the interval
        self.reload(d, jobs, hist % (1, "1h"))
        self.assertLessEqual(len([r for r in d.runs("e") if r["status"] != "running"]), 1)
        d.stop()

    # --- 8 ---------------------------------------------------------------------------
    def test_catch_up_startup_and_on_time_fire_are_one_run(self):
        d = self.daemon_w(lambda: self.wjob("one", "0 * * * * *", catch_up=True, run_on_startup=True,
                                            params={"duration": "1500ms"}))
        offset = os.path.join(d.tmp, "clock-offset")
        with open(offset, "w") as f:
            f.write("0\n")
        env = {"SCHEDULERD_TEST_CLOCK_OFFSET_FILE": offset}
        # one start, to record when the job was first loaded, and a first on-time fire missed
        d.start(extra_env=env)
        d.stop()
        con = sqlite3.connect(d.db_path())  # what the first start ran is not what is judged
        with con:
            con.execute("DELETE FROM runs")
        con.close()
        open(self.wfile, "w").close()
        # start again at 0.5 s before a minute of the daemon's clock, some minutes later
        now = time.time()
        frac = now - int(now)
        if frac > 0.3:
            time.sleep(1.1 - frac)  # just past a second: the start takes well under 0.5 s
        now = time.time()
        target = (int(now) // 60 + 5) * 60 - 1  # whole seconds; the fraction of now adds ~0.1 s
        with open(offset, "w") as f:
            f.write("%d\n" % (target - int(now)))
        d.start(extra_env=env)
        time.sleep(2.5)
        d.stop()
        rows = d.runs("one")
        self.assertEqual(len([r for r in rows if r["status"] != "skipped"]), 1, rows)
        self.assertEqual([r for r in rows if r["status"] == "skipped"], [], rows)
        self.assertEqual(len([e for e in self.lines("one") if e["event"] == "start"]), 1)

    # --- 9 ---------------------------------------------------------------------------
    def test_history_of_a_removed_job(self):
        d = self.daemon(job("gone", "ok.so", "@yearly") + job("stay", "ok.so", "@yearly")).start()
        d.ctl({"command": "run", "job": "gone", "wait": True})
        self.reload(d, job("stay", "ok.so", "@yearly"))
        rc, out, err = schedctl(d, "history", "gone")
        self.assertEqual(rc, 0, err)
        self.assertIn("succeeded", out)
        self.assertIn("no longer in the registry", err)
        rc, out, err = schedctl(d, "history", "never-was")
        self.assertEqual(rc, 1)
        d.stop()

    def test_readded_job_says_it_is_disabled_by_an_override(self):
        jobs = job("x", "ok.so", "@yearly", enabled=True) + job("y", "ok.so", "@yearly")
        d = self.daemon(jobs).start()
        self.assertTrue(d.ctl({"command": "disable", "job": "x"})["ok"])
        self.reload(d, job("y", "ok.so", "@yearly"))
        self.reload(d, jobs)
        self.assertIn('"x" is disabled by an override', d.log())
        rc, out, err = schedctl(d, "list")
        self.assertEqual(rc, 0, err)
        line = [x for x in out.splitlines() if " x " in " %s " % x][0]
        self.assertIn("no (override)", line)
        d.stop()

    def test_disable_drops_a_pending_retry(self):
        d = self.daemon_w(lambda: self.wjob("r", "@yearly", retry={"attempts": 1, "backoff": "2s"},
                                            params={"result": "retry"}))
        d.start()
        d.ctl({"command": "run", "job": "r"})
        wait_for(lambda: "Retry 1 of 1" in d.log(), what="the retry to be scheduled")
        self.assertTrue(d.ctl({"command": "disable", "job": "r"})["ok"])
        time.sleep(3)
        self.assertEqual([x["attempt"] for x in d.runs("r")], [0])
        self.assertIn("dropped: the job is disabled", d.log())
        d.stop()

    # --- 10 --------------------------------------------------------------------------
    def test_next_left_is_from_now(self):
        d = self.daemon(job("x", "ok.so", "@yearly"))
        rc, out, err = schedctl(d, "next", "0 0 1 1 *", "--from", "2020-06-01T00:00:00Z", "-n", "1")
        self.assertEqual(rc, 0, err)
        self.assertIn("2021-01-01", out)
        self.assertIn("ago", out.splitlines()[1])
        rc, out, err = schedctl(d, "--json", "next", "0 0 1 1 *", "--from", "2020-06-01T00:00:00Z", "-n", "1")
        self.assertLess(json.loads(out)[0]["left_usec"], 0)

    def test_run_at_rejects_second_60_and_names_a_dst_gap(self):
        d = self.daemon(job("x", "ok.so", "@yearly", timezone="Europe/Amsterdam")).start()
        rc, out, err = schedctl(d, "run", "x", "--at", "2026-03-29T10:00:60Z")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("seconds must be 00 to 59", err)
        self.assertEqual(d.runs("x"), [])
        rc, out, err = schedctl(d, "run", "x", "--at", "2026-03-29T02:30:00")
        self.assertEqual(rc, 0, err)
        self.assertIn("does not exist in Europe/Amsterdam", out)
        self.assertIn("2026-03-29T03:00:00+02:00", out)
        d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
