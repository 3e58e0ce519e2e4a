# SPDX-License-Identifier: MIT
"""Issue 13: hardening found by a real systemd install and a security review, through the real
binaries. Runs as root (as make check does here); tests that need another owner use `nobody`."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import PLUGINS, SCHEDCTL, SCHEDULERD, Daemon, DaemonTestCase, job, wait_for

IS_ROOT = os.geteuid() == 0
try:
    NOBODY = pwd.getpwnam("nobody").pw_uid
except KeyError:
    NOBODY = None

EVIL_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
        int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0)
                close(fd);
}
"""


def schedctl(*args):
    p = subprocess.run([SCHEDCTL] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def compile_evil(path, marker):
    """A shared object whose constructor creates MARKER: proof that it ran in the loader."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    src = path[:-3] + ".c"
    with open(src, "w") as f:
        f.write(EVIL_C)
    p = subprocess.run([cc, "-shared", "-fPIC", "-std=c11", '-DMARKER="%s"' % marker, "-o", path, src],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("compiling %s failed:\n%s" % (src, p.stderr))
    os.unlink(src)


@unittest.skipUnless(IS_ROOT and NOBODY is not None, "needs root and a user nobody to own untrusted files")
class Trust(DaemonTestCase):
    """Item 2: nothing an unprivileged user wrote runs as root, in the daemon or in schedctl check."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="sched-trust-")  # 0700, root: trusted
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.marker = os.path.join(self.tmp, "constructor-ran")
        self.plugins = os.path.join(self.tmp, "plugins")
        os.mkdir(self.plugins, 0o755)
        self.evil = os.path.join(self.plugins, "evil.so")
        compile_evil(self.evil, self.marker)
        os.chmod(self.evil, 0o755)

    def write(self, path, text, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def registry(self, plugin="evil.so", extra=""):
        return self.write(os.path.join(self.tmp, "registry.yaml"),
                          "scheduler:\n  plugin_dir: %s\n%sjobs:\n  - name: a\n    plugin: %s\n"
                          "    schedule: '@daily'\n" % (self.plugins, extra, plugin))

    def check_refused(self, config, *needles):
        rc, out, err = schedctl("--config", config, "check")
        self.assertNotEqual(rc, 0, out + err)
        for n in needles:
            self.assertIn(n, out + err)
        self.assertFalse(os.path.exists(self.marker), "the untrusted plugin's constructor ran in schedctl check")

    def test_trusted_plugin_loads(self):
        # the control: a root-owned plugin in a root-owned 0755 dir under a 0700 dir in /tmp loads
        # (it is no job: check says so after loading it)
        rc, out, err = schedctl("--config", self.registry(), "check")
        self.assertIn('no "schedulerd_job" symbol', out + err)
        self.assertTrue(os.path.exists(self.marker))

    def test_world_writable_plugin(self):
        os.chmod(self.evil, 0o666)
        self.check_refused(self.registry(), self.evil, "writable by others (mode 0666)", "chmod go-w")

    def test_plugin_owned_by_nobody(self):
        os.chown(self.evil, NOBODY, -1)
        self.check_refused(self.registry(), self.evil, "owned by uid %d" % NOBODY, "chown root")

    def test_sticky_world_writable_plugin_dir(self):
        os.chmod(self.plugins, 0o1777)
        self.check_refused(self.registry(), "directory %s is writable by others (mode 1777)" % self.plugins)

    def test_symlinked_plugin(self):
        os.rename(self.evil, os.path.join(self.tmp, "real.so"))
        os.symlink(os.path.join(self.tmp, "real.so"), self.evil)
        self.check_refused(self.registry(), self.evil, "is a symbolic link")

    def test_plugin_outside_plugin_dir(self):
        elsewhere = os.path.join(self.tmp, "elsewhere.so")
        shutil.copy(self.evil, elsewhere)
        self.check_refused(self.registry(plugin=elsewhere), "plugins are loaded from plugin_dir only")
        self.check_refused(self.registry(plugin="../elsewhere.so"), "plugins are loaded from plugin_dir only")

    def test_registry_owned_by_nobody(self):
        reg = self.registry()
        os.chown(reg, NOBODY, -1)
        self.check_refused(reg, reg, "owned by uid %d" % NOBODY)

    def test_dropin_in_world_writable_dir(self):
        jobs_d = os.path.join(self.tmp, "jobs.d")
        os.mkdir(jobs_d)
        os.chmod(jobs_d, 0o777)
        drop = self.write(os.path.join(jobs_d, "x.yaml"), "jobs:\n  - name: b\n    plugin: evil.so\n"
                          "    schedule: '@daily'\n")
        os.chmod(self.evil, 0o600)  # would pass on its own
        self.check_refused(self.registry(plugin="nothere.so", extra="  include: jobs.d/*.yaml\n"),
                           drop, "directory %s is writable by others (mode 0777)" % jobs_d)

    def test_reload_of_nobodys_dropin_runs_nothing(self):
        """The issue's scenario: nobody writes a drop-in into a world-writable jobs.d naming their own
        plugin through ../; a reload must refuse it without mapping the plugin."""
        d = Daemon(job("one", "ok.so", "@daily"), "  include: %s/jobs.d/*.yaml\n" % self.tmp, tmp=self.tmp)
        self.daemons.append(d)
        os.chmod(self.tmp, 0o755)  # nobody must reach jobs.d
        jobs_d = os.path.join(self.tmp, "jobs.d")
        os.mkdir(jobs_d)
        os.chmod(jobs_d, 0o1777)
        d.start()
        theirs = tempfile.mkdtemp(prefix="sched-nobody-")
        self.addCleanup(shutil.rmtree, theirs, True)
        os.chown(theirs, NOBODY, -1)
        evil = os.path.join(theirs, "evil.so")
        shutil.copy(self.evil, evil)
        os.chown(evil, NOBODY, -1)
        rel = os.path.relpath(evil, PLUGINS)
        drop = os.path.join(jobs_d, "evil.yaml")
        subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=65534", "--clear-groups", "sh", "-c",
                        "printf 'jobs:\\n  - name: evil\\n    plugin: %s\\n    schedule: \"@daily\"\\n' > %s"
                        % (rel, drop)], check=True)
        self.assertEqual(os.stat(drop).st_uid, NOBODY)
        r = d.ctl({"command": "reload"})
        self.assertFalse(r["ok"], r)
        self.assertTrue(any(drop in e for e in r["errors"]), r)
        self.assertFalse(os.path.exists(self.marker), "nobody's plugin ran as root in the daemon")
        self.assertEqual([j["name"] for j in d.ctl({"command": "list"})["jobs"]], ["one"])
        self.assertEqual(d.stop(), 0)


