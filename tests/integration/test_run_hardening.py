#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 13: what a run may do to the daemon and to the record of its fire (kill -9 between a
fire's claim and its run, floods of output, processes that escape their run, shutdown grace)."""
import os
import signal
import time
import unittest

from harness import DaemonTestCase, job, wait_for


class ShutdownGrace(DaemonTestCase):
    def test_shutdown_grace_outlasts_the_run_kill_grace(self):
        # a run ignoring SIGTERM gets shutdown_grace (here 8s), not the 5s a timed-out run gets
        d = self.daemon(job("hang", "hang.so", "@yearly"), "  shutdown_grace: 8s\n").start()
        r = d.ctl({"command": "run", "job": "hang"})
        self.assertTrue(r["ok"], r)
        wait_for(lambda: "hanging; grandchild" in d.log(), what="the run to start")
        d.signal(signal.SIGTERM)
        d.proc.wait(30)
        log = d.log()
        self.assertNotIn("after SIGTERM; sending SIGKILL", log)
        self.assertIn("Shutdown grace period over; killing 1 remaining run", log)
        row = d.runs("hang")[0]
        self.assertEqual(row["status"], "cancelled", row)


class OutputFlood(DaemonTestCase):
    def test_a_flood_of_output_does_not_freeze_the_daemon(self):
        jobs = job("flood", "flood.so", "@yearly", timeout="3s") + job("tick", "ok.so", "* * * * * *")
        d = self.daemon(jobs).start()
        self.assertTrue(d.ctl({"command": "run", "job": "flood"})["ok"])
        wait_for(lambda: d.runs("flood"), what="the flood to start")
        # the daemon answers while the flood goes on (it got no answer for 20 s before)
        for _ in range(3):
            time.sleep(1)
            self.assertTrue(d.ctl({"command": "list"}, timeout=10)["ok"])
        # the deadline fires (SIGTERM, ignored), then SIGKILL 5 s later
        row = d.wait_runs("flood", lambda rs: rs[0]["status"] != "running", timeout=30,
                          what="the flood to time out")[0]
        self.assertEqual(row["status"], "timed_out", row)
        # the every-second job kept firing meanwhile: its fires during the flood all ran
        ticks = [t for t in d.runs("tick")
                 if row["started_usec"] < t["scheduled_usec"] < row["started_usec"] + row["duration_usec"]]
        self.assertGreaterEqual(len(ticks), 6, "an every-second job during a flood of %.1fs"
                                % (row["duration_usec"] / 1e6))
        self.assertTrue(all(t["status"] == "succeeded" for t in ticks), ticks)
        log = d.log()
        self.assertEqual(log.count("further lines of this run are not logged"), 1)
        self.assertRegex(log, r"flood\[run 1\]: \d+ of \d+ lines of output were not logged")
        self.assertLess(len(log), 4 * 1024 * 1024, "the log of a 3 s flood")
        # the burst, then the rate for the ~8 s the run lasted
        self.assertLessEqual(log.count("flood[run 1]: x\n"), 10000 + 1000 * 10)
        # and SIGTERM during a flood stops it
        self.assertTrue(d.ctl({"command": "run", "job": "flood"})["ok"])
        wait_for(lambda: len(d.runs("flood")) == 2, what="the second flood to start")
        time.sleep(0.5)
        self.assertEqual(d.stop(timeout=15), 0)


if __name__ == "__main__":
    unittest.main()
