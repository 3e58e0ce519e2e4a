# SPDX-License-Identifier: MIT
"""Issue 16 item 1: the bench's own instrument. The stamp plugin's line must name the run's job,
its scheduled instant and run id exactly as history.db has them, one line per run, and its
reading of the clock must fall inside the run (not before the daemon let it go, not after it
ended): otherwise every lateness figure in BENCHMARKS.md measures something else."""
import os
import unittest

from harness import DaemonTestCase, job


class Stamp(DaemonTestCase):
    def test_one_line_per_run_matching_history(self):
        for isolation in ("process", "worker"):
            with self.subTest(isolation=isolation):
                self.one_line_per_run(isolation)

    def one_line_per_run(self, isolation):
        d = self.daemon("")
        out = os.path.join(d.tmp, "stamps")
        d.write_registry(job("tick", "stamp.so", "* * * * * *", isolation=isolation, params={"out": out}) +
                         job("once", "stamp.so", "@yearly", isolation=isolation, params={"out": out}))
        d.start()
        r = d.ctl({"command": "run", "job": "once", "wait": True})
        self.assertTrue(r["ok"], r)
        rows = d.wait_runs("tick", lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 3)
        d.stop()
        with open(out) as f:
            lines = [l.split() for l in f]
        by_run = {}
        for name, sched, started, run_id in lines:
            self.assertNotIn(int(run_id), by_run, "two lines for run %s" % run_id)
            by_run[int(run_id)] = (name, int(sched), int(started))
        runs = [x for x in d.runs() if x["status"] == "succeeded"]
        self.assertGreaterEqual(len(runs), 4)
        self.assertEqual(set(by_run), {x["id"] for x in runs})
        for x in runs:
            name, sched, started = by_run[x["id"]]
            self.assertEqual(name, x["job"])
            self.assertEqual(sched, x["scheduled_usec"])
            # the job's reading is taken inside the run: after the daemon let it go, before it ended
            self.assertGreaterEqual(started, x["started_usec"])
            self.assertLessEqual(started, x["finished_usec"])
            if x["trigger"] == "schedule":
                self.assertEqual(sched % 1000000, 0)
                self.assertGreaterEqual(started, sched)

    def test_no_run_starts_before_its_instant(self):
        """200 worker runs due at one instant: the fires are decided and claimed a few ms ahead,
        in one dispatch; none may start before the instant (they did, 1.5 ms early, while the
        daemon started the deferred runs whenever 64 had piled up)."""
        d = self.daemon("")
        out = os.path.join(d.tmp, "stamps")
        d.write_registry("".join(job("j%03d" % i, "stamp.so", "* * * * * *", isolation="worker", params={"out": out})
                                 for i in range(200)), "  max_concurrent: 1000\n")
        d.start()
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 400, timeout=30)
        d.stop()
        with open(out) as f:
            lines = [l.split() for l in f]
        self.assertGreaterEqual(len(lines), 400)
        early = [(name, int(sched), int(started) - int(sched)) for name, sched, started, _ in lines
                 if int(started) < int(sched)]
        self.assertEqual(early, [], "runs whose code started before their instant (job, instant, usec)")

    def test_a_herd_decided_over_several_dispatches_starts_at_its_instant_not_before(self):
        """3,000 worker runs due at one instant are decided ahead of it over two dispatches
        (FIRE_BUDGET each), and an @every job fires between them and around them. Each of its
        dispatches starts the runs it prepared itself: once, it also started the herd's first
        2,048, claimed and waiting for their instant, up to a lead early. None may start before
        its instant, and each runs once."""
        d = self.daemon("")
        out = os.path.join(d.tmp, "stamps")
        d.write_registry("".join(job("j%04d" % i, "stamp.so", "* * * * * *", isolation="worker", params={"out": out})
                                 for i in range(3000)) +
                         job("often", "ok.so", "@every 3ms", isolation="worker"), "  max_concurrent: 10000\n")
        d.start()
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded" and x["job"] != "often"]) >= 9000,
                    timeout=60)
        d.stop()
        with open(out) as f:
            lines = [l.split() for l in f]
        self.assertGreaterEqual(len(lines), 9000)
        early = [(name, int(sched), int(started) - int(sched)) for name, sched, started, _ in lines
                 if int(started) < int(sched)]
        self.assertEqual(early[:20], [], "of %d runs whose code started before their instant (job, instant, usec)"
                         % len(early))
        runs = [(name, sched) for name, sched, _, _ in lines]
        self.assertEqual(len(runs), len(set(runs)), "a fire ran twice")
        often = [x for x in d.runs() if x["job"] == "often" and x["status"] == "succeeded"]
        self.assertGreater(len(often), 100, "the @every job fired among the herd's dispatches")


if __name__ == "__main__":
    unittest.main()