class OneDaemon(DaemonTestCase):
    """Item 8: one daemon per state directory, and no socket taken from a live one."""

    def test_second_daemon_on_same_state_refused(self):
        a = self.daemon(job("tick", "ok.so", "@every 2s")).start()
        b = Daemon(job("tick", "ok.so", "@every 2s"), tmp=a.tmp)  # the same registry, state and socket
        b.log_path = os.path.join(a.tmp, "second.log")
        self.daemons.append(b)
        b.start(wait_ready=False)
        self.assertEqual(b.proc.wait(30), 1)
        self.assertIn("Another schedulerd (pid %d) already runs on state directory %s" % (a.proc.pid, a.state),
                      b.log())
        self.assertNotIn("READY=1", b.messages)
        # the first one still owns its socket and answers
        self.assertTrue(a.ctl({"command": "list"})["ok"])
        self.assertEqual(a.stop(), 0)

    def test_live_socket_not_taken(self):
        a = self.daemon(job("one", "ok.so", "@daily")).start()
        b = self.daemon(job("one", "ok.so", "@daily"))
        b.sock = a.sock  # its own state, the first one's socket
        b.write_registry(job("one", "ok.so", "@daily"))
        b.start(wait_ready=False)
        self.assertEqual(b.proc.wait(30), 1)
        self.assertIn("Something already answers on %s" % a.sock, b.log())
        self.assertTrue(a.ctl({"command": "list"})["ok"])
        self.assertEqual(a.stop(), 0)

    def test_stale_socket_replaced(self):
        d = self.daemon(job("one", "ok.so", "@daily"))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(d.sock)  # bound, never listening: what a killed daemon leaves
        s.close()
        d.start()
        self.assertTrue(d.ctl({"command": "list"})["ok"])
        self.assertEqual(d.stop(), 0)


