# SPDX-License-Identifier: MIT
"""Issue 3: every status and trigger, through the real daemon, read back from history.db."""
import os
import signal
import time
import unittest

from harness import DaemonTestCase, job, wait_for


class Runs(DaemonTestCase):
    def test_succeeded_failed_crashed_by_manual_trigger(self):
        d = self.daemon(job("ok", "ok.so", "@yearly") + job("fail", "fail.so", "@yearly") +
                        job("crash", "crash.so", "@yearly")).start()
        for name in ("ok", "fail", "crash"):
            r = d.ctl({"command": "run", "job": name, "wait": True})
            self.assertTrue(r["ok"], r)
        rows = {r["job"]: r for r in d.runs()}
        self.assertEqual(rows["ok"]["status"], "succeeded")
        self.assertEqual(rows["ok"]["exit_code"], 0)
        self.assertEqual(rows["ok"]["message"], "ok")
        self.assertEqual(rows["fail"]["status"], "failed")
        self.assertEqual(rows["fail"]["message"], "failed on purpose")
        self.assertEqual(rows["crash"]["status"], "crashed")
        self.assertEqual(rows["crash"]["signal"], signal.SIGSEGV)
        self.assertIn("about to crash", rows["crash"]["output"])
        for r in rows.values():
            self.assertEqual(r["trigger"], "manual")
            self.assertGreater(r["pid"], 0)
            self.assertIsNotNone(r["finished_usec"])
        self.assertEqual(d.stop(), 0)

    def test_schedule_trigger_and_logical_clock(self):
        d = self.daemon(job("tick", "slow.so", "* * * * * *", params={"duration": "10ms"})).start()
        rows = d.wait_runs("tick", lambda rs: len([r for r in rs if r["status"] == "succeeded"]) >= 2)
        for r in rows[:2]:
            self.assertEqual(r["trigger"], "schedule")
            # a cron fire stands for a whole second, and the job sees that instant
            self.assertEqual(r["scheduled_usec"] % 1000000, 0)
            self.assertIn("scheduled=%d " % r["scheduled_usec"], r["output"])
            self.assertGreaterEqual(r["started_usec"], r["scheduled_usec"])
        d.stop()

    def test_manual_run_at_reaches_logical_clock(self):
        d = self.daemon(job("slow", "slow.so", "@yearly", params={"duration": "10ms"})).start()
        at = 1774760400 * 1000000  # 2026-03-29T05:00:00Z
        r = d.ctl({"command": "run", "job": "slow", "at": at, "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        row = d.runs("slow")[0]
        self.assertEqual(row["scheduled_usec"], at)
        self.assertIn("scheduled=%d now=" % at, row["output"])
        now = int(row["output"].split("now=")[1].split()[0])
        self.assertGreaterEqual(now, at)
        self.assertLess(now - at, 5000000)
        d.stop()

    def test_startup_trigger(self):
        d = self.daemon(job("boot", "ok.so", "@yearly", run_on_startup=True)).start()
        rows = d.wait_runs("boot", lambda rs: rs and rs[0]["status"] == "succeeded")
        self.assertEqual(rows[0]["trigger"], "startup")
        d.stop()

    def test_disabled_job_does_not_fire_but_runs_by_hand(self):
        d = self.daemon(job("off", "ok.so", "* * * * * *", enabled=False)).start()
        time.sleep(2.2)
        self.assertEqual(d.runs("off"), [])
        r = d.ctl({"command": "run", "job": "off", "wait": True})
        self.assertEqual(r["status"], "succeeded")
        d.stop()

    def test_timeout_kills_the_whole_process_group(self):
        d = self.daemon(job("hang", "hang.so", "@yearly", timeout="1s")).start()
        t0 = time.monotonic()
        r = d.ctl({"command": "run", "job": "hang", "wait": True}, timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(r["status"], "timed_out", r)
        # SIGTERM at 1s is ignored; SIGKILL follows 5s later
        self.assertGreaterEqual(took, 5.5)
        row = d.runs("hang")[0]
        self.assertEqual(row["status"], "timed_out")
        self.assertEqual(row["signal"], signal.SIGKILL)
        with open(os.path.join(d.state, "jobs", "hang", "grandchild.pid")) as f:
            gc = int(f.read())
        # the grandchild was in the group: gone (or a zombie about to be reaped by init)
        def gone():
            try:
                with open("/proc/%d/stat" % gc) as f:
                    return f.read().split(")")[1].split()[0] == "Z"
            except (FileNotFoundError, ProcessLookupError):
                return True
        wait_for(gone, 5, what="grandchild %d to die" % gc)
        d.stop()

    def test_singleton_skip(self):
        d = self.daemon(job("long", "slow.so", "* * * * * *", params={"duration": "2500ms"})).start()
        rows = d.wait_runs("long", lambda rs: any(r["status"] == "skipped" for r in rs), timeout=10)
        sk = [r for r in rows if r["status"] == "skipped"][0]
        self.assertIn("still running (singleton)", sk["message"])
        self.assertEqual(sk["trigger"], "schedule")
        running = [r for r in rows if r["status"] in ("running", "succeeded")]
        self.assertTrue(running)
        d.stop()

    def test_concurrency_limit(self):
        d = self.daemon(job("a", "slow.so", "@yearly", params={"duration": "3s"}) +
                        job("b", "ok.so", "@yearly"), "  max_concurrent: 1\n").start()
        self.assertTrue(d.ctl({"command": "run", "job": "a"})["ok"])
        r = d.ctl({"command": "run", "job": "b"})
        self.assertFalse(r["ok"])
        self.assertEqual(r["errno"], "EBUSY")
        row = d.runs("b")[0]
        self.assertEqual(row["status"], "skipped")
        self.assertIn("max_concurrent=1", row["message"])
        d.stop()

    def test_retry_count_and_spacing(self):
        d = self.daemon(job("flaky", "retry.so", "@yearly", retry={"attempts": 2, "backoff": "1s", "max_backoff": "10s"},
                            params={"ok_at_attempt": -1})).start()
        r = d.ctl({"command": "run", "job": "flaky", "wait": True})
        # --wait reports the run it started, not the retries after it
        self.assertEqual(r["status"], "failed")
        rows = d.wait_runs("flaky", lambda rs: len(rs) == 3 and all(x["finished_usec"] for x in rs), timeout=15)
        self.assertEqual([x["attempt"] for x in rows], [0, 1, 2])
        self.assertEqual([x["trigger"] for x in rows], ["manual", "retry", "retry"])
        self.assertEqual(len({x["scheduled_usec"] for x in rows}), 1)
        self.assertEqual(rows[1]["retry_of"], rows[0]["id"])
        gap1 = (rows[1]["started_usec"] - rows[0]["finished_usec"]) / 1e6
        gap2 = (rows[2]["started_usec"] - rows[1]["finished_usec"]) / 1e6
        self.assertGreaterEqual(gap1, 0.9)  # 1s -10% jitter
        self.assertGreaterEqual(gap2, 1.8)  # 2s -10% jitter
        time.sleep(3)
        self.assertEqual(len(d.runs("flaky")), 3, "retried beyond attempts")
        d.stop()

    def test_retry_not_starved_by_its_own_job(self):
        # An every-second singleton job whose runs take 700 ms: its first run asks for a retry, due
        # ~1.2 s later, inside the next fire's run. A retry that looked again every second would
        # find the slot held at each x.2 s for ever; it must start when that run ends.
        d = self.daemon(job("busy", "slow.so", "* * * * * *", retry={"attempts": 1, "backoff": "500ms"},
                            params={"duration": "700ms", "retry_once": True})).start()
        rows = d.wait_runs("busy", lambda rs: any(r["trigger"] == "retry" and r["finished_usec"] for r in rs),
                           timeout=8)
        first = [r for r in rows if "first run: retry" in (r["message"] or "")]
        self.assertEqual(len(first), 1, rows)
        retry = [r for r in rows if r["trigger"] == "retry"]
        self.assertEqual(len(retry), 1, rows)
        self.assertEqual(retry[0]["status"], "succeeded")
        self.assertEqual(retry[0]["retry_of"], first[0]["id"])
        self.assertEqual(retry[0]["scheduled_usec"], first[0]["scheduled_usec"])
        # started as soon as a run ended (or, at worst, after one random look), not seconds later
        ended = sorted(r["finished_usec"] for r in rows if r["finished_usec"] and r["trigger"] == "schedule")
        before = [e for e in ended if e <= retry[0]["started_usec"]]
        self.assertTrue(before)
        d.stop()

    def test_retry_then_ok_and_fail_never_retried(self):
        d = self.daemon(job("flaky", "retry.so", "@yearly", retry={"attempts": 5, "backoff": "100ms"},
                            params={"ok_at_attempt": 2}) +
                        job("bad", "fail.so", "@yearly", retry={"attempts": 3, "backoff": "100ms"})).start()
        d.ctl({"command": "run", "job": "flaky"})
        d.ctl({"command": "run", "job": "bad", "wait": True})
        rows = d.wait_runs("flaky", lambda rs: rs and rs[-1]["status"] == "succeeded", timeout=10)
        self.assertEqual([x["status"] for x in rows], ["failed", "failed", "succeeded"])
        time.sleep(1)
        self.assertEqual(len(d.runs("bad")), 1)
        d.stop()

    def test_noisy_output_tail_and_leak_contained(self):
        d = self.daemon(job("noisy", "noisy.so", "@yearly") + job("leak", "leak.so", "@yearly")).start()
        self.assertEqual(d.ctl({"command": "run", "job": "noisy", "wait": True})["status"], "succeeded")
        self.assertEqual(d.ctl({"command": "run", "job": "leak", "wait": True})["status"], "succeeded")
        row = d.runs("noisy")[0]
        self.assertLessEqual(len(row["output"].encode()), 4096)
        self.assertIn("done making noise", row["output"])
        self.assertIn("noisy[run %d]: noise line 10000 of 10000" % row["id"], d.log())
        with open("/proc/%d/status" % d.proc.pid) as f:
            rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS")][0]
        self.assertLess(rss, 60 * 1024, "daemon RSS grew with a child's leak")
        d.stop()

    def test_wal_checkpointed_under_a_load_that_never_pauses(self):
        """Checkpoints wait for 250 ms without a fire due; fires every 100 ms never leave that
        much. The WAL must still be checkpointed once it is far too big (four times the daemon's
        bound, lowered here to 16 pages), not grow for five minutes: each commit would extend the
        file."""
        jobs = "".join(job("e%d" % i, "probe.so", "@every 100ms", singleton=False, isolation="worker")
                       for i in range(4))
        d = self.daemon(jobs).start(extra_env={"SCHEDULERD_TEST_CHECKPOINT_WAL_PAGES": "16"})
        wal = os.path.join(d.state, "history.db-wal")
        wait_for(lambda: len([r for r in d.runs() if r["status"] == "succeeded"]) >= 200, 60,
                 what="200 runs")
        size = os.path.getsize(wal)
        d.stop()
        # 4 x 16 pages and a commit's worth over them, of 4 KiB and a 24-byte frame header each;
        # unbounded, 200 runs (a claim and a result each) took 427 frames
        self.assertLess(size, 150 * 4120, "the WAL grew to %d bytes" % size)


if __name__ == "__main__":
    unittest.main(verbosity=2)
