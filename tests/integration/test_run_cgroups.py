#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 13 item 6: a cgroup per run. The daemon is started inside a cgroup this test makes (what
Delegate=yes gives it under systemd); each run gets D/runs/<job>.<id>, killed as one and removed
when the run ends, and a restart removes what a killed daemon left. The sweep of the daemon's
children is made to only reap ($SCHEDULERD_TEST_ORPHANS_REAP_ONLY), so a process that escaped
its run is gone only if its cgroup ended it."""
import os
import signal
import sys
import unittest

from harness import DaemonTestCase, job, wait_for


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[0] == "cgroup2" and fields[3] == "/":
                return fields[4].replace("\\040", " ")
    return None


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def make_test_cgroup():
    """A fresh cgroup next to this process's (or below the root); (path, None) or (None, why)."""
    mnt, own = cgroup2_mount(), own_cgroup()
    if not mnt or own is None:
        return None, "no cgroup2 hierarchy is mounted"
    parent = os.path.join(mnt, own.lstrip("/"))
    # the no-internal-process rule: a cgroup with processes cannot have controllers for children,
    # but a plain child directory is always allowed where we may write
    path = os.path.join(parent, "schedulerd-test-%d-%d" % (os.getpid(), make_test_cgroup.n))
    make_test_cgroup.n += 1
    try:
        os.mkdir(path)
    except OSError as e:
        return None, "cannot create a cgroup under %s: %s" % (parent, e)
    return path, None


make_test_cgroup.n = 0


def remove_cgroup_tree(path):
    """Kills everything in PATH and removes it, deepest first (the test's own cleanup)."""
    if not os.path.isdir(path):
        return
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except OSError:
        pass
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            p = os.path.join(root, d)
            wait_for(lambda: try_rmdir(p), 5, what="rmdir %s" % p)
    wait_for(lambda: try_rmdir(path), 5, what="rmdir %s" % path)


