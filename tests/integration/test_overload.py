#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 16 item 4 through the real daemon: fires held back by max_concurrent wait for a slot
instead of being skipped; a fire that cannot start within its misfire_threshold is recorded
missed (status, list, metrics); and a daemon that was stopped for seconds accounts for every
instant its schedules produced, exactly once, as ran, skipped or missed. Judged from inside the
runs: hold.so appends "start JOB SCHEDULED NOW" first thing and "end JOB SCHEDULED NOW" last."""
import json
import os
import signal
import subprocess
import time
import unittest

from harness import SCHEDCTL, DaemonTestCase, job, wait_for

S = 1000000


def read_hold(path):
    """{(kind, job, scheduled): wall-clock usec} from hold.so's file."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            kind, name, scheduled, now = line.split()
            out[(kind, name, int(scheduled))] = int(now)
    return out


def schedctl(d, *args):
    p = subprocess.run([SCHEDCTL, "--socket", d.sock, "--config", d.config] + list(args), capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("schedctl %s: %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p.stdout


def second_ahead(n):
    """The cron seconds field of the instant N seconds from now, and that instant (usec)."""
    t = int(time.time()) + n
    return t % 60, t * S


class Overload(DaemonTestCase):
    def test_limit_queues_instead_of_skipping(self):
        """20 jobs due at one instant under max_concurrent 16: all 20 run, 4 of them once
        slots have freed, none skipped."""
        d = self.daemon("")
        out = os.path.join(d.tmp, "hold")
        sec, instant = second_ahead(4)
        d.write_registry("".join(job("j%02d" % i, "hold.so", "%d * * * * *" % sec,
                                     params={"file": out, "duration": "2s"}) for i in range(20)),
                         "  max_concurrent: 16\n")
        d.start()
        seen = wait_for(lambda: (lambda h: h if sum(k[0] == "end" for k in h) >= 20 else None)(read_hold(out)),
                        timeout=30, what="20 runs to end")
        starts = sorted(v for k, v in seen.items() if k[0] == "start")
        ends = sorted(v for k, v in seen.items() if k[0] == "end")
        self.assertEqual(sorted({k[1] for k in seen if k[0] == "start"}), ["j%02d" % i for i in range(20)])
        self.assertEqual({k[2] for k in seen}, {instant})
        # 16 started before any run ended; each of the 4 others after a slot had freed
        self.assertLess(starts[15], ends[0])
        for k in range(4):
            self.assertGreaterEqual(starts[16 + k], ends[k], "queued run %d started before a slot freed" % k)
        d.wait_runs(None, lambda rs: len(rs) == 20 and all(r["status"] == "succeeded" for r in rs),
                    what="20 succeeded rows")
        self.assertEqual(d.rows("SELECT COUNT(*) AS n FROM runs WHERE status IN ('skipped', 'missed')")[0]["n"], 0)
        self.assertEqual(d.log().count("waits for a slot"), 4, d.log()[-3000:])
        self.assertEqual(json.loads(schedctl(d, "status", "--json"))["waiting_fires"], 0)
        self.assertIn("Waiting: 0 fires", schedctl(d, "status"))
        self.assertEqual(d.stop(), 0)

    def test_queued_fire_past_threshold_is_missed(self):
        """A fire that waited for a slot past its misfire_threshold: one missed row, shown by
        status, list and the metrics, and its code never ran."""
        d = self.daemon("")
        out = os.path.join(d.tmp, "hold")
        sec, instant = second_ahead(4)
        d.write_registry(job("long", "hold.so", "%d * * * * *" % sec, params={"file": out, "duration": "6s"}) +
                         job("late", "hold.so", "%d * * * * *" % ((sec + 1) % 60), misfire_threshold="2s",
                             params={"file": out}),
                         "  max_concurrent: 1\n")
        d.start()
        rows = d.wait_runs("late", lambda rs: len(rs) >= 1, timeout=20, what="the missed row")
        self.assertEqual(len(rows), 1, rows)
        r = rows[0]
        self.assertEqual(r["status"], "missed")
        self.assertEqual(r["missed_count"], 1)
        self.assertEqual(r["scheduled_usec"], instant + S)
        self.assertEqual(r["missed_last_usec"], instant + S)
        self.assertIn("misfire_threshold 2s", r["message"])
        # recorded when its deadline passed, while the long run still held the only slot
        self.assertGreaterEqual(r["started_usec"], instant + 3 * S)
        self.assertLess(r["started_usec"], instant + 6 * S)
        self.assertEqual(d.runs("long")[0]["status"], "running")

        status = json.loads(schedctl(d, "status", "late", "--json"))
        self.assertEqual(status["missed"], 1)
        self.assertEqual(status["misfire_threshold_usec"], 2 * S)
        self.assertIn("1 fire missed", schedctl(d, "status", "late"))
        listed = {j["name"]: j for j in json.loads(schedctl(d, "list", "--json"))["jobs"]}
        self.assertEqual(listed["late"]["missed"], 1)
        self.assertEqual(listed["long"]["missed"], 0)
        self.assertIn("MISSED", schedctl(d, "list"))
        self.assertIn('schedulerd_fires_missed_total{job="late"} 1\n', schedctl(d, "metrics"))
        hist = json.loads(schedctl(d, "history", "late", "--json"))
        self.assertEqual([(h["status"], h["missed_count"], h["missed_last_usec"]) for h in hist],
                         [("missed", 1, instant + S)])
        self.assertEqual(status["last_status"], "missed")

        wait_for(lambda: ("end", "long", instant) in read_hold(out), timeout=15, what="the long run's end")
        self.assertNotIn("late", {k[1] for k in read_hold(out)})
        self.assertEqual(d.stop(), 0)

    def account(self, d, name, held):
        """Checks that every instant of NAME's every-second schedule from its first row to its
        last is accounted for exactly once; returns the number of instants missed."""
        rows = d.runs(name)
        self.assertTrue(rows, name)
        instants = []
        missed = 0
        for r in rows:
            if r["status"] == "missed":
                n, first, last = r["missed_count"], r["scheduled_usec"], r["missed_last_usec"]
                self.assertAlmostEqual(last - first, (n - 1) * S, delta=5000, msg=r)
                instants += [first + k * S for k in range(n)]
                missed += n
            else:
                instants.append(r["scheduled_usec"])
        instants.sort()
        t0 = instants[0]
        ks = [round((t - t0) / S) for t in instants]
        for t, k in zip(instants, ks):
            self.assertLess(abs(t - t0 - k * S), 5000, "%s: %d is not on the schedule" % (name, t))
        self.assertEqual(ks, list(range(len(ks))), "%s: instants missing or twice: %s" % (name, ks))
        # what ran is what history says ran, from inside the runs; a run cancelled by the stop at
        # the end may have been signalled before its job's code began (a fresh-clone CI run had
        # one at the last instant), so it may be missing from inside
        ran = sorted(r["scheduled_usec"] for r in rows if r["status"] not in ("missed", "skipped", "cancelled"))
        cancelled = {r["scheduled_usec"] for r in rows if r["status"] == "cancelled"}
        started = sorted(k[2] for k in held if k[0] == "start" and k[1] == name)
        self.assertEqual(ran, [t for t in started if t not in cancelled])
        self.assertLessEqual(set(started) - set(ran), cancelled)
        return missed, len(ks)

    def test_stopped_daemon_accounts_every_instant(self):
        """Stopped (SIGSTOP) for 7 s: every instant of a per-second cron job, an @every job and
        a singleton job busier than its period and a catch_up job ends as exactly one of ran, skipped
        or missed."""
        d = self.daemon("")
        out = os.path.join(d.tmp, "hold")
        d.write_registry(job("tick", "hold.so", "* * * * * *", params={"file": out}) +
                         job("every", "hold.so", "@every 1s", params={"file": out}) +
                         job("busy", "hold.so", "* * * * * *", singleton=True,
                             params={"file": out, "duration": "2500ms"}) +
                         job("cu", "hold.so", "* * * * * *", catch_up=True, params={"file": out}))
        d.start()
        d.wait_runs("tick", lambda rs: len(rs) >= 3, what="a few ticks")
        d.signal(signal.SIGSTOP)
        time.sleep(7)
        d.signal(signal.SIGCONT)
        t_cont = time.time()
        d.wait_runs("tick", lambda rs: rs[-1]["scheduled_usec"] / S > t_cont + 3, timeout=20, what="ticks after")
        self.assertEqual(d.stop(), 0)
        held = read_hold(out)
        report = {}
        for name in ("tick", "every", "busy", "cu"):
            report[name] = self.account(d, name, held)
        # the stop was seen: several instants of each missed, and recorded as bursts
        self.assertGreaterEqual(report["tick"][0], 4, report)
        self.assertGreaterEqual(report["every"][0], 4, report)
        self.assertGreaterEqual(d.rows("SELECT MAX(missed_count) AS n FROM runs WHERE job = 'tick'")[0]["n"], 4)
        # catch_up: one run stands for the latest instant reached too late, the rest are missed
        cu = d.rows("SELECT * FROM runs WHERE job = 'cu' AND trigger = 'catch_up'")
        self.assertEqual(len(cu), 1, cu)
        self.assertGreaterEqual(report["cu"][0], 3, report)
        skipped = d.rows("SELECT message FROM runs WHERE job = 'busy' AND status = 'skipped'")
        self.assertTrue(skipped)
        self.assertTrue(all("singleton" in s["message"] for s in skipped), skipped)
        print("instants (missed, accounted): %s" % report)


if __name__ == "__main__":
    unittest.main()
