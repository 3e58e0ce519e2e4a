# SPDX-License-Identifier: MIT
"""Issue 3: the daemon's life under systemd: notify, signals, reload, crashes and restarts."""
import os
import signal
import subprocess
import time
import unittest

from harness import BUILDDIR, DaemonTestCase, SRCDIR, job, wait_for


class Lifecycle(DaemonTestCase):
    def test_notify_ready_status_stopping(self):
        # a: Jan 1 00:30, never at the same instant as b's hourly fire (@daily was: from 23:00
        # UTC on, both were next at midnight and the status named a)
        d = self.daemon(job("a", "ok.so", "30 0 1 1 *") + job("b", "ok.so", "@hourly")).start()
        status = [m for m in d.messages if m.startswith("STATUS=")]
        self.assertTrue(status, d.messages)
        self.assertIn("2 jobs, 0 running, next: b in", status[-1])
        self.assertEqual(d.stop(), 0)
        self.assertIn("STOPPING=1", d.messages)
        self.assertLess(d.messages.index("READY=1"), d.messages.index("STOPPING=1"))

    def test_sigterm_with_runs_in_flight(self):
        d = self.daemon(job("slow", "slow.so", "@yearly", params={"duration": "60s"}) +
                        job("hang", "hang.so", "@yearly"), "  shutdown_grace: 1s\n")
        d.start()
        d.ctl({"command": "run", "job": "slow"})
        d.ctl({"command": "run", "job": "hang"})
        d.wait_runs("hang", lambda rs: rs and "hanging" in (d.log() or ""), what="hang to start")
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0)

        self.assertLess(time.monotonic() - t0, 10)
        rows = {r["job"]: r for r in d.runs()}
        self.assertEqual(rows["slow"]["status"], "cancelled")
        self.assertEqual(rows["hang"]["status"], "cancelled")
        self.assertIsNotNone(rows["hang"]["finished_usec"])

    def test_interrupted_after_kill9_and_no_double_fire(self):
        d = self.daemon(job("tick", "slow.so", "* * * * * *", params={"duration": "1500ms"}, singleton=False)).start()
        d.wait_runs("tick", lambda rs: any(r["status"] == "running" for r in rs), what="a running run")
        d.kill9()
        d.start()
        rows = d.wait_runs("tick", lambda rs: any(r["status"] == "interrupted" for r in rs), what="interrupted")
        self.assertIn("marked interrupted", d.log())
        time.sleep(2.5)
        d.stop()
        rows = d.runs("tick")
        keys = [(r["scheduled_usec"], r["attempt"], r["trigger"]) for r in rows]
        self.assertEqual(len(keys), len(set(keys)), "a fire ran twice: %s" % keys)
        fires = [r["scheduled_usec"] for r in rows if r["trigger"] == "schedule"]
        self.assertEqual(len(fires), len(set(fires)))

    def test_catch_up_after_a_stop(self):
        jobs = job("cu", "ok.so", "* * * * * *", catch_up=True) + job("nocu", "ok.so", "* * * * * *")
        d = self.daemon(jobs).start()
        d.wait_runs("cu", lambda rs: len(rs) >= 1)
        d.stop()
        last = max(r["scheduled_usec"] for r in d.runs("cu"))
        time.sleep(3.2)
        d.start()
        rows = d.wait_runs("cu", lambda rs: any(r["trigger"] == "catch_up" for r in rs), what="catch_up run")
        cu = [r for r in rows if r["trigger"] == "catch_up"]
        self.assertEqual(len(cu), 1, "missed fires must coalesce into one run")
        self.assertGreater(cu[0]["scheduled_usec"], last + 2000000)
        d.stop()
        self.assertFalse([r for r in d.runs("nocu") if r["trigger"] == "catch_up"])

    def test_sighup_good_and_bad_registry(self):
        d = self.daemon(job("one", "ok.so", "@daily")).start()
        d.write_registry(job("one", "ok.so", "@daily") + job("two", "ok.so", "@hourly"))
        d.signal(signal.SIGHUP)
        wait_for(lambda: len(d.ctl({"command": "list"})["jobs"]) == 2, what="reload to add a job")
        # sent before the reload; the reader thread may take it after the reply above
        d.wait_notify("RELOADING=1")
        d.write_registry(job("one", "ok.so", "@daily") + job("Bad Name", "ok.so", "61 * * * *"))
        d.signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running registry" in d.log(), what="bad reload to be refused")
        self.assertIn("registry.yaml:", d.log())
        names = [j["name"] for j in d.ctl({"command": "list"})["jobs"]]
        self.assertEqual(names, ["one", "two"])
        # the control command reports the same
        r = d.ctl({"command": "reload"})
        self.assertFalse(r["ok"])
        self.assertTrue(any("61" in e for e in r["errors"]), r)
        self.assertEqual(d.stop(), 0)

    def test_a_run_across_a_reload_that_reorders_the_jobs_ends_as_its_own_jobs(self):
        # a run finds its job by its index in the registry it started with (job_rt_of_run());
        # after a reload that puts another job at that index it must still end as its own
        for isolation in ("process", "worker"):
            with self.subTest(isolation=isolation):
                a = job("a", "slow.so", "@yearly", isolation=isolation, params={"duration": "2s"})
                b = job("b", "ok.so", "@yearly", isolation=isolation)
                d = self.daemon(a + b).start()
                self.assertTrue(d.ctl({"command": "run", "job": "a"})["ok"])
                wait_for(lambda: d.runs("a") and d.runs("a")[0]["status"] == "running", what="a to start")
                d.write_registry(b + a)
                self.assertTrue(d.ctl({"command": "reload"})["ok"])
                state = lambda: {j["name"]: j["state"] for j in d.ctl({"command": "list"})["jobs"]}
                self.assertEqual(state(), {"a": "running", "b": "idle"})
                row = d.wait_runs("a", lambda rs: rs[0]["status"] != "running", timeout=20,
                                  what="a's run to end")[0]
                self.assertEqual(row["status"], "succeeded", row)
                wait_for(lambda: state() == {"a": "idle", "b": "idle"}, what="a to be idle")
                # b, now where a was, runs as before
                r = d.ctl({"command": "run", "job": "b", "wait": True})
                self.assertEqual(r["status"], "succeeded", r)
                self.assertEqual(d.stop(), 0)

    def test_wall_clock_set_forwards_and_backwards(self):
        # cu fires every 5 s: under misfire_threshold auto a catch_up job also catches up on a
        # fire the daemon reaches a period late, and an ASan-slowed daemon can be a second late
        # right after the jump; 5 s keeps the one catch-up counted here the jump's own
        d = self.daemon(job("tick", "ok.so", "* * * * * *") + job("cu", "ok.so", "*/5 * * * * *", catch_up=True) +
                        job("mono", "ok.so", "@every 1s"))
        offset = os.path.join(d.tmp, "clock-offset")

        def set_offset(secs):
            with open(offset + ".tmp", "w") as f:
                f.write("%d\n" % secs)
            os.rename(offset + ".tmp", offset)

        t0 = time.time()
        d.start(extra_env={"SCHEDULERD_TEST_CLOCK_OFFSET_FILE": offset})
        d.wait_runs("tick", lambda rs: len(rs) >= 2)
        d.wait_runs("cu", lambda rs: len(rs) >= 2)

        t_jump = time.time()
        set_offset(3600)  # the clock jumps an hour forwards
        wait_for(lambda: d.log().count("System clock was set") == 1, timeout=30, what="the forward jump to be noticed")
        d.wait_runs("tick", lambda rs: any(r["scheduled_usec"] > (time.time() + 3500) * 1e6 for r in rs),
                    what="fires an hour ahead")
        cu = d.wait_runs("cu", lambda rs: any(r["trigger"] == "catch_up" for r in rs), what="a catch-up run")
        self.assertEqual(len([r for r in cu if r["trigger"] == "catch_up"]), 1)

        set_offset(0)  # and back: without a recompute, cron would wait an hour
        wait_for(lambda: d.log().count("System clock was set") == 2, what="the backward jump to be noticed")
        t_back = time.time()
        d.wait_runs("tick", lambda rs: any(t_back < r["scheduled_usec"] / 1e6 < time.time() + 5 for r in rs),
                    what="fires at the real time again")
        time.sleep(1.5)
        elapsed = time.time() - t0
        d.stop()

        keys = [(r["scheduled_usec"], r["attempt"]) for r in d.runs("tick")]
        self.assertEqual(len(keys), len(set(keys)), "a fire ran twice")
        # the skipped hour is not replayed fire by fire
        skipped_hour = [r for r in d.runs("tick") if t_jump + 10 < r["scheduled_usec"] / 1e6 < t_jump + 3590]
        self.assertEqual(skipped_hour, [])
        # @every follows the monotonic clock: neither jump made it skip or burst
        mono = d.runs("mono")
        self.assertGreaterEqual(len(mono), int(elapsed) - 3)
        self.assertLessEqual(len(mono), int(elapsed) + 1)

    def test_bad_registry_at_startup_says_where(self):
        d = self.daemon(job("x", "ok.so", "* * * *"))
        d.start(wait_ready=False)
        self.assertEqual(d.proc.wait(10), 78)  # a refused configuration: not restarted
        self.assertRegex(d.log(), r"registry\.yaml:\d+:\d+: job x: .*expected")

    def test_demo_registry_starts_and_fires(self):
        tmp = self.daemon("").tmp
        state = os.path.join(tmp, "demo-state")
        log = open(os.path.join(tmp, "demo.log"), "wb")
        p = subprocess.Popen([os.path.join(BUILDDIR, "schedulerd"), "--config", os.path.join(SRCDIR, "etc", "schedulerd.yaml"),
                              "--state-dir", state, "--plugin-dir", os.path.join(BUILDDIR, ".libs"),
                              "--socket", os.path.join(tmp, "demo.sock")], stdout=log, stderr=subprocess.STDOUT)
        try:
            def hello():
                with open(os.path.join(tmp, "demo.log"), errors="replace") as f:
                    return "Finished: succeeded: greeted" in f.read()
            wait_for(hello, 15, what="the demo's first hello")
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(10), 0)
            log.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
