#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 13: what a run may do to the daemon and to the record of its fire (kill -9 between a
fire's claim and its run, floods of output, processes that escape their run, shutdown grace)."""
import collections
import math
import os
import random
import signal
import statistics
import sys
import threading
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


class WriteAhead(DaemonTestCase):
    """Issue 13 item 0: a fire's claim is durable before its run starts."""
    JOBS = 60
    KILLS = 20  # aimed at 1-6 ms after an instant; at least KILLS_PLACED_MIN must land there
    KILLS_PLACED_MIN = 10

    def test_kill9_right_after_instants_runs_no_fire_twice_and_records_every_run(self):
        d = self.daemon("")
        trace = os.path.join(d.tmp, "trace")
        # half of them catch up (a lost claim runs again), half not (a lost claim loses the record)
        d.write_registry("".join(job("j%d" % i, "trace.so", "* * * * * *", catch_up=i % 2 == 0,
                                     params={"file": trace}) for i in range(self.JOBS)), "  max_concurrent: 1000\n")
        d.start()
        offsets = []
        # KILLS placed 1-6 ms after a whole second, the daemon running for half a second first.
        # A loaded machine (CI runs tests side by side) may oversleep or preempt us past the
        # window: then that second passes without a kill and the next one is tried, rather than
        # a kill landing late, so the test measures what it says whatever the load.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(0.1)  # the notify reader thread must not take the GIL mid-spin
        self.addCleanup(sys.setswitchinterval, switch)
        tid = threading.get_native_id()

        def nice(v):
            # this thread only (Linux); raised where allowed (root, as in CI) so that the tests
            # running beside it do not preempt the spin; back to 0 before the daemon is started
            try:
                os.setpriority(os.PRIO_PROCESS, tid, v)
            except PermissionError:
                pass
        self.addCleanup(nice, 0)
        tries = 0
        while len(offsets) < self.KILLS and tries < 8 * self.KILLS:
            tries += 1
            now = time.time()
            target = math.floor(now + 0.5) + 1 + random.uniform(0.001, 0.004)
            nice(-10)
            time.sleep(max(0, target - time.time() - 0.030))
            while time.time() < target:
                pass  # the last 30 ms spinning: a sleep may overshoot by more than the window
            before = time.time()
            if not 1 <= (before - math.floor(before)) * 1000 <= 5:
                nice(0)
                continue
            d.proc.kill()
            after = time.time()
            nice(0)
            d.kill9()  # reaps it
            if math.floor(after) == math.floor(before) and (after - math.floor(after)) * 1000 <= 6:
                offsets.append((after - math.floor(after)) * 1000)
            d.start()
        time.sleep(1.5)
        d.stop()

        runs = collections.Counter()
        clocks = {}
        with open(trace) as f:
            for line in f:
                name, scheduled, attempt, clock, pid = line.split()
                key = (name, int(scheduled), int(attempt))
                runs[key] += 1
                clocks[key] = int(clock)
        rows = {(r["job"], r["scheduled_usec"], r["attempt"]): r["trigger"] for r in
                d.rows("SELECT job, scheduled_usec, attempt, trigger FROM runs WHERE status != 'skipped'")}
        twice = sorted(k for k, n in runs.items() if n > 1)
        unrecorded = sorted(k for k in runs if k not in rows)
        # how late scheduled fires began, by their own clocks (the cost of the write-ahead commit)
        late = sorted(clocks[k] - k[1] for k in runs if rows.get(k) == "schedule")
        sys.stderr.write("%d executions; %d kills 1-6 ms after the second in %d tries (median +%.1f ms); lateness "
                         "of scheduled fires by the runs' own clocks: median %.2f ms, p90 %.2f ms, p99 %.2f ms\n"
                         % (sum(runs.values()), len(offsets), tries, statistics.median(offsets),
                            statistics.median(late) / 1000, late[len(late) * 9 // 10] / 1000,
                            late[len(late) * 99 // 100] / 1000))
        self.assertGreaterEqual(len(offsets), self.KILLS_PLACED_MIN, "kills placed 1-6 ms after an instant in "
                                "%d tries (machine too loaded?)" % tries)
        # Not vacuous: each kill leaves about one instant's fires behind it. A restart can take
        # over a second (ASan), and then the instant it passed runs only for the catch-up half
        # of the jobs: ~30 executions a kill there (27-30 measured, before and after issue 16's
        # stop 26), ~56 without ASan. A quarter of an instant's fires per kill is the floor.
        self.assertGreater(len(runs), self.JOBS * self.KILLS / 4)
        self.assertEqual(twice, [], "fires executed twice")
        self.assertEqual(unrecorded, [], "executions without a row in history")


class Orphans(DaemonTestCase):
    """Issue 13 item 6: nothing a run starts outlives it, setsid() and double fork included."""

    def escaped(self, d, name):
        with open(os.path.join(d.state, "jobs", name, "escaped.pid")) as f:
            pid = int(f.read())
        self.addCleanup(self.kill_quietly, pid)
        return pid

    @staticmethod
    def kill_quietly(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def alive(pid):
        # not even a zombie: reaped
        return os.path.exists("/proc/%d" % pid)

    def test_escaped_process_is_gone_when_the_run_is_recorded(self):
        jobs = job("quits", "escape.so", "@yearly") + job("times-out", "escape.so", "@yearly", timeout="1s",
                                                           params={"wait": "true"})
        d = self.daemon(jobs).start()
        r = d.ctl({"command": "run", "job": "quits", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        pid = self.escaped(d, "quits")
        self.assertFalse(self.alive(pid), "process %d escaped a run that ended" % pid)

        r = d.ctl({"command": "run", "job": "times-out", "wait": True})
        self.assertEqual(r["status"], "timed_out", r)
        pid = self.escaped(d, "times-out")
        self.assertFalse(self.alive(pid), "process %d escaped the timeout kill" % pid)
        self.assertIn("process the run left behind", d.log())
        d.stop()


if __name__ == "__main__":
    unittest.main()
