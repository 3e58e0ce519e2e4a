# SPDX-License-Identifier: MIT
"""What one job can write that it should not (issue 13 item 16), observed through the real
daemon: the start gate at which warm runs wait (a job that could write it could release another
job's waiting process early) and any other shared memory a run inherits from the daemon (the
WAL index of history.db), and the state directories of jobs."""
import os
import stat
import unittest

from harness import DaemonTestCase, job


class SharedMemory(DaemonTestCase):
    """probe.so tries every shared mapping of its process: writable as mapped, by mprotect(), by a
    store, or reopened through /proc/self/map_files; its run fails and says how when it could."""

    def test_a_warm_run_cannot_write_the_gate(self):
        d = self.daemon(job("p", "probe.so", "* * * * * *")).start()
        done = lambda rs: [r for r in rs if r["status"] != "running"]
        rows = done(d.wait_runs("p", lambda rs: len(done(rs)) >= 3, timeout=20))
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


class StateDirs(DaemonTestCase):
    """A job's state directory ($state_dir/jobs/<job>) is its user's alone (today the daemon's own,
    as jobs run as it), made by descriptor; a link or someone else's directory there is refused."""

    def test_made_for_the_job_alone(self):
        d = self.daemon(job("p", "probe.so", "@yearly")).start()
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        st = os.lstat(os.path.join(d.state, "jobs", "p"))
        self.assertEqual((st.st_uid, st.st_gid), (os.geteuid(), os.getegid()))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        self.assertTrue(os.path.exists(os.path.join(d.state, "jobs", "p", "probe.ran")))
        parent = os.lstat(os.path.join(d.state, "jobs"))
        self.assertEqual(parent.st_uid, os.geteuid())
        self.assertEqual(stat.S_IMODE(parent.st_mode) & 0o022, 0, "jobs can write %s/jobs" % d.state)
        self.assertEqual(d.stop(), 0)

    def test_a_link_at_a_job_dir_is_refused(self):
        d = self.daemon(job("p", "probe.so", "@yearly"))
        elsewhere = os.path.join(d.tmp, "elsewhere")
        os.makedirs(elsewhere)
        os.makedirs(os.path.join(d.state, "jobs"), mode=0o711)
        os.symlink(elsewhere, os.path.join(d.state, "jobs", "p"))
        d.start()
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "failed", r)
        self.assertFalse(os.path.exists(os.path.join(elsewhere, "probe.ran")), "the run wrote through the link")
        self.assertTrue(os.path.islink(os.path.join(d.state, "jobs", "p")))
        self.assertIn("symbolic link", d.runs("p")[0]["output"])
        log = d.log()
        self.assertIn("refusing %s: it is a symbolic link" % os.path.join(d.state, "jobs", "p"), log)
        self.assertIn("remove it", log)
        self.assertEqual(d.stop(), 0)

    def test_a_worker_checks_a_state_dir_replaced_between_its_runs(self):
        """A worker remembers the directory it verified for a job, and takes a chdir() that lands
        there again as enough: one replaced after a run, by a link or by another directory, is
        checked in full by the next run of the same worker."""
        d = self.daemon(job("p", "probe.so", "@yearly", isolation="worker", workers=1))
        d.start()
        dirp = os.path.join(d.state, "jobs", "p")
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertTrue(os.path.exists(os.path.join(dirp, "probe.ran")))
        pid = d.runs("p")[0]["pid"]
        # a link, to a directory of the same user
        os.rename(dirp, dirp + ".old")
        elsewhere = os.path.join(d.tmp, "elsewhere")
        os.makedirs(elsewhere)
        os.symlink(elsewhere, dirp)
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "failed", r)
        self.assertFalse(os.path.exists(os.path.join(elsewhere, "probe.ran")), "the run wrote through the link")
        # another directory, the job's user's own: entered, and the run writes there
        os.unlink(dirp)
        os.mkdir(dirp, 0o700)
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertTrue(os.path.exists(os.path.join(dirp, "probe.ran")))
        self.assertEqual({x["pid"] for x in d.runs("p")}, {pid}, "not one worker: the memory was not tested")
        self.assertEqual(d.stop(), 0)

    def test_another_users_dir_is_refused(self):
        d = self.daemon(job("p", "probe.so", "@yearly"))
        dirp = os.path.join(d.state, "jobs", "p")
        os.makedirs(dirp, mode=0o700)
        os.chmod(os.path.join(d.state, "jobs"), 0o711)
        try:
            os.chown(dirp, 65534, 65534)
        except PermissionError:
            self.skipTest("needs root to give a directory to another user")
        d.start()
        r = d.ctl({"command": "run", "job": "p", "wait": True})
        self.assertEqual(r["status"], "failed", r)
        self.assertFalse(os.path.exists(os.path.join(dirp, "probe.ran")))
        self.assertIn("owned by uid 65534", d.log())
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