def try_rmdir(p):
    try:
        os.rmdir(p)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def gone(pid):
    """Dead: no /proc entry, or a zombie (after a daemon's death its reaper is PID 1, not ours)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


class RunCgroups(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.cg, why = make_test_cgroup()
        if not self.cg:
            sys.stderr.write("SKIP: %s\n" % why)
            self.skipTest(why)
        self.addCleanup(remove_cgroup_tree, self.cg)

    def start(self, jobs, cgroup=None, reap_only=True):
        d = self.daemon(jobs)
        d.cgroup = cgroup or self.cg
        env = {"SCHEDULERD_TEST_ORPHANS_REAP_ONLY": "1"} if reap_only else None
        return d.start(extra_env=env)

    def escaped(self, d, name):
        with open(os.path.join(d.state, "jobs", name, "escaped.pid")) as f:
            pid = int(f.read())
        self.addCleanup(lambda: os.kill(pid, signal.SIGKILL) if not gone(pid) else None)
        return pid

    def run_dir(self, name, run_id):
        return os.path.join(self.cg, "runs", "%s.%d" % (name, run_id))

    def test_each_run_in_its_own_cgroup_which_ends_it(self):
        jobs = job("quits", "escape.so", "@yearly") + job("times-out", "escape.so", "@yearly", timeout="1s",
                                                           params={"wait": "true"})
        d = self.start(jobs)
        rel = self.cg[len(cgroup2_mount()):]
        with open("/proc/%d/cgroup" % d.proc.pid) as f:
            self.assertIn("0::%s/supervisor\n" % rel, f.read(), "the daemon moved into its leaf")

        r = d.ctl({"command": "run", "job": "quits", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        run_id = d.runs("quits")[-1]["id"]
        with open(os.path.join(d.state, "jobs", "quits", "cgroup.txt")) as f:
            self.assertIn("0::%s/runs/quits.%d\n" % (rel, run_id), f.read())
        pid = self.escaped(d, "quits")
        # the sweep only reaps here: the cgroup's kill is what ended it
        self.assertTrue(gone(pid) and not os.path.exists("/proc/%d" % pid), "process %d escaped its run" % pid)
        self.assertFalse(os.path.exists(self.run_dir("quits", run_id)), "the run's cgroup was not removed")
        self.assertIn("Killed 1 process the run left behind with its cgroup quits.%d" % run_id, d.log())
        self.assertNotIn("Killed 1 process the run left behind (pid", d.log())

        r = d.ctl({"command": "run", "job": "times-out", "wait": True})
        self.assertEqual(r["status"], "timed_out", r)
        run_id = d.runs("times-out")[-1]["id"]
        pid = self.escaped(d, "times-out")
        self.assertFalse(os.path.exists("/proc/%d" % pid), "process %d escaped the timeout kill" % pid)
        self.assertFalse(os.path.exists(self.run_dir("times-out", run_id)))
        runs = os.path.join(self.cg, "runs")
        self.assertEqual([e for e in os.listdir(runs) if os.path.isdir(os.path.join(runs, e))], [])
        self.assertEqual(d.stop(), 0)

    def test_scheduled_fires_from_warm_processes_get_their_cgroup(self):
        # cron fires start in a process forked ahead by the launcher, moved by the daemon into a
        # cgroup named for that process (the run id does not exist yet) as soon as it is made
        d = self.start(job("tick", "escape.so", "*/2 * * * * *"))
        rows = d.wait_runs("tick", lambda rs: sum(r["status"] == "succeeded" for r in rs) >= 3, timeout=20)
        self.assertEqual(d.stop(), 0)
        rel = self.cg[len(cgroup2_mount()):]
        last = max((r for r in d.runs("tick") if r["pid"]), key=lambda r: r["id"])
        self.assertEqual(last["trigger"], "schedule")
        with open(os.path.join(d.state, "jobs", "tick", "cgroup.txt")) as f:
            self.assertIn("0::%s/runs/tick.warm-%d\n" % (rel, last["pid"]), f.read())
        self.assertFalse(os.path.exists("/proc/%d" % self.escaped(d, "tick")))
        self.assertNotIn("into its cgroup", d.log())
        runs = os.path.join(self.cg, "runs")
        self.assertEqual([e for e in os.listdir(runs) if os.path.isdir(os.path.join(runs, e))], [])

    def test_leftovers_of_a_killed_daemon_are_removed_at_start(self):
        jobs = job("stays", "escape.so", "@yearly", timeout="1h", params={"wait": "true"})
        d = self.start(jobs)
        run_id = d.ctl({"command": "run", "job": "stays"})["run_id"]
        path = os.path.join(d.state, "jobs", "stays", "escaped.pid")
        wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, what="the escaped process")
        pid = self.escaped(d, "stays")
        left = self.run_dir("stays", run_id)
        with open(os.path.join(left, "cgroup.procs")) as f:
            self.assertIn(str(pid), f.read().split())
        d.proc.kill()
        d.proc.wait()
        self.assertFalse(gone(pid), "the escaped process should outlive a daemon killed with SIGKILL")

        # restarted where a service manager restarts it: in its leaf (D itself may have
        # controllers in its subtree now, and then cannot hold a process)
        d.cgroup = os.path.join(self.cg, "supervisor")
        d.start(extra_env={"SCHEDULERD_TEST_ORPHANS_REAP_ONLY": "1"})
        self.assertFalse(os.path.exists(left), "the cgroup the killed daemon left is still there")
        wait_for(lambda: gone(pid), 5, what="the leftover process to die")
        self.assertIn("Removed the cgroup %s a previous daemon left" % left, d.log())
        self.assertEqual(d.stop(), 0)

    def test_tasks_limit_is_pids_max_or_the_documented_fallback(self):
        jobs = (job("capped", "escape.so", "@yearly", timeout="1h", params={"wait": "true"}) +
                "    limits: { tasks: 7 }\n")
        d = self.start(jobs)
        with open(os.path.join(self.cg, "runs", "cgroup.subtree_control")) as f:
            pids = "pids" in f.read().split()
        run_id = d.ctl({"command": "run", "job": "capped"})["run_id"]
        path = os.path.join(d.state, "jobs", "capped", "escaped.pid")
        wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, what="the run to start")
        self.escaped(d, "capped")
        if pids:
            with open(os.path.join(self.run_dir("capped", run_id), "pids.max")) as f:
                self.assertEqual(f.read().strip(), "7")
            self.assertNotIn("limits.tasks 7 cannot be", d.log())
        else:
            sys.stderr.write("no pids controller here: checking the documented warning instead of pids.max\n")
            # the job runs as root (the test's user): RLIMIT_NPROC does not bind it, and the log says so
            log = d.log()
            self.assertIn("limits.tasks 7 cannot be the run's pids.max: the pids controller is not available", log)
            self.assertIn("the limit is NOT enforced" if os.geteuid() == 0 else "applied as RLIMIT_NPROC", log)
            with open("/proc/%d/limits" % d.runs("capped")[-1]["pid"]) as f:
                nproc = [l for l in f if l.startswith("Max processes")][0].split()
            self.assertEqual(nproc[2], "7", nproc)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