class ExitStatus(DaemonTestCase):
    """Item 13: a registry the daemon refuses ends it with 78, which the unit does not restart."""

    def test_bad_registry_exits_78(self):
        d = self.daemon(job("Bad Name", "ok.so", "@daily"))
        d.start(wait_ready=False)
        self.assertEqual(d.proc.wait(30), 78, d.log())

    def test_unit_does_not_restart_on_78(self):
        unit = os.path.join(os.environ.get("top_builddir", "."), "contrib", "systemd", "schedulerd.service")
        with open(unit) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^RestartPreventExitStatus=.*\b78\b")


JOURNAL_READER = r"""
import json, os, socket, subprocess, sys
os.makedirs("/run/systemd/journal")
j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
j.bind("/run/systemd/journal/socket")
j.settimeout(20)
err = open(sys.argv[2], "wb")
st = os.fstat(err.fileno())
env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
env.pop("NOTIFY_SOCKET", None)
p = subprocess.Popen([sys.argv[1], "--config", sys.argv[3]], stderr=err, stdout=err, env=env)
entries = []
job = sys.argv[4] if len(sys.argv) > 4 else "start-job"
try:
    while not any("Finished" in l or "finished" in l for e in entries for l in e if l.startswith("MESSAGE=" + job)):
        data = j.recv(65536).decode(errors="replace")
        entries.append([l for l in data.split("\n") if l])
finally:
    p.terminate()
    p.wait()
print(json.dumps(entries))
"""


def journal_entries(tmp, config, job):
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                          'mount -t tmpfs tmpfs /run && exec "$@"', "sh", "python3", "-c", JOURNAL_READER,
                          SCHEDULERD, os.path.join(tmp, "stderr"), config, job],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(out.stderr)
    return __import__("json").loads(out.stdout)


FIELDS_PLUGIN = r"""
#include <stdio.h>
#include <schedulerd/job.h>
static sched_job_result run(sched_job_ctx *ctx) {
        sched_job_log(ctx, SCHED_LOG_NOTICE, "window closed [ROBOT_ID=42 SESSION_ID=7 WINDOW_ID=3]");
        sched_job_log(ctx, SCHED_LOG_INFO, "not fields [JOB=x ROBOT_ID=1]");
        printf("forged by output [ROBOT_ID=666]\n");
        return SCHED_JOB_OK;
}
SCHEDULERD_JOB_DEFINE(.name = "fields", .run = run);
"""


@unittest.skipUnless(IS_ROOT, "needs root for a private mount namespace with its own journal socket")
class Journal(DaemonTestCase):
    """Item 14: journal lines name the job and run in MESSAGE, not only in fields."""

    def test_message_has_job_prefix(self):
        d = self.daemon(job("start-job", "ok.so", "@yearly", run_on_startup=True))
        msgs = [l for e in journal_entries(d.tmp, d.config, "start-job") for l in e if l.startswith("MESSAGE=")]
        started = [m for m in msgs if "Started (startup" in m]
        self.assertTrue(started, msgs)
        self.assertRegex(started[0], r"^MESSAGE=start-job\[run \d+\]: Started \(startup, ")

    def test_job_log_fields_become_journal_fields(self):
        """Issue 17 item 6: a sched_job_log() line's [KEY=value ...] block gives the entry its fields;
        job output and the daemon's own field names cannot."""
        d = self.daemon("")
        plugdir = os.path.join(d.tmp, "plugins")
        os.mkdir(plugdir)
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        src = os.path.join(d.tmp, "fields.c")
        with open(src, "w") as f:
            f.write(FIELDS_PLUGIN)
        inc = os.path.join(os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", "..")),
                           "include")
        subprocess.run([cc, "-shared", "-fPIC", "-I", inc, "-o", os.path.join(plugdir, "fields.so"), src], check=True)
        d.plugin_dir = plugdir
        d.write_registry(job("fields", "fields.so", "@yearly", run_on_startup=True))
        entries = journal_entries(d.tmp, d.config, "fields")

        def entry(text):
            found = [e for e in entries if any(l.startswith("MESSAGE=") and text in l for l in e)]
            self.assertEqual(len(found), 1, entries)
            return found[0]

        closed = entry("window closed")
        for f in ("ROBOT_ID=42", "SESSION_ID=7", "WINDOW_ID=3", "JOB=fields", "PRIORITY=5"):
            self.assertIn(f, closed)
        self.assertNotIn("ROBOT_ID=1", entry("not fields"))  # JOB is the daemon's: the block is text
        self.assertEqual(entry("not fields").count("JOB=fields"), 1)
        self.assertNotIn("ROBOT_ID=666", entry("forged by output"))


