# SPDX-License-Identifier: MIT
"""Issue 16: isolation: worker through the real daemon: the plugin's default and the key, a
worker that crashes, times out, leaks or reaches its run count is replaced while the daemon and
the other runs go on, output and log lines stay per run, cancellation reaches a worker's run."""
import collections
import math
import os
import re
import signal
import subprocess
import time
import unittest

from harness import SCHEDCTL, DaemonTestCase, job, wait_for


def probe(name, mode="ok", **kw):
    params = dict(kw.pop("params", {}), mode=mode)
    return job(name, "worker-probe.so", "@yearly", params=params, **kw)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between open() and read()
        return False


class Workers(DaemonTestCase):
    def run_job(self, d, name, timeout=30):
        r = d.ctl({"command": "run", "job": name, "wait": True}, timeout=timeout)
        self.assertTrue(r.get("ok", True), r)
        return [x for x in d.runs(name) if x["id"] == r["run_id"]][0] if "run_id" in r else d.runs(name)[-1]

    def test_plugin_flag_is_the_default_and_the_key_overrides_it(self):
        d = self.daemon(job("w", "ok-worker.so", "@yearly") + job("p", "ok.so", "@yearly") +
                        job("forced", "ok-worker.so", "@yearly", isolation="process") +
                        job("asked", "ok.so", "@yearly", isolation="worker"),
                        "  workers: 1\n").start()
        pids = {}
        for name in ("w", "p", "forced", "asked"):
            pids[name] = [self.run_job(d, name)["pid"] for _ in range(3)]
            self.assertEqual([x["status"] for x in d.runs(name)], ["succeeded"] * 3)
        # one worker ran all three runs of each worker job; process runs each had their own
        self.assertEqual(len(set(pids["w"])), 1, pids)
        self.assertEqual(len(set(pids["asked"])), 1, pids)
        self.assertEqual(len(set(pids["p"])), 3, pids)
        self.assertEqual(len(set(pids["forced"])), 3, pids)
        self.assertTrue(alive(pids["w"][0]), "an idle worker stays for the next run")
        self.assertNotEqual(pids["w"][0], d.proc.pid)
        d.stop()
        self.assertFalse(alive(pids["w"][0]), "workers end with the daemon")

    def test_bad_isolation_rejected_with_position(self):
        d = self.daemon(job("x", "ok.so", "@yearly", isolation="thread", workers=0))
        d.start(wait_ready=False)
        self.assertEqual(d.proc.wait(10), 78)
        log = d.log()
        self.assertRegex(log, r"registry.yaml:\d+:\d+: job x: isolation: found \"thread\", expected process")
        self.assertRegex(log, r"registry.yaml:\d+:\d+: job x: workers")

    def test_crash_is_contained_and_the_worker_replaced(self):
        d = self.daemon(probe("good") + probe("bad", "crash") + probe("quits", "exit"), "  workers: 1\n").start()
        first = self.run_job(d, "good")
        bad = self.run_job(d, "bad")
        self.assertEqual(bad["status"], "crashed")
        self.assertEqual(bad["signal"], signal.SIGSEGV)
        self.assertEqual(bad["pid"], first["pid"], "the same worker took the crashing run")
        self.assertIn("output of run %d in pid %d" % (bad["id"], bad["pid"]), bad["output"])
        self.assertIn("killed by signal SEGV", bad["message"])
        wait_for(lambda: not alive(first["pid"]), 5, what="the crashed worker to be reaped")
        quits = self.run_job(d, "quits")
        if os.environ.get("SCHEDULERD_SANITIZERS"):
            # LeakSanitizer runs at exit() in the worker and may end it its own way: the run must
            # still end unsuccessfully and the worker be replaced (checked below)
            self.assertIn(quits["status"], ("failed", "crashed"))
        else:
            self.assertEqual((quits["status"], quits["exit_code"]), ("failed", 3))
        again = self.run_job(d, "good")
        self.assertEqual(again["status"], "succeeded")
        self.assertNotIn(again["pid"], (first["pid"], quits["pid"]), "a new worker")
        self.assertRegex(d.log(), r"Worker %d was killed by signal 11 during the run; it is replaced" % bad["pid"])
        self.assertIsNone(d.proc.poll())
        d.stop()

    def test_a_run_started_as_a_crashed_worker_is_reaped_goes_to_a_live_worker(self):
        """A crashed run's process left a child behind (out of the worker's process group) that
        still holds the worker's socket: the socket gives no end of file when the worker dies.
        The crash's on_failure chain starts a run while the daemon handles the worker's exit; it
        must go to a live worker, not be sent to the dead one and freed with it (it used to be:
        never recorded, its job's next run blocked behind it, and the daemon's stop hung)."""
        # the daemon's sweep of what a run left behind only reaps here, so the child lives on as
        # it would if the sweep came a moment late (it SIGKILLs, and goes on before the exit)
        d = self.daemon(probe("bad", "orphan-crash", params={"duration": "20s"}, on_failure="good") + probe("good"),
                        "  workers: 1\n").start(extra_env={"SCHEDULERD_TEST_ORPHANS_REAP_ONLY": "1"})
        bad = self.run_job(d, "bad")
        self.assertEqual(bad["status"], "crashed")
        wait_for(lambda: [r["status"] for r in d.runs("good")] == ["succeeded"], 10,
                 what="good, chained on bad's crash, to run and succeed")
        good = d.runs("good")[0]
        self.assertNotEqual(good["pid"], bad["pid"], "it ran in the crashed worker's successor")
        self.assertEqual(self.run_job(d, "good")["status"], "succeeded")
        d.stop()

    def test_runs_wait_out_a_failed_fork_of_their_worker(self):
        """Run b waits while the pool's only worker runs a; the worker is killed, and no new one
        can be forked (as with a full pids.max). No worker is left to wake the queue: the pool
        tries again by itself, and once forking works b runs, once (it used to wait until another
        run of the pool was submitted)."""
        d = self.daemon(probe("a", "sleep", params={"duration": "20s"}) + probe("b"), "  workers: 1\n")
        fail = os.path.join(d.tmp, "spawn-fails")
        d.start(extra_env={"SCHEDULERD_TEST_WORKER_SPAWN_FAIL_FILE": fail})
        a = d.ctl({"command": "run", "job": "a"})["run_id"]
        wait_for(lambda: "a[run %d]: logged by run %d" % (a, a) in d.log(), 30, what="a's code")
        worker = int(re.search(r"a\[run %d\]: Started \(manual, worker pid (\d+)\)" % a, d.log()).group(1))
        b = d.ctl({"command": "run", "job": "b"})["run_id"]
        open(fail, "w").close()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: [r["status"] for r in d.runs("a")] == ["crashed"], 10, what="a to end crashed")
        wait_for(lambda: "Cannot fork a worker for plugin" in d.log(), 10, what="the failed fork to be logged")
        time.sleep(1.5)  # a retry or two, failing
        self.assertNotIn("output of run %d in" % b, d.log(), "b waits for a worker")
        self.assertTrue(all(r["status"] == "running" for r in d.runs("b")), d.runs("b"))
        self.assertEqual(d.log().count("Cannot fork a worker for plugin"), 1, "said once, not at every retry")
        os.unlink(fail)
        wait_for(lambda: [r["status"] for r in d.runs("b")] == ["succeeded"], 10, what="b to run once forking works")
        self.assertEqual(d.log().count("output of run %d in" % b), 1)
        self.assertIn("Forked a worker for plugin", d.log())
        d.stop()

    def test_timeout_kills_the_worker_and_replaces_it(self):
        d = self.daemon(probe("good") + probe("hang", "hang", timeout="1s") +
                        probe("polite", "sleep", timeout="1s"), "  workers: 1\n").start()
        first = self.run_job(d, "good")
        # ignores SIGTERM: SIGKILL to the worker 5 s later
        hang = self.run_job(d, "hang")
        self.assertEqual((hang["status"], hang["signal"]), ("timed_out", signal.SIGKILL))
        self.assertEqual(hang["pid"], first["pid"])
        self.assertFalse(alive(hang["pid"]))
        # polls sched_job_cancelled(): ends at the SIGTERM, and its worker is replaced all the same
        polite = self.run_job(d, "polite")
        self.assertEqual(polite["status"], "timed_out")
        self.assertEqual(polite["message"], "cancelled in pid %d" % polite["pid"])
        self.assertNotEqual(polite["pid"], hang["pid"])
        wait_for(lambda: not alive(polite["pid"]), 5, what="the timed-out worker to exit")
        again = self.run_job(d, "good")
        self.assertEqual(again["status"], "succeeded")
        self.assertNotIn(again["pid"], (hang["pid"], polite["pid"]))
        d.stop()

    def test_recycled_after_max_runs_per_worker(self):
        d = self.daemon(probe("good"), "  workers: 1\n  max_runs_per_worker: 3\n").start()
        pids = [self.run_job(d, "good")["pid"] for _ in range(7)]
        self.assertEqual(len(set(pids[0:3])), 1, pids)
        self.assertEqual(len(set(pids[3:6])), 1, pids)
        self.assertEqual(len({pids[0], pids[3], pids[6]}), 3, pids)
        self.assertIn("Replacing worker %d after 3 runs (scheduler.max_runs_per_worker)" % pids[0], d.log())
        self.assertEqual([x["status"] for x in d.runs("good")], ["succeeded"] * 7)
        d.stop()

    def test_a_worker_sent_its_last_runs_is_replaced_before_the_instant(self):
        """A worker is sent at most the runs it may still run (max_runs_per_worker). When an
        instant's runs sent ahead of it reach that limit, its successor is forked then and sent
        the rest ahead too: each worker's first run of an instant starts at the instant (a run
        taken later records when its worker took it). Forked only after the old one had run its
        queue and exited, the successor started its share late."""
        n = 200
        d = self.daemon("".join(job("r%03d" % i, "ok.so", "* * * * * *", isolation="worker") for i in range(n)),
                        "  workers: 1\n  max_runs_per_worker: 150\n  max_concurrent: 1000\n").start()
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 6 * n, timeout=60)
        d.stop()
        by = {}
        for x in d.runs():
            if x["trigger"] == "schedule" and x["status"] == "succeeded":
                by.setdefault(x["scheduled_usec"], []).append(x)
        instants = sorted(t for t, rs in by.items() if len(rs) == n)[2:]  # the first ones are not decided ahead
        self.assertGreaterEqual(len(instants), 3, "whole instants after the first two")
        successors, late, on_time = 0, [], 0
        for t in instants:
            first = {}
            for x in by[t]:
                first[x["pid"]] = min(first.get(x["pid"], x["started_usec"]), x["started_usec"])
            self.assertGreaterEqual(len(first), 2, "200 runs of an instant, 150 per worker at most: two workers")
            successors += len(first) - 1
            this = ["worker %d took its first run of instant %d %.1f ms after it" % (pid, t, (started - t) / 1000)
                    for pid, started in first.items() if started != t]
            late += this
            on_time += not this
        self.assertGreater(successors, 0)
        # Forked only once the old worker had exited, every successor was late, every instant:
        # the successor cannot take a run before it exists. Forked in the lead, an instant's
        # workers are all on time unless that instant's decision overran the lead, which a loaded
        # minute does (0.9 ms under ASan and -j2 in CI; 2 of 4 instants beside a parallel build).
        # What the old order can never do is one instant with every worker on time.
        self.assertGreater(on_time, 0, late)

    @unittest.skipIf(os.environ.get("SCHEDULERD_SANITIZERS"), "ASan's shadow memory makes RSS meaningless")
    def test_leaking_job_recycled_by_rss(self):
        d = self.daemon(probe("leak", "leak", params={"megabytes": 80}) + probe("good"),
                        "  workers: 1\n  worker_max_rss: 64M\n").start()
        first = self.run_job(d, "good")
        leak = self.run_job(d, "leak")
        self.assertEqual(leak["status"], "succeeded")
        self.assertEqual(leak["pid"], first["pid"])
        self.assertIn("Replacing worker %d its RSS reached" % leak["pid"], d.log())
        self.assertIn("scheduler.worker_max_rss", d.log())
        wait_for(lambda: not alive(leak["pid"]), 5, what="the leaking worker to exit")
        again = self.run_job(d, "good")
        self.assertNotEqual(again["pid"], leak["pid"])
        d.stop()

    def test_a_queued_run_is_recorded_started_when_a_worker_takes_it(self):
        """started_usec of a worker's run is when a worker took it, not when it was claimed and
        queued: on one worker, a run queued behind a 1 s run starts after that one ended."""
        d = self.daemon(probe("first", "sleep", params={"duration": "1s"}) + probe("second"), "  workers: 1\n").start()
        a = d.ctl({"command": "run", "job": "first"})["run_id"]
        b = d.ctl({"command": "run", "job": "second"})["run_id"]
        rows = wait_for(lambda: (lambda rs: rs if len(rs) == 2 and all(r["status"] == "succeeded" for r in rs)
                                 else None)(d.rows("SELECT * FROM runs WHERE id IN (?, ?) ORDER BY id", (a, b))),
                        15, what="both runs to end")
        first, second = rows
        self.assertEqual(first["pid"], second["pid"], "one worker ran both: %s" % rows)
        self.assertGreaterEqual(second["started_usec"], first["finished_usec"], rows)
        # its duration is its own run's, not its wait behind the first
        self.assertLessEqual(second["started_usec"] + second["duration_usec"], second["finished_usec"] + 1000, rows)
        d.stop()

    def test_history_writes_batched_while_runs_wait_for_a_worker(self):
        """Runs answered while others wait for a worker share one history transaction: a commit
        per run's end (a WAL write and its locks each) was the daemon's largest cost per run."""
        jobs = "".join(job("j%02d" % i, "ok-worker.so", "* * * * * *") for i in range(40))
        d = self.daemon(jobs, "  workers: 1\n  max_concurrent: 100\n").start()
        # the control socket is connected throughout, as schedctl's would be: a client that does
        # not wait for a run must not make every run's end commit
        wait_for(lambda: len([r for r in d.runs() if r["status"] == "succeeded"]) >= 120, 20,
                 what="three instants of 40 runs")
        metrics = subprocess.run([SCHEDCTL, "--socket", d.sock, "--config", d.config, "metrics"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
        d.stop()
        commits = int(re.search(r"^schedulerd_history_commits_total (\d+)$", metrics, re.M).group(1))
        runs = sum(int(v) for v in re.findall(r'^schedulerd_runs_total\{job="j\d+",status="\w+"\} (\d+)$',
                                              metrics, re.M))
        self.assertGreaterEqual(runs, 120, metrics)
        # an instant costs its claims' write-ahead commit and, once its runs have ended, about
        # one more: far below one per run
        self.assertLess(commits, runs / 4, "%d commits for %d runs" % (commits, runs))

    def test_output_and_log_lines_are_per_run(self):
        d = self.daemon(probe("a") + probe("b"), "  workers: 1\n").start()
        rows = [self.run_job(d, n) for n in ("a", "b", "a")]
        self.assertEqual(len({r["pid"] for r in rows}), 1)
        log = d.log()
        for r in rows:
            own = "output of run %d in pid %d" % (r["id"], r["pid"])
            # its own lines (output and sched_job_log's, as for a process run), no other run's
            self.assertTrue(r["output"].startswith(own + "\n"), r["output"])
            self.assertEqual(set(re.findall(r"run (\d+)", r["output"])), {str(r["id"])}, r["output"])
            self.assertIn("%s[run %d]: %s" % (r["job"], r["id"], own), log)
            self.assertIn("%s[run %d]: logged by run %d" % (r["job"], r["id"], r["id"]), log)
        d.stop()

    def test_a_herds_started_lines_come_before_their_ends_with_the_workers_pid(self):
        """While a herd is handed out, the daemon says its runs' starts after it (each "Started"
        line costs more than handing a worker its next run); every run's start is still said
        once, before its end, naming the worker that ran it, and its row has that pid."""
        d = self.daemon("".join(job("j%03d" % i, "ok.so", "* * * * * *", isolation="worker") for i in range(400)),
                        "  max_concurrent: 1000\n")
        d.start()
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 1200, timeout=60)
        d.stop()
        started, ended = {}, {}
        for n, line in enumerate(d.log().splitlines()):
            m = re.search(r"\[run (\d+)\]: Started \(schedule, worker pid (-?\d+)\)", line)
            if m:
                self.assertNotIn(int(m.group(1)), started, "run %s said started twice" % m.group(1))
                started[int(m.group(1))] = (n, int(m.group(2)))
            m = re.search(r"\[run (\d+)\]: Finished", line)
            if m:
                ended[int(m.group(1))] = n
        rows = [x for x in d.runs() if x["status"] == "succeeded"]
        self.assertGreaterEqual(len(rows), 1200)
        for x in rows:
            self.assertIn(x["id"], started, "run %d never said started" % x["id"])
            line, pid = started[x["id"]]
            self.assertGreater(pid, 0, "run %d" % x["id"])
            self.assertEqual(pid, x["pid"], "run %d: the log and the row name different workers" % x["id"])
            self.assertLess(line, ended[x["id"]], "run %d said started after its end" % x["id"])

    def test_a_worker_killed_before_the_instant_of_runs_sent_ahead_hands_them_on(self):
        """The runs of an instant decided ahead of it go to their workers then, to start at the
        instant. A worker SIGKILLed ~12 ms before it had started none of them: each must still
        run once, at its instant, in another worker, and none be recorded crashed."""
        self.stop_worker_before_instants(signal.SIGKILL, "ended before the instant of the runs sent ahead to it")

    def test_a_worker_stopped_from_outside_before_the_instant_hands_its_runs_on(self):
        """The same with SIGTERM from outside (an operator's kill): the worker answers the runs it
        holds as never started and exits. The daemon had stopped nothing, so none of them may
        fail: each runs once, at its instant, in another worker (before, the one it was waiting
        with ended failed, "never started: its worker was stopping")."""
        self.stop_worker_before_instants(signal.SIGTERM, "was stopped from outside before its run began")

    def test_a_run_handed_on_from_a_worker_stopped_from_outside_keeps_its_cause(self):
        """An on_failure run sent to a worker that an operator then stops (SIGTERM) before it
        begins goes to another worker with its cause: handed on without it, the run's
        sched_job_cause() failed and a notifier posted a test message instead of the alert."""
        d = self.daemon(job("a", "fail.so", "@yearly", isolation="worker", on_failure="[b]") +
                        probe("b", "cause"), "  workers: 1\n").start()
        self.assertEqual(self.run_job(d, "b")["message"], "no cause")
        w = wait_for(lambda: ([p for p in self.children_named(d, "sched-worker", zombies=False)
                               if "worker-probe.so" in open("/proc/%d/maps" % p).read()] or [None])[0],
                     10, what="b's worker")
        os.kill(w, signal.SIGSTOP)  # b's run is sent to it and waits in its socket
        try:
            self.assertTrue(d.ctl({"command": "run", "job": "a"}).get("ok", True))
            wait_for(lambda: len(d.runs("b")) == 2 and d.runs("b")[-1]["pid"] == w, 15,
                     what="b's on_failure run sent to its stopped worker")
            os.kill(w, signal.SIGTERM)
        finally:
            os.kill(w, signal.SIGCONT)
        d.wait_runs("b", lambda rs: len(rs) == 2 and all(r["status"] != "running" for r in rs), timeout=15)
        d.stop()
        last = d.runs("b")[-1]
        self.assertEqual((last["status"], last["message"]), ("succeeded", "cause a failed"))
        self.assertNotEqual(last["pid"], w)
        self.assertIn("was stopped from outside before its run began", d.log())

    def stop_worker_before_instants(self, sig, said):
        n = 3000
        d = self.daemon("")
        out = os.path.join(d.tmp, "stamps")
        d.write_registry("".join(job("j%04d" % i, "stamp.so", "* * * * * *", isolation="worker", params={"out": out})
                                 for i in range(n)), "  max_concurrent: 10000\n  workers: 2\n")
        d.start()
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 2 * n, timeout=90)

        # only a kill that landed before its instant counts (the test's own sleep may overshoot
        # on a loaded machine: a kill after the instant hits started runs, rightly crashed)
        placed = []
        for _ in range(8):
            t = math.floor(time.time()) + 2
            # inside the lead in which the instant's runs are sent ahead: the daemon's lead is
            # twice what deciding 3,000 fires took (~24 ms on a fast minute of this machine, more
            # on a slow one), so a kill 30 ms ahead found nothing sent in fast minutes
            while time.time() < t - 0.012:
                time.sleep(min(0.05, max(0.0, t - 0.012 - time.time())))
            ws = self.children_named(d, "sched-worker", zombies=False)
            if not ws:
                continue
            os.kill(ws[0], sig)
            if time.time() < t - 0.003:
                placed.append(t)
            if len(placed) == 3:
                break
        self.assertGreaterEqual(len(placed), 2, "kills placed before their instant")
        last = math.floor(time.time()) + 1
        d.wait_runs(None, lambda rs: len([x for x in rs if x["scheduled_usec"] == last * 1000000 and
                                          x["status"] != "running"]) >= n, timeout=60)
        d.stop()
        rows = [x for x in d.runs() if x["scheduled_usec"] // 1000000 in placed and x["trigger"] == "schedule"]
        self.assertEqual(len(rows), len(placed) * n, "one row per fire of the instants a worker was killed before")
        bad = [(x["job"], x["status"], x["message"]) for x in rows if x["status"] != "succeeded"]
        self.assertEqual(bad[:5], [], "of %d runs not succeeded" % len(bad))
        with open(out) as f:
            lines = [l.split() for l in f]
        mine = [(name, int(sched), int(started)) for name, sched, started, _ in lines if int(sched) // 1000000 in placed]
        self.assertEqual(len(mine), len(placed) * n)
        self.assertEqual(len({(a, b) for a, b, _ in mine}), len(placed) * n, "a fire ran twice")
        self.assertEqual([x for x in mine if x[2] < x[1]][:5], [], "runs started before their instant")
        # not vacuous: the kills found runs sent ahead, not yet started, in the worker
        self.assertIn(said, d.log())
        # a run handed on says it moved, not that it started again
        started = collections.Counter(re.findall(r"\[run (\d+)(?:, attempt \d+)?\]: Started \(", d.log()))
        self.assertEqual([r for r, k in started.items() if k > 1][:5], [], "runs said started twice")
        self.assertIn("Moved to worker pid", d.log())

    # Pipelining: a busy worker takes the next run behind its current one. The daemon does so only
    # while a worker's runs take under 1 ms; this hook lifts the bound so that a run queues in a
    # worker behind a slow one on purpose, where its deadline, a crash or a shutdown hits.
    PIPELINE_ALWAYS = {"SCHEDULERD_TEST_PIPELINE_USEC": "60000000"}

    def ended(self, d, a, b, timeout):
        return wait_for(lambda: (lambda rs: rs if len(rs) == 2 and all(r["status"] != "running" for r in rs)
                                 else None)(d.rows("SELECT * FROM runs WHERE id IN (?, ?) ORDER BY id", (a, b))),
                        timeout, what="runs %d and %d to end" % (a, b))

    def pipelined(self, d):
        metrics = subprocess.run([SCHEDCTL, "--socket", d.sock, "--config", d.config, "metrics"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
        return int(re.search(r"^schedulerd_worker_runs_pipelined_total (\d+)$", metrics, re.M).group(1))

    def test_pipelined_runs_keep_their_own_output(self):
        """Runs queued in a worker behind another: each run's output and log lines are its own
        (the worker's end-of-run marker splits the one pipe), none lost, none twice."""
        jobs = "".join(job("p%02d" % i, "worker-probe.so", "* * * * * *") for i in range(20))
        d = self.daemon(jobs, "  workers: 1\n  max_concurrent: 100\n").start(extra_env=self.PIPELINE_ALWAYS)
        wait_for(lambda: len([r for r in d.runs() if r["status"] == "succeeded"]) >= 60, 20,
                 what="three instants of 20 runs")
        pipelined = self.pipelined(d)
        d.stop()
        self.assertGreaterEqual(pipelined, 20, "runs were not pipelined: the test proves nothing")
        rows = [r for r in d.runs() if r["status"] == "succeeded"]
        log = d.log()
        for r in rows:
            own = "output of run %d in pid %d" % (r["id"], r["pid"])
            self.assertTrue(r["output"].startswith(own + "\n"), r)
            self.assertEqual(re.findall(r"run (\d+)", r["output"]), [str(r["id"])] * 2, r["output"])
            self.assertIn("%s[run %d]: %s" % (r["job"], r["id"], own), log)
        self.assertEqual(sorted({(r["job"], r["scheduled_usec"]) for r in rows}),
                         sorted((r["job"], r["scheduled_usec"]) for r in rows), "an instant ran twice")

    def test_a_herd_read_in_pauses_keeps_each_runs_output(self):
        """Workers working through a deep queue of an instant's runs have their answers and
        output left unread until near its end (schedulerd_worker_read_pauses_total). Each run
        still ends once, succeeded, started before its end, with its own output and log lines,
        also the runs that print 16 KiB each, whose worker may wait on a full pipe meanwhile."""
        n = 600
        jobs = "".join(job("h%03d" % i, "worker-probe.so", "* * * * * *",
                           params={"padding": 16384 if i % 2 else 0}) for i in range(n))
        d = self.daemon(jobs, "  workers: 2\n  max_concurrent: 2000\n").start()
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 3 * n, timeout=90)
        metrics = subprocess.run([SCHEDCTL, "--socket", d.sock, "--config", d.config, "metrics"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
        pauses = int(re.search(r"^schedulerd_worker_read_pauses_total (\d+)$", metrics, re.M).group(1))
        d.stop()
        self.assertGreater(pauses, 0, "no worker was left unread: the test proves nothing")
        rows = [r for r in d.runs() if r["trigger"] == "schedule"]
        log = d.log()
        started = {int(m.group(1)): m.start() for m in re.finditer(r"\[run (\d+)\]: Started", log)}
        ended = {int(m.group(1)): m.start() for m in re.finditer(r"\[run (\d+)\]: Finished", log)}
        for r in rows:
            if r["status"] == "running":
                continue
            self.assertEqual(r["status"], "succeeded", r)
            own = "output of run %d in pid %d" % (r["id"], r["pid"])
            self.assertIn(own + "\n", r["output"], r["id"])
            self.assertEqual(set(re.findall(r"run (\d+)", r["output"])), {str(r["id"])}, r["output"][-300:])
            self.assertIn("%s[run %d]: %s" % (r["job"], r["id"], own), log)
            self.assertIn(r["id"], started, "run %d never said started" % r["id"])
            self.assertLess(started[r["id"]], ended[r["id"]], "run %d said started after its end" % r["id"])
        self.assertEqual(len({(r["job"], r["scheduled_usec"]) for r in rows}), len(rows), "an instant ran twice")

    BEHIND = ("b1", "b2", "b3")

    def queue_behind(self, d, first_pid):
        """Queues one run of each BEHIND job in the one worker, behind its slow run: returns their ids."""
        ids = [d.ctl({"command": "run", "job": name})["run_id"] for name in self.BEHIND]
        wait_for(lambda: self.pipelined(d) == len(ids), 10, what="the runs to queue in the busy worker")
        return ids

    def check_behind(self, d, ids, stopped, first_pid):
        """Each queued run started once, after the stopped one ended, in the replacement worker, in order."""
        rows = [[x for x in d.runs() if x["id"] == i][0] for i in ids]
        for r in rows:
            self.assertEqual(r["status"], "succeeded", r)
            self.assertNotEqual(r["pid"], first_pid, "it ran in the replacement worker")
            self.assertEqual(d.log().count("output of run %d in" % r["id"]), 1, "run %d started once" % r["id"])
            self.assertGreaterEqual(r["started_usec"], stopped["finished_usec"], rows)
        self.assertEqual(sorted(rows, key=lambda r: r["started_usec"]), rows, "handed back out of order")

    def test_runs_queued_behind_a_timed_out_run_go_to_another_worker(self):
        """Its worker is stopped for the run ahead's deadline before it takes the three runs queued
        behind it: the worker says so of each, and each starts in the next worker, once, in order."""
        d = self.daemon(probe("good") + probe("polite", "sleep", timeout="1s") +
                        "".join(probe(n) for n in self.BEHIND), "  workers: 1\n").start(extra_env=self.PIPELINE_ALWAYS)
        first = self.run_job(d, "good")  # a short last run: the worker pipelines
        a = d.ctl({"command": "run", "job": "polite"})["run_id"]
        wait_for(lambda: "polite[run %d]: logged by run %d" % (a, a) in d.log(), 30, what="polite's code")
        ids = self.queue_behind(d, first["pid"])
        for i in ids:
            self.ended(d, a, i, 15)
        polite = [x for x in d.runs() if x["id"] == a][0]
        self.assertEqual((polite["status"], polite["pid"]), ("timed_out", first["pid"]))
        self.check_behind(d, ids, polite, first["pid"])
        d.stop()

    def test_runs_queued_behind_a_killed_worker_go_to_another_worker(self):
        """LONG (~7 s). The run ahead ignores SIGTERM and its worker is SIGKILLed at the end of
        the grace, never having answered: the three queued runs were never taken, and run elsewhere."""
        d = self.daemon(probe("good") + probe("hang", "hang", timeout="1s") +
                        "".join(probe(n) for n in self.BEHIND), "  workers: 1\n").start(extra_env=self.PIPELINE_ALWAYS)
        first = self.run_job(d, "good")
        a = d.ctl({"command": "run", "job": "hang"})["run_id"]
        wait_for(lambda: "hang[run %d]: logged by run %d" % (a, a) in d.log(), 30, what="hang's code")
        ids = self.queue_behind(d, first["pid"])
        for i in ids:
            self.ended(d, a, i, 20)
        hang = [x for x in d.runs() if x["id"] == a][0]
        self.assertEqual((hang["status"], hang["signal"], hang["pid"]), ("timed_out", signal.SIGKILL, first["pid"]))
        self.check_behind(d, ids, hang, first["pid"])
        d.stop()

    def test_runs_a_stopped_worker_refused_are_not_recorded_failed(self):
        """The deadline of run a passes while the daemon is paused (SIGSTOP) and its worker has
        moved on past a, through b1 into b2: the SIGTERM meant for a stops b2, and the worker
        refuses b3 and b4. Those never ran: each starts once, in another worker, and none is
        recorded failed "never started" (the daemon used to make each refused run current in
        turn, and so failed every run queued behind the stopped one)."""
        d = self.daemon(probe("good") + probe("a", "sleep", params={"duration": "700ms"}, timeout="1s") +
                        probe("b1") + probe("b2", "sleep", params={"duration": "3s"}) + probe("b3") + probe("b4"),
                        "  workers: 1\n").start(extra_env=self.PIPELINE_ALWAYS)
        first = self.run_job(d, "good")
        a = d.ctl({"command": "run", "job": "a"})["run_id"]
        wait_for(lambda: "a[run %d]: logged by run %d" % (a, a) in d.log(), 30, what="a's code")
        ids = [d.ctl({"command": "run", "job": n})["run_id"] for n in ("b1", "b2", "b3", "b4")]
        wait_for(lambda: self.pipelined(d) == 4, 10, what="b1-b4 to queue in the worker")
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(1.5)  # a ends (0.7 s), its deadline passes (1 s), the worker is in b2
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        for i in ids:
            self.ended(d, a, i, 20)
        rows = {r["id"]: r for r in d.runs()}
        d.stop()
        self.assertEqual([r for r in rows.values() if "never started" in (r["message"] or "")], [])
        for name, i in zip(("b3", "b4"), ids[2:]):
            self.assertEqual(rows[i]["status"], "succeeded", rows[i])
            self.assertEqual(d.log().count("output of run %d in" % i), 1, "%s started once" % name)
        if rows[a]["status"] == "timed_out":  # the deadline was handled before a's answer
            self.assertNotEqual(rows[ids[2]]["pid"], first["pid"], "b3 ran in the replacement worker")

    def test_a_run_cancelled_while_queued_signals_no_later_run(self):
        """Run x of job j waits in the worker behind y when j's next fire replaces it (overlap:
        replace): x is only marked, to be stopped once it is the worker's current run. The daemon
        is paused (SIGSTOP) while y ends and the worker runs x and moves on into z; on SIGCONT it
        reads y's and x's answers in one batch. x answered: the SIGTERM it was owed must not go
        out, and z, which nobody cancelled, runs to its end (it used to be cancelled in x's place).
        z sleeps 6 s: past the 5 s after which a worker taken for signalled is SIGKILLed, so the
        worker must not be taken for signalled either."""
        d = self.daemon(probe("good") + probe("y", "sleep", params={"duration": "2500ms"}) +
                        job("j", "worker-probe.so", "* * * * * *", overlap="replace", params={"mode": "ok"}) +
                        probe("z", "sleep", params={"duration": "6s"}),
                        "  workers: 1\n").start(extra_env=self.PIPELINE_ALWAYS)
        self.run_job(d, "good")
        s0 = math.floor(time.time()) + 1
        time.sleep(max(0, s0 + 0.1 - time.time()))
        y = d.ctl({"command": "run", "job": "y"})["run_id"]
        time.sleep(max(0, s0 + 1.3 - time.time()))  # j's fire at s0+1 (x) is queued behind y
        z = d.ctl({"command": "run", "job": "z"})["run_id"]
        base = self.pipelined(d)
        time.sleep(max(0, s0 + 2.25 - time.time()))  # j's fire at s0+2 replaced x
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(max(0, s0 + 3.2 - time.time()))  # y ended at s0+2.6, x ran, z sleeps
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        self.ended(d, y, z, 20)
        rows = {r["id"]: r for r in d.runs()}
        x = [r for r in d.runs("j") if r["scheduled_usec"] == (s0 + 1) * 1000000]
        log = d.log()
        d.stop()
        self.assertGreaterEqual(base, 2, "x and z were not queued in the worker: the test proves nothing")
        self.assertEqual(len(x), 1, d.runs("j"))
        self.assertIn("Cancelling: replaced by the schedule fire", log)
        self.assertIn("[run %d]: logged by run %d" % (x[0]["id"], x[0]["id"]), log, "x ran before the pause ended")
        self.assertEqual(rows[z]["status"], "succeeded", rows[z])
        self.assertEqual(log.count("output of run %d in" % z), 1, "z started once")

    def test_a_pipelining_worker_is_recycled_at_its_run_count_exactly(self):
        """Runs queued in a worker count toward max_runs_per_worker: it is sent no more than it may
        still run, each retired worker ran exactly that many, and says it is replaced once."""
        jobs = "".join(job("p%02d" % i, "worker-probe.so", "* * * * * *") for i in range(12))
        d = self.daemon(jobs, "  workers: 1\n  max_concurrent: 100\n  max_runs_per_worker: 5\n").start(
            extra_env=self.PIPELINE_ALWAYS)
        wait_for(lambda: len([r for r in d.runs() if r["status"] == "succeeded"]) >= 36, 20,
                 what="three instants of 12 runs")
        pipelined = self.pipelined(d)
        d.stop()
        self.assertGreater(pipelined, 0, "runs were not pipelined: the test proves nothing")
        per_pid = {}
        for r in d.runs():
            if r["status"] == "succeeded":
                per_pid[r["pid"]] = per_pid.get(r["pid"], 0) + 1
        log = d.log()
        retired = [pid for pid in per_pid if "Replacing worker %d after" % pid in log]
        self.assertGreaterEqual(len(retired), 5, per_pid)
        for pid in retired:
            self.assertEqual(per_pid[pid], 5, per_pid)
            self.assertEqual(log.count("Replacing worker %d after" % pid), 1)
        self.assertTrue(all(n <= 5 for n in per_pid.values()), per_pid)

    def test_shutdown_ends_a_run_queued_in_a_worker_unstarted(self):
        d = self.daemon(probe("good") + probe("long", "sleep") + probe("next"), "  workers: 1\n").start(
            extra_env=self.PIPELINE_ALWAYS)
        self.run_job(d, "good")
        a = d.ctl({"command": "run", "job": "long"})["run_id"]
        wait_for(lambda: "long[run %d]: logged by run %d" % (a, a) in d.log(), 30, what="long's code")
        b = d.ctl({"command": "run", "job": "next"})["run_id"]
        # (sent by the pump of the loop's turn, which a loaded machine may serve after the query)
        wait_for(lambda: self.pipelined(d) == 1, 10, what="next to queue in the busy worker")
        self.assertEqual(self.pipelined(d), 1)
        self.assertEqual(d.stop(), 0)
        long, nxt = d.runs("long")[0], d.runs("next")[0]
        self.assertEqual(long["status"], "cancelled")
        self.assertEqual((nxt["id"], nxt["status"]), (b, "cancelled"))
        self.assertNotIn("output of run %d in" % b, d.log(), "the queued run never started")

    def test_cancellation_reaches_running_and_waiting_runs(self):
        d = self.daemon(probe("long", "sleep") + probe("next", "sleep"), "  workers: 1\n").start()
        self.assertTrue(d.ctl({"command": "run", "job": "long"})["ok"])
        wait_for(lambda: d.runs("long") and d.runs("long")[0]["pid"], 10, what="the first run to start")
        # in the job's own code, not just dispatched: a worker still starting up (slow under ASan)
        # dies of the SIGTERM before its handler is set, and the run is cancelled without a word
        rid = d.runs("long")[0]["id"]
        wait_for(lambda: "long[run %d]: logged by run %d" % (rid, rid) in d.log(), 30, what="the first run's code")
        self.assertTrue(d.ctl({"command": "run", "job": "next"})["ok"])  # waits: the one worker is busy
        pid = d.runs("long")[0]["pid"]
        self.assertEqual(d.stop(), 0)
        long, nxt = d.runs("long")[0], d.runs("next")[0]
        self.assertEqual(long["status"], "cancelled")
        self.assertIn("cancelled in pid %d" % pid, long["message"])
        self.assertEqual(nxt["status"], "cancelled")
        self.assertFalse(alive(pid))

    @staticmethod
    def children_named(d, comm, zombies=True):
        """The daemon's children named COMM (live, and unless not ZOMBIES, not yet reaped)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
            except (FileNotFoundError, ProcessLookupError):
                continue
            name, rest = st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2:].split()
            if name == comm and int(rest[1]) == d.proc.pid and (zombies or rest[0] != "Z"):
                found.append(int(pid))
        return found

    @classmethod
    def zygotes(cls, d):
        """The daemon's children named sched-zygote (live or not yet reaped)."""
        return cls.children_named(d, "sched-zygote")

    @staticmethod
    def ppid(pid):
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])

    def test_workers_fork_from_a_zygote_that_holds_nothing_of_the_daemons(self):
        """A pool's workers are forked by its zygote, not by the daemon (whose pages a new worker
        would share: a copy-on-write fault for each the daemon writes after), yet are the daemon's
        children. The zygote keeps no descriptor or writable shared mapping of the daemon's, lives
        through recycling and the sweeps after runs, and once killed, workers fork from the daemon."""
        d = self.daemon(probe("good"), "  workers: 1\n  max_runs_per_worker: 2\n").start()
        runs = [self.run_job(d, "good") for _ in range(5)]
        self.assertEqual([r["status"] for r in runs], ["succeeded"] * 5)
        self.assertEqual(len({r["pid"] for r in runs}), 3, "recycled every 2 runs")
        zs = self.zygotes(d)
        self.assertEqual(len(zs), 1, "one zygote for the one pool")
        z = zs[0]
        self.assertEqual(self.ppid(runs[-1]["pid"]), d.proc.pid, "the worker is the daemon's child")
        self.assertEqual(sorted(int(x) for x in os.listdir("/proc/%d/fd" % z)), [0, 1, 2, 3])
        with open("/proc/%d/maps" % z) as f:
            shared_writable = [l for l in f.read().splitlines() if l.split()[1][1] == "w" and l.split()[1][3] == "s"]
        self.assertEqual(shared_writable, [])
        self.assertNotIn("zygote", d.log())
        os.kill(z, signal.SIGKILL)
        more = [self.run_job(d, "good") for _ in range(3)]  # the third needs a new worker
        self.assertEqual([r["status"] for r in more], ["succeeded"] * 3)
        self.assertIn("The zygote (pid %d) of the workers of plugin" % z, d.log())
        self.assertIn("workers fork from the daemon until the next reload", d.log())
        self.assertEqual(self.zygotes(d), [], "the dead zygote was reaped")
        d.stop()

    def test_a_reload_replaces_the_zygote(self):
        d = self.daemon(probe("good"), "  workers: 1\n").start()
        self.run_job(d, "good")
        old = self.zygotes(d)
        self.assertEqual(len(old), 1)
        d.write_registry(probe("good") + probe("other"), "  workers: 1\n")
        self.assertTrue(d.ctl({"command": "reload"}).get("ok"), "reload")
        self.assertEqual(self.run_job(d, "other")["status"], "succeeded")
        wait_for(lambda: (lambda z: z if len(z) == 1 and z != old else None)(self.zygotes(d)), 10,
                 what="the old registry's zygote to go, the new one's to come")
        d.stop()
        self.assertEqual(self.zygotes(d), [])

    def test_a_worker_holds_no_writable_shared_memory_of_the_daemon(self):
        d = self.daemon(job("probe", "probe.so", "@yearly", isolation="worker")).start()
        for _ in range(2):
            r = self.run_job(d, "probe")
            self.assertEqual(r["status"], "succeeded", r["message"])
            self.assertRegex(r["message"], r"writable 0\b")
        self.assertTrue(os.path.exists(os.path.join(d.state, "jobs", "probe", "probe.ran")))
        d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
