# SPDX-License-Identifier: MIT
"""What one job can write that it should not (issue 13 item 16), observed through the real
daemon: the start gate at which warm runs wait (a job that could write it could release another
job's waiting process early) and any other shared memory a run inherits from the daemon (the
WAL index of history.db), and the state directories of jobs."""
import os
import unittest

from harness import DaemonTestCase, job


class SharedMemory(DaemonTestCase):
    """probe.so tries every shared mapping of its process: writable as mapped, by mprotect(), by a
    store, or reopened through /proc/self/map_files; its run fails and says how when it could."""

    def test_a_warm_run_cannot_write_the_gate(self):
        d = self.daemon(job("p", "probe.so", "* * * * * *")).start()
        rows = d.wait_runs("p", lambda rs: len(rs) >= 3, timeout=20)
        for r in rows:
            self.assertEqual(r["status"], "succeeded", r["message"])
        # not vacuous: the gate is there, read-only
        self.assertIn("schedulerd-start-gate", rows[-1]["message"])
        self.assertEqual(d.stop(), 0)

    def test_a_forked_run_cannot_write_the_gate(self):
        d = self.daemon(job("p", "probe.so", "@yearly")).start()
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
