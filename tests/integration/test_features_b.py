# SPDX-License-Identifier: MIT
"""Issue 18 items 2-5 through the real binaries: least privilege per job, jitter, overlap
policies, backfill and pause. Judged from inside the runs where it matters: record_b.so
appends one JSON line per run (job, scheduled instant, uid/gid/groups, what it could write)."""
import calendar
import json
import os
import pwd
import grp
import shutil
import subprocess
import time
import unittest

from harness import PLUGINS, SCHEDCTL, DaemonTestCase, job, wait_for

M64 = 2 ** 64 - 1


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def jitter(name, instant, max_usec):
    """An independent implementation of basic/jitter.c: what any node computes."""
    h = 14695981039346656037
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) & M64
    h = _mix(h ^ _mix(instant))
    return (h * max_usec) >> 64


def usec(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000000


def records(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


class FeaturesB(DaemonTestCase):
    def schedctl(self, d, *args, check=True):
        p = subprocess.run([SCHEDCTL, "--config", d.config] + list(args), capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("schedctl %s: %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def outdir(self, d):
        """A directory any run may append to, whoever it runs as."""
        out = os.path.join(d.tmp, "out")
        os.makedirs(out, exist_ok=True)
        os.chmod(out, 0o1777)
        # the job's user must reach its state directory under the test's private tmp
        os.chmod(d.tmp, 0o711)
        return out

    # --- item 2: least privilege -------------------------------------------------------

    @unittest.skipUnless(os.geteuid() == 0, "only root can run a job as another user")
    def test_job_as_nobody_cannot_write_history_or_other_jobs(self):
        nobody = pwd.getpwnam("nobody")
        d = self.daemon("")
        out = self.outdir(d)
        rec = os.path.join(out, "runs.jsonl")
        with open(rec, "w"):
            pass
        os.chmod(rec, 0o666)
        creds = os.path.join(d.tmp, "creds")
        os.makedirs(creds)
        os.chmod(creds, 0o700)
        with open(os.path.join(creds, "db-password"), "w") as f:
            f.write("s3cret-value")
        os.chmod(os.path.join(creds, "db-password"), 0o400)
        other_file = os.path.join(d.state, "jobs", "other", "data")
        probes = "[%s, %s]" % (d.db_path(), other_file)
        d.write_registry(
            job("other", "record_b.so", "@yearly", params={"file": rec}) +
            job("low", "record_b.so", "@yearly", user="nobody",
                environment="{GREETING: hello-from-env}",
                credentials="[db-password]",
                params={"file": rec, "probe": probes, "env": "GREETING", "credential": "db-password"}))
        d.start(extra_env={"CREDENTIALS_DIRECTORY": creds})
        # the other job (root) runs first: its directory and a file in it exist
        self.assertEqual(d.ctl({"command": "run", "job": "other", "wait": True})["status"], "succeeded")
        with open(other_file, "w") as f:
            f.write("x")
        os.chmod(other_file, 0o666)  # only the directory stands between the job and this file
        r = d.ctl({"command": "run", "job": "low", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        low = [x for x in records(rec) if x["job"] == "low"][0]
        self.assertEqual(low["uid"], nobody.pw_uid)
        self.assertEqual(low["euid"], nobody.pw_uid)
        self.assertEqual(low["gid"], nobody.pw_gid)
        self.assertEqual(sorted(low["groups"]), sorted(os.getgrouplist("nobody", nobody.pw_gid)))
        self.assertEqual(low["nnp"], 1)  # PR_SET_NO_NEW_PRIVS
        self.assertEqual(low["home"], nobody.pw_dir)
        self.assertEqual(low["probes"][d.db_path()], "EACCES")
        self.assertEqual(low["probes"][other_file], "EACCES")
        self.assertEqual(low["own_dir"], "ok")  # its own state directory it may write
        self.assertEqual(low["env"], "hello-from-env")
        self.assertEqual(low["credential"], "s3cret-value")  # read before the drop
        # root's job is untouched
        self.assertEqual([x for x in records(rec) if x["job"] == "other"][0]["uid"], 0)
        st = d.ctl({"command": "status", "job": "low"})["job"]
        self.assertEqual(st["user"], "nobody")
        d.stop()
        # the secret is in no file the daemon keeps
        for root, _, files in os.walk(d.state):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(b"s3cret-value", f.read(), name)
        with open(d.config, "rb") as f:
            self.assertNotIn(b"s3cret-value", f.read())

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_job_as_nobody_with_the_capabilities_of_a_sandboxed_unit(self):
        """Root limited to CAP_CHOWN, CAP_SETUID and CAP_SETGID (no CAP_DAC_OVERRIDE), as a systemd
        unit's CapabilityBoundingSet= leaves it: the job still runs as nobody in its own directory."""
        d = self.daemon("")
        out = self.outdir(d)
        rec = os.path.join(out, "caps.jsonl")
        d.write_registry(job("low", "record_b.so", "@yearly", user="nobody", params={"file": rec}))
        prefix = os.environ.get("SCHEDULERD_VALGRIND", "")
        os.environ["SCHEDULERD_VALGRIND"] = "setpriv --bounding-set=-all,+chown,+setuid,+setgid " + prefix
        try:
            d.start()
        finally:
            os.environ["SCHEDULERD_VALGRIND"] = prefix
        r = d.ctl({"command": "run", "job": "low", "wait": True})
        self.assertEqual(r["status"], "succeeded", r)
        low = records(rec)[0]
        self.assertEqual(low["uid"], pwd.getpwnam("nobody").pw_uid)
        self.assertEqual(low["own_dir"], "ok")
        self.assertNotIn("cannot enter state directory", d.log())
        d.stop()

    def test_plugin_writable_by_the_jobs_user_is_refused(self):
        d = self.daemon("")
        pdir = os.path.join(d.tmp, "plugins")
        os.makedirs(pdir)
        shutil.copy(os.path.join(PLUGINS, "ok.so"), pdir)
        os.chmod(os.path.join(pdir, "ok.so"), 0o755)
        os.chmod(pdir, 0o755)
        plugin = os.path.join(pdir, "ok.so")
        d.plugin_dir = pdir  # plugins load from plugin_dir only
        d.write_registry(job("low", plugin, "@yearly", user="nobody"))
        self.assertEqual(self.schedctl(d, "check", d.config).returncode, 0)  # root's, not writable: fine
        os.chmod(pdir, 0o777)  # now nobody could swap the file the daemon loads as root
        p = self.schedctl(d, "check", d.config, check=False)
        self.assertNotEqual(p.returncode, 0)
        out = p.stdout + p.stderr
        self.assertIn("%s:9:13: job low: plugin \"%s\": plugin directory %s is writable by user nobody" %
                      (d.config, plugin, pdir), out)
        d.start(wait_ready=False)
        d.proc.wait(15)
        self.assertNotEqual(d.proc.returncode, 0)
        self.assertIn("is writable by user nobody", d.log())
        os.chmod(pdir, 0o755)
        os.chmod(plugin, 0o666)
        p = self.schedctl(d, "check", d.config, check=False)
        self.assertIn("plugin %s is writable by user nobody" % plugin, p.stdout + p.stderr)

    def test_unknown_user_is_a_load_error_with_position(self):
        d = self.daemon(job("low", "ok.so", "@yearly", user="no-such-user-x"),
                        scheduler="  default_user: nobody-else-x\n")
        p = self.schedctl(d, "check", d.config, check=False)
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:5:17: scheduler.default_user: no user \"nobody-else-x\"" % d.config, out)
        self.assertIn("%s:12:11: job low: user: no user \"no-such-user-x\"" % d.config, out)

    # --- item 3: jitter ----------------------------------------------------------------

    def test_jitter_is_the_same_on_two_daemons(self):
        spec = job("jit", "ok.so", "*/2 * * * * *", random_delay="1500ms")
        a, b = self.daemon(spec).start(), self.daemon(spec).start()
        # both daemons agree on the delay of the same instant, and with an independent computation
        for _ in range(3):
            sa, sb = wait_for(lambda: (lambda x, y: (x, y) if x["next_usec"] == y["next_usec"] else None)(
                a.ctl({"command": "status", "job": "jit"})["job"], b.ctl({"command": "status", "job": "jit"})["job"]),
                what="both daemons at the same next fire")
            self.assertEqual(sa["next_delay_usec"], sb["next_delay_usec"])
            self.assertEqual(sa["next_delay_usec"], jitter("jit", sa["next_usec"], 1500000))
            self.assertEqual(sa["random_delay_usec"], 1500000)
            time.sleep(0.5)
        # and the runs start no sooner than their delay
        for d in (a, b):
            rows = d.wait_runs("jit", lambda rs: len([r for r in rs if r["status"] == "succeeded"]) >= 2, timeout=20)
            for r in rows:
                self.assertGreaterEqual(r["started_usec"], r["scheduled_usec"] +
                                        jitter("jit", r["scheduled_usec"], 1500000))
        # schedctl next shows the same delays, offline
        nx = json.loads(self.schedctl(a, "next", "jit", "-n", "3", "--json").stdout)
        for f in nx:
            self.assertEqual(f["delay_usec"], jitter("jit", f["usec"], 1500000))
        text = self.schedctl(a, "next", "jit", "-n", "3", "--from", "2030-01-01T00:00:00Z").stdout
        d0 = jitter("jit", usec("2030-01-01T00:00:02Z"), 1500000)
        self.assertIn("DELAY", text.splitlines()[0])
        self.assertIn("%d.%03ds" % (d0 // 1000000, d0 % 1000000 // 1000), text.splitlines()[1])
        self.assertIn("later by random_delay", self.schedctl(a, "status", "jit").stdout)
        a.stop()
        b.stop()

    # --- item 4: overlap ---------------------------------------------------------------

    def test_overlap_policies_under_a_slow_job(self):
        slow = {"duration": "2500ms"}
        d = self.daemon(job("skip", "slow.so", "* * * * * *", overlap="skip", params=slow) +
                        job("allow", "slow.so", "* * * * * *", overlap="allow", params=slow) +
                        job("queue", "slow.so", "* * * * * *", overlap="queue", params=slow) +
                        job("repl", "slow.so", "* * * * * *", overlap="replace", params=slow) +
                        job("alias", "slow.so", "* * * * * *", singleton=True, params=slow)).start()

        def finished(rs):
            return [r for r in rs if r["status"] not in ("running", "skipped")]

        skip = d.wait_runs("skip", lambda rs: len(finished(rs)) >= 1 and any(r["status"] == "skipped" for r in rs),
                           timeout=20)
        self.assertIn("still running", [r for r in skip if r["status"] == "skipped"][0]["message"])
        alias = d.wait_runs("alias", lambda rs: any(r["status"] == "skipped" for r in rs), timeout=20)
        self.assertTrue(alias)

        # allow: a run starts while the previous one is still running
        allow = d.wait_runs("allow", lambda rs: len(finished(rs)) >= 2, timeout=20)
        done = finished(allow)
        self.assertLess(done[1]["started_usec"], done[0]["finished_usec"])

        # queue: never two at once, at most one waits (the others are skipped), the waiting fire
        # runs later standing for its own instant
        queue = d.wait_runs("queue", lambda rs: len(finished(rs)) >= 2 and
                            any(r["status"] == "skipped" for r in rs), timeout=25)
        ran = finished(queue)
        for x, y in zip(ran, ran[1:]):
            self.assertGreaterEqual(y["started_usec"], x["finished_usec"])
        self.assertGreater(ran[1]["started_usec"] - ran[1]["scheduled_usec"], 1000000)  # it waited
        self.assertIn("already waits", [r for r in queue if r["status"] == "skipped"][0]["message"])

        # replace: the run in flight is cancelled with the reason, then the new fire runs
        repl = d.wait_runs("repl", lambda rs: len([r for r in rs if r["status"] == "cancelled"]) >= 1 and
                           len(rs) >= 2, timeout=20)
        c = [r for r in repl if r["status"] == "cancelled"][0]
        self.assertIn("replaced by the schedule fire at", c["message"])
        self.assertIn("overlap: replace", c["message"])
        after = [r for r in repl if r["id"] > c["id"]][0]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(after["scheduled_usec"] // 1000000))
        self.assertIn(stamp, c["message"])
        self.assertGreaterEqual(after["started_usec"], c["finished_usec"])
        self.assertFalse([r for r in repl if r["status"] == "skipped"])
        st = d.ctl({"command": "status", "job": "queue"})["job"]
        self.assertEqual(st["overlap"], "queue")
        d.stop()

    # --- item 5: backfill and pause ------------------------------------------------------

    def test_backfill_dry_run_then_killed_and_resumed_without_running_twice(self):
        d = self.daemon("")
        out = self.outdir(d)
        rec = os.path.join(out, "bf.jsonl")
        d.write_registry(job("bf", "record_b.so", "0 0 1 1 *", params={"file": rec, "duration": "400ms"}))
        d.start()
        want = [usec("%d-01-01T00:00:00Z" % y) for y in range(2016, 2026)]
        rng = ["--from", "2016-01-01T00:00:00Z", "--to", "2025-06-01T00:00:00Z"]

        dry = json.loads(self.schedctl(d, "backfill", "bf", *rng, "--dry-run", "--json").stdout)
        self.assertEqual(dry["instants_usec"], want)
        self.assertEqual(dry["claimed"], 0)
        text = self.schedctl(d, "backfill", "bf", *rng, "--dry-run").stdout
        self.assertIn("10 instants; 0 ran before", text)
        self.assertEqual(records(rec), [])
        self.assertEqual(d.runs("bf"), [])

        self.assertIn("Backfilling bf: 10 instants", self.schedctl(d, "backfill", "bf", *rng).stdout)
        wait_for(lambda: len(records(rec)) >= 3, timeout=20, what="three backfilled runs")
        self.assertLess(len(records(rec)), 10)
        self.assertIsNotNone(d.ctl({"command": "status", "job": "bf"})["job"]["backfill"])
        d.kill9()
        cut = len(records(rec))
        d.start()  # resumes where it was
        wait_for(lambda: d.ctl({"command": "status", "job": "bf"})["job"]["backfill"] is None, timeout=30,
                 what="the backfill to finish")
        got = [x["scheduled"] for x in records(rec)]
        self.assertEqual(sorted(got), want, "each instant exactly once (killed after %d)" % cut)
        self.assertEqual(got, sorted(got))  # oldest first
        rows = d.runs("bf")
        self.assertEqual(sorted(r["scheduled_usec"] for r in rows), want)
        self.assertTrue(all(r["trigger"] == "catch_up" for r in rows))

        # the same range again: everything ran before, nothing runs
        again = json.loads(self.schedctl(d, "backfill", "bf", *rng, "--json").stdout)
        self.assertEqual(again["claimed"], 10)
        wait_for(lambda: d.ctl({"command": "status", "job": "bf"})["job"]["backfill"] is None, what="no backfill")
        self.assertEqual(len(records(rec)), 10)
        p = self.schedctl(d, "backfill", "bf", "--from", "2025-01-02T00:00:00Z", "--to", "2025-01-03T00:00:00Z",
                          check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no instant in this range", p.stderr)
        d.stop()

    def test_pause_survives_a_restart(self):
        d = self.daemon(job("p", "ok.so", "* * * * * *") + job("clock", "ok.so", "* * * * * *")).start()
        d.wait_runs("p", lambda rs: len(rs) >= 1)
        self.assertIn("Paused p until schedctl resume p", self.schedctl(d, "pause", "p").stdout)
        paused_at = int(time.time() * 1000000)
        d.stop()
        d.start()
        lst = json.loads(self.schedctl(d, "list", "--json").stdout)
        p = [j for j in lst["jobs"] if j["name"] == "p"][0]
        self.assertTrue(p["paused"])
        self.assertIsNone(p["paused_until_usec"])
        self.assertIn("paused", self.schedctl(d, "list").stdout)
        # the other job's runs are the clock: while it ran three more times, p ran none
        n = len(d.runs("clock"))
        d.wait_runs("clock", lambda rs: len(rs) >= n + 3)
        self.assertFalse([r for r in d.runs("p") if r["scheduled_usec"] > paused_at + 1000000])
        self.schedctl(d, "resume", "p")
        d.wait_runs("p", lambda rs: any(r["scheduled_usec"] > paused_at + 1000000 for r in rs))
        # --until: shown with its end
        self.schedctl(d, "pause", "p", "--until", "2099-01-01T00:00:00Z")
        st = d.ctl({"command": "status", "job": "p"})["job"]
        self.assertEqual(st["paused_until_usec"], usec("2099-01-01T00:00:00Z"))
        self.assertIn("paused until", self.schedctl(d, "list", "--utc").stdout)
        d.stop()


if __name__ == "__main__":
    unittest.main()
