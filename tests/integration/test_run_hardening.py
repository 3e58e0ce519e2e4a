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


if __name__ == "__main__":
    unittest.main()
