# SPDX-License-Identifier: MIT
"""Warm runs (issue 7): a cron fire's process is forked ahead by the launcher and released at the
instant. Observed from outside: the launcher and the waiting children are the daemon's children
(CLONE_PARENT), and the pid history records for a fire is one that was already waiting before it."""
import ctypes
import os
import signal
import time
import unittest

from harness import DaemonTestCase, job, wait_for

PR_SET_CHILD_SUBREAPER = 36


def proc_stat(pid):
    """(comm, state, ppid) of PID, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def children(ppid):
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[2] == ppid and st[1] != "Z":
            out[int(name)] = st
    return out


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


class Warm(DaemonTestCase):
    def launcher(self, d):
        found = wait_for(lambda: [p for p, st in children(d.proc.pid).items() if st[0] == "sched-launcher"],
                         what="the launcher among the daemon's children")
        return found[0]

    def warm_children(self, d, launcher):
        """Daemon children that are neither the launcher nor running a job: waiting at the gate."""
        return {p for p, st in children(d.proc.pid).items() if p != launcher and st[1] == "S"}

    def test_fire_runs_in_a_process_forked_before_it(self):
        d = self.daemon(job("w", "ok.so", "*/4 * * * * *")).start()
        launcher = self.launcher(d)
        # the process for the next fire waits before that fire is due
        waiting = wait_for(lambda: self.warm_children(d, launcher), what="a warm child")
        seen_at = time.time() * 1000000
        seen_before = {p for p in waiting}
        # the first fire after it was seen waiting
        rows = d.wait_runs("w", lambda rs: any(r["scheduled_usec"] > seen_at and r["status"] == "succeeded"
                                               for r in rs), timeout=20)
        # (a fire due just as it was seen counts too: its process was among them)
        recent = [r for r in rows if r["scheduled_usec"] > seen_at - 4000000 and r["status"] == "succeeded"]
        used = [r for r in recent if r["pid"] in seen_before]
        self.assertTrue(used, "every fire forked a new process instead of a warm one: %s vs %s"
                        % ([r["pid"] for r in recent], sorted(seen_before)))
        row = used[0]
        self.assertEqual(row["trigger"], "schedule")
        self.assertEqual(row["message"], "ok")
        self.assertGreaterEqual(row["started_usec"], row["scheduled_usec"])
        self.assertEqual(d.stop(), 0)

    def test_disabled_job_turns_its_warm_child_away(self):
        d = self.daemon(job("w", "ok.so", "*/3 * * * * *")).start()
        launcher = self.launcher(d)
        warm = wait_for(lambda: self.warm_children(d, launcher), what="a warm child")
        self.assertTrue(d.ctl({"command": "disable", "job": "w"})["ok"])
        n = len(d.runs("w"))
        # at its fire the disabled job does not run, and its waiting process exits
        for p in warm:
            wait_for(lambda: not alive(p), timeout=10, what="warm child %d to exit" % p)
        time.sleep(1)
        self.assertEqual(len(d.runs("w")), n)
        self.assertNotIn("ended before it", d.log())  # turned away, not died
        d.stop()

    def test_reload_replaces_launcher_and_warm_children(self):
        d = self.daemon(job("w", "ok.so", "*/3 * * * * *")).start()
        launcher = self.launcher(d)
        old = wait_for(lambda: self.warm_children(d, launcher), what="a warm child")
        # same name, another plugin: a fire after the reload must run the new definition
        d.write_registry(job("w", "fail.so", "*/3 * * * * *"))
        d.signal(signal.SIGHUP)
        wait_for(lambda: not alive(launcher), what="the old launcher to exit")
        for p in old:
            wait_for(lambda: not alive(p), what="old warm child %d to exit" % p)
        new_launcher = self.launcher(d)
        self.assertNotEqual(new_launcher, launcher)
        t = time.time() * 1000000
        rows = d.wait_runs("w", lambda rs: any(r["scheduled_usec"] > t and r["finished_usec"] for r in rs),
                           timeout=20)
        after = [r for r in rows if r["scheduled_usec"] > t][0]
        self.assertEqual((after["status"], after["message"]), ("failed", "failed on purpose"))
        d.stop()

    def test_a_reload_in_the_lead_starts_no_run_before_its_instant(self):
        """A reload (SIGHUP) a moment before an instant, after its fires were decided and their
        warm runs opened: those runs start at the instant, not when the reload came (they did,
        up to the lead early). Each SIGHUP is aimed into a lead; the daemon's debug line that it
        waited for a release shows the aim was good, the stamps that no job's code started early."""
        d = self.daemon("")
        out = os.path.join(d.tmp, "stamps")
        d.write_registry("".join(job("j%03d" % i, "stamp.so", "* * * * * *", isolation="process",
                                     params={"out": out}) for i in range(100)), "  max_concurrent: 1000\n")
        d.start(extra_env={"SCHEDULERD_LOG_LEVEL": "debug"})
        d.wait_runs(None, lambda rs: len([x for x in rs if x["status"] == "succeeded"]) >= 200, timeout=30)
        for k in range(12):
            # into the lead of the instant after next: 0.3 to 1.4 ms before it (the lead is 3 ms or more)
            instant = int(time.time()) + 2
            aim = instant - (0.3 + 0.1 * k) / 1000
            while time.time() < aim - 0.002:
                time.sleep(min(aim - time.time() - 0.002, 0.2))
            while time.time() < aim:
                pass
            d.signal(signal.SIGHUP)
        time.sleep(2)
        d.stop()
        with open(out) as f:
            lines = [l.split() for l in f]
        self.assertGreaterEqual(len(lines), 1000)
        early = [(name, int(sched), int(started) - int(sched)) for name, sched, started, _ in lines
                 if int(started) < int(sched)]
        self.assertEqual(early, [], "runs whose code started before their instant (job, instant, usec)")
        self.assertIn("Reload waits", d.log(), "no SIGHUP came in a lead: the test did not test anything")

    def test_launcher_killed_runs_go_on(self):
        d = self.daemon(job("w", "ok.so", "* * * * * *")).start()
        launcher = self.launcher(d)
        os.kill(launcher, signal.SIGKILL)
        wait_for(lambda: "launcher" in d.log() and "runs fork from the daemon" in d.log(),
                 what="the daemon to notice the launcher's death")
        t = time.time() * 1000000
        d.wait_runs("w", lambda rs: len([r for r in rs if r["scheduled_usec"] > t and r["status"] == "succeeded"]) >= 2,
                    timeout=20)
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.stop(), 0)

    def test_singleton_skip_turns_warm_child_away(self):
        d = self.daemon(job("s", "slow.so", "*/2 * * * * *", params={"duration": "3s"})).start()
        rows = d.wait_runs("s", lambda rs: any(r["status"] == "skipped" for r in rs), timeout=20)
        skipped = [r for r in rows if r["status"] == "skipped"][0]
        self.assertIn("singleton", skipped["message"])
        self.assertNotIn("ended before it", d.log())
        d.stop()

    def test_no_process_outlives_the_daemon(self):
        libc = ctypes.CDLL(None, use_errno=True)
        # orphans of the daemon come to this process, so they can be seen
        self.assertEqual(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0)
        try:
            d = self.daemon(job("a", "ok.so", "*/5 * * * * *") + job("b", "ok.so", "*/7 * * * * *")).start()
            launcher = self.launcher(d)
            wait_for(lambda: len(self.warm_children(d, launcher)) >= 2, what="warm children")
            pid = d.proc.pid
            self.assertEqual(d.stop(), 0)
            wait_for(lambda: not children(os.getpid()) and not children(pid), timeout=10,
                     what="every launcher and warm child to exit with the daemon")
        finally:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass


if __name__ == "__main__":
    unittest.main()