ENV_PLUGIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <schedulerd/job.h>
static sched_job_result run(sched_job_ctx *ctx) {
        printf("NOTIFY_SOCKET=%s WATCHDOG_USEC=%s WATCHDOG_PID=%s\n", getenv("NOTIFY_SOCKET") ?: "-",
               getenv("WATCHDOG_USEC") ?: "-", getenv("WATCHDOG_PID") ?: "-");
        return SCHED_JOB_OK;
}
SCHEDULERD_JOB_DEFINE(.name = "env", .run = run);
"""


class Small(DaemonTestCase):
    """Item 17."""

    def test_stopping_sent_once(self):
        d = self.daemon(job("one", "ok.so", "@daily")).start()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.messages.count("STOPPING=1"), 1, d.messages)

    def test_interrupted_message_grammar(self):
        d = self.daemon(job("slow", "slow.so", "@yearly", params={"duration": "60s"})).start()
        r = d.ctl({"command": "run", "job": "slow"})
        self.assertTrue(r["ok"], r)
        d.wait_runs("slow", lambda rs: rs and rs[0]["status"] == "running")
        d.kill9()
        d.cleanup()
        d.start()
        self.assertIn("1 run did not finish before the daemon last stopped", d.log())
        self.assertEqual(d.stop(), 0)

    def test_jobs_do_not_inherit_notify_and_watchdog(self):
        d = self.daemon(job("env", "env.so", "@yearly"))
        plugdir = os.path.join(d.tmp, "plugins")
        os.mkdir(plugdir)
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        src = os.path.join(d.tmp, "env.c")
        with open(src, "w") as f:
            f.write(ENV_PLUGIN)
        inc = os.path.join(os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", "..")),
                           "include")
        subprocess.run([cc, "-shared", "-fPIC", "-I", inc, "-o", os.path.join(plugdir, "env.so"), src], check=True)
        d.plugin_dir = plugdir
        d.write_registry(job("env", "env.so", "@yearly"))
        d.start(extra_env={"WATCHDOG_USEC": "30000000"})
        r = d.ctl({"command": "run", "job": "env", "wait": True})
        self.assertTrue(r["ok"], r)
        rs = d.wait_runs("env", lambda rs: rs and rs[0]["status"] == "succeeded")
        self.assertIn("NOTIFY_SOCKET=- WATCHDOG_USEC=- WATCHDOG_PID=-", rs[0]["output"])
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(IS_ROOT and NOBODY is not None, "needs root to give a process 300 groups")
    def test_admin_in_300_groups(self):
        import grp
        try:
            admin = grp.getgrnam("nogroup").gr_gid
        except KeyError:
            self.skipTest("no group nogroup to act as admin_group")
        d = self.daemon(job("one", "ok.so", "@yearly"), "  admin_group: nogroup\n").start()
        os.chmod(d.tmp, 0o755)
        os.chmod(d.sock, 0o666)
        groups = ",".join(str(g) for g in list(range(20000, 20300)) + [admin])
        req = '{"command": "disable", "job": "one"}'
        p = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=20001", "--groups=" + groups, "python3",
                            "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                            "s.sendall(sys.argv[2].encode() + b'\\n'); print(s.recv(4096).decode())", d.sock, req],
                           capture_output=True, text=True, timeout=30)
        self.assertIn('"ok":true', p.stdout.replace(" ", ""), p.stdout + p.stderr)
        self.assertEqual(d.stop(), 0)


class History(DaemonTestCase):
    """Item 16: history.db is 0640 and never opened through a symbolic link."""

    def test_history_mode_0640(self):
        d = self.daemon(job("one", "ok.so", "@daily")).start()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(os.stat(d.db_path()).st_mode & 0o777, 0o640)

    def test_history_symlink_refused(self):
        d = self.daemon(job("one", "ok.so", "@daily"))
        os.makedirs(d.state)
        target = os.path.join(d.tmp, "elsewhere.db")
        os.symlink(target, d.db_path())
        d.start(wait_ready=False)
        self.assertEqual(d.proc.wait(30), 1)
        self.assertIn("symbolic link", d.log())
        self.assertFalse(os.path.exists(target))


if __name__ == "__main__":
    unittest.main()
