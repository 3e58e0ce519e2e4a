# SPDX-License-Identifier: MIT
"""Issue 4: schedctl against the real daemon (every command and its --json form), the control
socket's limits and permissions, the systemd unit, make install and an out-of-tree plugin."""
import glob
import grp
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import BUILDDIR, PLUGINS, SCHEDCTL, SRCDIR, Daemon, job, wait_for

AT_USEC = 1774760400 * 1000000  # 2026-03-29T05:00:00Z = 07:00 CEST in Europe/Amsterdam


def schedctl(d, *args, env=None, timeout=60, prefix=()):
    cmd = list(prefix) + [SCHEDCTL, "--config", d.config, "--socket", d.sock] + list(args)
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    if env:
        e.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def jobs_by_name(out):
    return {j["name"]: j for j in json.loads(out)["jobs"]}


def restart(d):
    """Stops and starts D, waiting for the new process's READY=1 (not the old one's)."""
    rc = d.stop()
    d.messages = []
    d.start()
    return rc


def read(path):
    with open(path) as f:
        return f.read()


def own_plugin_dir(d):
    """Points D's registry at a plugin directory of its own (holding a copy of ok.so)."""
    plugdir = os.path.join(d.tmp, "plugins")
    os.makedirs(plugdir, exist_ok=True)
    shutil.copy(os.path.join(PLUGINS, "ok.so"), plugdir)
    base_write = d.write_registry

    def write_registry(jobs_yaml, scheduler_yaml=""):
        base_write(jobs_yaml, scheduler_yaml)
        text = read(d.config).replace("plugin_dir: %s\n" % PLUGINS, "plugin_dir: %s\n" % plugdir)
        with open(d.config, "w") as f:
            f.write(text)
    d.write_registry = write_registry
    return plugdir


def compile_plugin(path, source, cflags):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    src = path[:-3] + ".c"
    with open(src, "w") as f:
        f.write(source)
    p = subprocess.run([cc, "-shared", "-fPIC", "-Wall", "-Werror", "-std=c11"] + cflags + ["-o", path, src],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("compiling %s failed:\n%s" % (src, p.stderr))


class Base(unittest.TestCase):
    JOBS = (job("ok", "ok.so", "*/5 * * * *", timezone="Europe/Amsterdam") +
            job("fail", "fail.so", "@yearly", description="always fails") +
            job("slow", "slow.so", "@yearly", timezone="Europe/Amsterdam", params={"duration": "20ms"}) +
            job("long", "slow.so", "@yearly", params={"duration": "30s"}))

    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.cleanup()
            shutil.rmtree(d.tmp, ignore_errors=True)

    def daemon(self, jobs=None, scheduler=""):
        d = Daemon(jobs or self.JOBS, scheduler)
        self.daemons.append(d)
        return d.start()

    def ok(self, d, *args, **kw):
        rc, out, err = schedctl(d, *args, **kw)
        self.assertEqual(rc, 0, "schedctl %s: rc %d\n%s%s" % (" ".join(args), rc, out, err))
        return out


class Commands(Base):
    def test_list_table_and_json(self):
        d = self.daemon()
        self.ok(d, "run", "ok", "--wait")
        out = self.ok(d, "list")
        lines = out.splitlines()
        for col in ("NEXT", "LEFT", "LAST", "PASSED", "JOB", "STATUS", "STATE", "ENABLED", "RUNS", "FAILED", "AVG",
                    "SCHEDULE", "ZONE"):
            self.assertIn(col, lines[0])
        self.assertIn("4 jobs listed.", out)
        row = next(l for l in lines if " ok " in l)
        # NEXT in the job's zone, as systemctl shows timestamps
        self.assertRegex(row, r"^\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST) ")
        self.assertIn("succeeded", row)
        # columns are aligned: every row has JOB where the header has it
        at = lines[0].index("JOB")
        for l in lines[1:5]:
            self.assertNotEqual(l[at], " ", l)
            self.assertEqual(l[at - 1], " ", l)
        self.assertNotIn("\033[", out)  # not a terminal: no colour

        jobs = jobs_by_name(self.ok(d, "list", "--json"))
        self.assertEqual(set(jobs), {"ok", "fail", "slow", "long"})
        j = jobs["ok"]
        for k in ("name", "schedule", "timezone", "enabled", "enabled_override", "state", "running", "next_usec",
                  "last_usec", "last_status", "runs", "failures", "average_duration_usec"):
            self.assertIn(k, j)
        self.assertEqual(j["timezone"], "Europe/Amsterdam")
        self.assertEqual(j["state"], "idle")
        self.assertEqual(j["last_status"], "succeeded")
        self.assertEqual(j["runs"], 1)
        self.assertIsNone(jobs["fail"]["last_usec"])
        # --json before the command works as well
        rc, out, _ = schedctl(d, "--json", "list")
        self.assertEqual(set(jobs_by_name(out)), set(jobs))
        d.stop()

    def test_utc_option(self):
        d = self.daemon()
        out = self.ok(d, "list", "--utc")
        row = next(l for l in out.splitlines() if " ok " in l)
        self.assertRegex(row, r"^\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ")

    def test_status_text_and_json(self):
        d = self.daemon()
        schedctl(d, "run", "fail", "--wait")
        out = self.ok(d, "status", "fail")
        self.assertIn("fail - always fails", out)
        self.assertIn("Schedule: @yearly (zone UTC)", out)
        self.assertIn("failed on purpose", out)
        self.assertIn("Next fires:", out)
        j = json.loads(self.ok(d, "status", "fail", "--json"))
        self.assertEqual(j["name"], "fail")
        self.assertEqual(j["description"], "always fails")
        self.assertTrue(j["plugin"].endswith("fail.so"))
        self.assertEqual(j["retry"]["attempts"], 0)
        self.assertEqual(j["source"]["file"], d.config)
        self.assertEqual(len(j["next_fires_usec"]), 5)
        self.assertEqual(j["last_runs"][0]["status"], "failed")
        self.assertEqual(j["last_runs"][0]["message"], "failed on purpose")

        rc, out, err = schedctl(d, "status", "nope")
        self.assertEqual(rc, 1)
        self.assertIn('no job "nope"', err)
        rc, out, err = schedctl(d, "status")  # without JOB: the daemon's, with the history's size
        self.assertEqual(rc, 0, err)
        self.assertIn("History:", out)
        rc, _, err = schedctl(d, "status", "a", "b")
        self.assertEqual(rc, 2, err)

    def test_run_wait_exit_codes(self):
        d = self.daemon()
        rc, out, err = schedctl(d, "run", "ok", "--wait")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^Run \d+ of ok succeeded after .*: ok$")
        rc, out, err = schedctl(d, "run", "fail", "--wait")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("failed", out)
        self.assertIn("failed on purpose", out)

        rc, out, err = schedctl(d, "run", "ok", "--wait", "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual((r["job"], r["status"], r["exit_code"], r["message"]), ("ok", "succeeded", 0, "ok"))
        self.assertGreater(r["run_id"], 0)
        self.assertIn("duration_usec", r)
        rc, out, _ = schedctl(d, "run", "fail", "--wait", "--json")
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["status"], "failed")

        # without --wait: started, and the reply names the run
        rc, out, err = schedctl(d, "run", "ok", "--json")
        self.assertEqual(rc, 0, err)
        run_id = json.loads(out)["run_id"]
        d.wait_runs("ok", lambda rs: any(r["id"] == run_id and r["status"] == "succeeded" for r in rs))
        rc, out, _ = schedctl(d, "run", "ok")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^Started run \d+ of ok\.$")

        # --timeout bounds the wait, not the run
        rc, out, err = schedctl(d, "run", "long", "--wait", "--timeout", "300ms")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("has not finished after 300ms", err)
        self.assertEqual(d.runs("long")[-1]["status"], "running")

        # usage errors
        for args in (("run",), ("run", "ok", "--timeout", "1s"), ("run", "ok", "--wait", "--timeout", "soon"),
                     ("run", "ok", "--at", "yesterday"), ("run", "ok", "extra")):
            rc, _, err = schedctl(d, *args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))
        rc, _, err = schedctl(d, "run", "nope", "--wait")
        self.assertEqual(rc, 1)
        self.assertIn('no job "nope"', err)
        d.stop()

    def test_run_at_reaches_logical_clock(self):
        d = self.daemon()
        rc, out, err = schedctl(d, "run", "slow", "--at", "2026-03-29T05:00:00Z", "--wait")
        self.assertEqual(rc, 0, out + err)
        # without an offset the time is local to the job's zone (Europe/Amsterdam: CEST, +02:00)
        rc, out, err = schedctl(d, "run", "slow", "--at", "2026-03-29T07:00:00", "--wait", "--json")
        self.assertEqual(rc, 0, out + err)
        runs = json.loads(self.ok(d, "history", "slow", "--json"))
        self.assertEqual(len(runs), 2)
        for r in runs:
            self.assertEqual(r["scheduled_usec"], AT_USEC)
            self.assertEqual(r["trigger"], "manual")
            self.assertIn("scheduled=%d " % AT_USEC, r["output"])
        out = self.ok(d, "history", "slow", "--output")
        self.assertIn("scheduled=%d " % AT_USEC, out)

    def test_enable_disable_survive_restart(self):
        d = self.daemon()
        rc, out, err = schedctl(d, "disable", "ok")
        self.assertEqual(rc, 0, err)
        self.assertIn("Disabled ok", out)
        j = jobs_by_name(self.ok(d, "list", "--json"))["ok"]
        self.assertEqual((j["enabled"], j["enabled_override"], j["next_usec"]), (False, False, None))
        self.assertEqual(json.loads(self.ok(d, "disable", "fail", "--json")), {"job": "fail", "enabled": False})
        # a disabled job can still be run by hand
        self.ok(d, "run", "ok", "--wait")

        self.assertEqual(restart(d), 0)
        jobs = jobs_by_name(self.ok(d, "list", "--json"))
        self.assertFalse(jobs["ok"]["enabled"])
        self.assertFalse(jobs["fail"]["enabled"])
        self.assertTrue(jobs["slow"]["enabled"])
        row = next(l for l in self.ok(d, "list").splitlines() if " ok " in l)
        self.assertRegex(row, r"^-\s+-\s+")
        self.assertIn(" no ", row)

        # and a reload keeps them too
        self.ok(d, "reload")
        self.assertFalse(jobs_by_name(self.ok(d, "list", "--json"))["ok"]["enabled"])

        self.assertEqual(json.loads(self.ok(d, "enable", "ok", "--json")), {"job": "ok", "enabled": True})
        self.assertIn("Enabled fail", self.ok(d, "enable", "fail"))
        self.assertEqual(restart(d), 0)
        jobs = jobs_by_name(self.ok(d, "list", "--json"))
        self.assertTrue(jobs["ok"]["enabled"])
        self.assertTrue(jobs["fail"]["enabled"])
        self.assertIsNotNone(jobs["ok"]["next_usec"])
        self.assertEqual(jobs["ok"]["enabled_override"], True)

        rc, _, err = schedctl(d, "enable", "nope")
        self.assertEqual(rc, 1)
        rc, _, err = schedctl(d, "disable")
        self.assertEqual(rc, 2)
        d.stop()

    def test_history_filters(self):
        d = self.daemon()
        for name in ("ok", "fail", "ok", "slow"):
            schedctl(d, "run", name, "--wait")
        runs = json.loads(self.ok(d, "history", "--json"))
        self.assertEqual([r["job"] for r in runs], ["slow", "ok", "fail", "ok"])  # newest first
        self.assertEqual([r["id"] for r in runs], sorted([r["id"] for r in runs], reverse=True))
        for k in ("id", "job", "trigger", "attempt", "scheduled_usec", "started_usec", "finished_usec", "status",
                  "exit_code", "signal", "duration_usec", "message", "output", "pid"):
            self.assertIn(k, runs[0])
        self.assertEqual(len(json.loads(self.ok(d, "history", "-n", "2", "--json"))), 2)
        self.assertEqual([r["job"] for r in json.loads(self.ok(d, "history", "ok", "--json"))], ["ok", "ok"])
        failed = json.loads(self.ok(d, "history", "--status", "failed", "--json"))
        self.assertEqual([r["job"] for r in failed], ["fail"])
        since = runs[1]["started_usec"]
        self.assertEqual(len(json.loads(self.ok(d, "history", "--since", "1h", "--json"))), 4)
        # RFC 3339 with microseconds is cut to milliseconds; a start in the future selects nothing
        self.assertEqual(json.loads(self.ok(d, "history", "--since", "2099-01-01T00:00:00Z", "--json")), [])
        self.assertGreaterEqual(len(json.loads(self.ok(d, "history", "--since", "2000-01-01T00:00:00Z", "--json"))), 4)
        self.assertGreater(since, 0)

        out = self.ok(d, "history")
        lines = out.splitlines()
        for col in ("ID", "STARTED", "JOB", "TRIGGER", "STATUS", "DURATION", "MESSAGE"):
            self.assertIn(col, lines[0])
        self.assertEqual(len(lines), 5)
        self.assertIn("failed on purpose", out)
        for line in lines:
            self.assertEqual(line, line.rstrip())
        self.assertEqual(self.ok(d, "history", "long"), "No runs recorded.\n")

        for args in (("history", "--status", "bogus"), ("history", "-n", "0"), ("history", "-n", "x"),
                     ("history", "--since", "last tuesday"), ("history", "a", "b")):
            rc, _, err = schedctl(d, *args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))
        rc, _, err = schedctl(d, "history", "nope")
        self.assertEqual(rc, 1)
        d.stop()

    def test_reload(self):
        d = self.daemon()
        rc, out, err = schedctl(d, "reload")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "Reloaded the registry: 4 jobs.\n")
        d.write_registry(self.JOBS + job("extra", "ok.so", "@daily"))
        self.assertEqual(json.loads(self.ok(d, "reload", "--json")), {"jobs": 5, "plugins_changed": []})
        self.assertIn("extra", jobs_by_name(self.ok(d, "list", "--json")))

        # a broken registry is refused with its errors; the running one stays
        d.write_registry(self.JOBS + job("broken", "ok.so", "61 * * * *"))
        rc, out, err = schedctl(d, "reload")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("not taken", err)
        self.assertIn("registry.yaml:", err)
        rc, out, err = schedctl(d, "reload", "--json")
        self.assertEqual(rc, 1)
        r = json.loads(out)
        self.assertFalse(r["ok"])
        self.assertTrue(r["errors"])
        self.assertEqual(set(jobs_by_name(self.ok(d, "list", "--json"))), {"ok", "fail", "slow", "long", "extra"})
        d.stop()

    def test_help_and_usage(self):
        d = self.daemon()
        for cmd in ("list", "status", "run", "enable", "disable", "history", "reload", "check", "next"):
            rc, out, err = schedctl(d, cmd, "-h")
            self.assertEqual(rc, 0, err)
            self.assertIn("Usage: schedctl", out)
            if cmd not in ("check", "next"):
                self.assertIn(cmd, out.splitlines()[0])
        rc, out, _ = schedctl(d, "--help")
        self.assertEqual(rc, 0)
        for cmd in ("list", "status", "run", "enable", "disable", "history", "reload", "check", "next"):
            self.assertIn(cmd, out)
        for args in (("frobnicate",), ("list", "--bogus"), ("list", "extra"), ()):
            rc, _, err = schedctl(d, *args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))
        d.stop()

    def test_unreachable_exit_3(self):
        tmp = tempfile.mkdtemp(prefix="schedctl-test-")
        try:
            sock = os.path.join(tmp, "none.sock")
            for cmd in (["list"], ["status", "ok"], ["run", "ok", "--wait"], ["enable", "ok"], ["history"],
                        ["reload"], ["list", "--json"]):
                p = subprocess.run([SCHEDCTL, "--socket", sock] + cmd, capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn(sock, p.stderr)
                self.assertIn("systemctl status schedulerd", p.stderr)
            # a socket nobody listens on
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(sock)
            s.close()
            p = subprocess.run([SCHEDCTL, "--socket", sock, "list"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("refused", p.stderr)
            # the default socket comes from the registry given with --config
            reg = os.path.join(tmp, "r.yaml")
            with open(reg, "w") as f:
                f.write("scheduler:\n  control_socket: %s/from-registry.sock\njobs: []\n" % tmp)
            p = subprocess.run([SCHEDCTL, "--config", reg, "list"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("from-registry.sock", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_colour_only_on_terminal_and_never_with_no_color(self):
        d = self.daemon()
        schedctl(d, "run", "fail", "--wait")

        def on_pty(env):
            master, slave = pty.openpty()
            e = dict(os.environ, TERM="xterm", **env)
            if "NO_COLOR" not in env:
                e.pop("NO_COLOR", None)
            p = subprocess.Popen([SCHEDCTL, "--socket", d.sock, "list"], stdout=slave, stderr=slave, env=e)
            os.close(slave)
            buf = b""
            while True:
                r, _, _ = select.select([master], [], [], 10)
                if not r:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
            os.close(master)
            self.assertEqual(p.wait(10), 0, buf)
            return buf.decode()

        out = on_pty({})
        self.assertIn("\033[", out)
        self.assertIn("\033[0;31mfailed", out)
        self.assertNotIn("\033[", on_pty({"NO_COLOR": "1"}))
        self.assertNotIn("\033[", on_pty({"NO_COLOR": ""}))
        d.stop()


class Permissions(Base):
    def test_unprivileged_user_reads_but_cannot_change(self):
        if not shutil.which("setpriv") or os.geteuid() != 0:
            self.skipTest("needs root and setpriv")
        admin = next((g for g in ("users", "adm", "staff") if self._group(g)), None)
        if not admin:
            self.skipTest("no spare group to act as admin_group")
        gid = grp.getgrnam(admin).gr_gid
        d = self.daemon(scheduler="  admin_group: %s\n" % admin)
        os.chmod(d.tmp, 0o755)
        self.assertEqual(os.stat(d.sock).st_gid, gid)
        self.assertEqual(os.stat(d.sock).st_mode & 0o777, 0o660)
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        member = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--groups=%d" % gid]
        probe = subprocess.run(nobody + [SCHEDCTL, "--help"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            self.skipTest("nobody cannot execute %s (build directory not world-accessible)" % SCHEDCTL)

        # mode 0660: outside the group, the socket cannot be reached at all
        rc, _, err = schedctl(d, "list", prefix=nobody)
        self.assertEqual(rc, 3, err)
        self.assertIn("group \"%s\"" % admin, err)

        # an operator may open the socket to everybody for reading; changing still needs the group
        os.chmod(d.sock, 0o666)
        for args in (("list",), ("list", "--json"), ("status", "ok"), ("history",), ("history", "--json")):
            rc, out, err = schedctl(d, *args, prefix=nobody)
            self.assertEqual(rc, 0, "%s: %s" % (args, err))
        for args in (("run", "ok"), ("run", "ok", "--wait"), ("enable", "ok"), ("disable", "ok"), ("reload",)):
            rc, out, err = schedctl(d, *args, prefix=nobody)
            self.assertEqual(rc, 1, "%s: %s%s" % (args, out, err))
            self.assertIn("needs root or membership of group \"%s\"" % admin, err)
        self.assertEqual(d.runs("ok"), [])
        self.assertTrue(jobs_by_name(self.ok(d, "list", "--json"))["ok"]["enabled"])

        # a member of admin_group may change
        rc, out, err = schedctl(d, "disable", "ok", prefix=member)
        self.assertEqual(rc, 0, err)
        rc, out, err = schedctl(d, "run", "ok", "--wait", prefix=member)
        self.assertEqual(rc, 0, err)
        self.assertFalse(jobs_by_name(self.ok(d, "list", "--json"))["ok"]["enabled"])
        d.stop()

    @staticmethod
    def _group(name):
        try:
            grp.getgrnam(name)
            return True
        except KeyError:
            return False


class Robustness(Base):
    def raw(self, d, data, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(d.sock)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        try:
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except ConnectionResetError:
            pass
        s.close()
        return json.loads(buf) if buf else None

    def assert_answering(self, d):
        self.assertIsNone(d.proc.poll(), "daemon died; log:\n" + d.log())
        self.assertEqual(set(jobs_by_name(self.ok(d, "list", "--json"))), {"ok", "fail", "slow", "long"})

    def test_malformed_and_oversized_requests(self):
        d = self.daemon()
        for line in (b"not json\n", b"[1,2]\n", b"{}\n", b"{\"command\": 7}\n", b"{\"command\":\"list\",\"command\":\"list\"}\n",
                     b"{\"command\":\"frobnicate\"}\n", b"{\"command\":\"enable\"}\n", b"{\"command\":\"history\",\"since\":-5}\n",
                     b"\xff\xfe\x00garbage\n", b"{\"command\":\"run\",\"job\":\"ok\",\"at\":\"x\"}\n"):
            r = self.raw(d, line)
            self.assertIsNotNone(r, line)
            self.assertFalse(r["ok"], line)
            self.assertTrue(r["error"], line)
        # half a line, then the peer goes away
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        s.sendall(b'{"command":"li')
        s.close()
        # an oversized line: an error reply or a closed connection, not a stuck daemon
        r = self.raw(d, b"{\"command\":\"list\",\"pad\":\"" + b"x" * (256 * 1024) + b"\"}\n")
        if r is not None:
            self.assertEqual(r["errno"], "E2BIG")
        # several requests on one connection, the second without a newline until later
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(d.sock)
        s.sendall(b'{"command":"list"}\n{"command":"sta')
        f = s.makefile("rb")
        self.assertTrue(json.loads(f.readline())["ok"])
        s.sendall(b'tus","job":"ok"}\n')
        self.assertEqual(json.loads(f.readline())["job"]["name"], "ok")
        f.close()
        s.close()
        self.assert_answering(d)
        d.stop()

    def test_output_that_is_not_utf8(self):
        if not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")):
            self.skipTest("needs a C compiler")
        d = Daemon(job("bytes", "bytes.so", "@yearly"))
        self.daemons.append(d)
        plugdir = own_plugin_dir(d)
        # output and message with invalid UTF-8, and an output tail cut inside a character
        compile_plugin(os.path.join(plugdir, "bytes.so"), r"""#include <stdio.h>
#include <schedulerd/job.h>
static sched_job_result bytes_run(sched_job_ctx *ctx) {
        for (int i = 0; i < 3000; i++)
                fputs("\xc3\xa9", stdout);
        fputs("caf\xc3 \xff\xfe end\n", stdout);
        sched_job_set_message(ctx, "bad \xe9 byte");
        return SCHED_JOB_OK;
}
SCHEDULERD_JOB_DEFINE(.name = "bytes", .description = "not UTF-8", .run = bytes_run);
""", ["-I" + os.path.join(SRCDIR, "include")])
        d.write_registry(job("bytes", "bytes.so", "@yearly"))
        d.start()
        rc, out, err = schedctl(d, "run", "bytes", "--wait", "--json")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(json.loads(out)["message"], "bad \ufffd byte")
        runs = json.loads(self.ok(d, "history", "--json"))
        self.assertEqual(len(runs), 1)
        self.assertTrue(runs[0]["output"].endswith("caf\ufffd \ufffd\ufffd end\n"), runs[0]["output"][-40:])
        self.assertIn("bad \ufffd byte", self.ok(d, "status", "bytes"))
        d.stop()

    def test_500_simultaneous_connections(self):
        d = self.daemon()
        socks = []
        try:
            for _ in range(500):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                socks.append(s)
                s.connect(d.sock)  # blocking: waits while the listen backlog is full
                s.settimeout(20)
            for s in socks:
                try:
                    s.sendall(b'{"command":"list"}\n')
                except (BrokenPipeError, ConnectionResetError):
                    pass
            answered = busy = closed = 0
            for s in socks:
                try:
                    line = s.makefile("rb").readline()
                except (ConnectionResetError, socket.timeout):
                    line = b""
                if not line:
                    closed += 1
                    continue
                r = json.loads(line)
                if r["ok"]:
                    answered += 1
                else:
                    self.assertEqual(r["errno"], "EBUSY", r)
                    busy += 1
            self.assertEqual(answered + busy + closed, 500)
            self.assertGreater(answered, 0)
            # while they are all still open, the daemon is alive
            self.assertIsNone(d.proc.poll())
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: schedctl(d, "list", "--json")[0] == 0, timeout=20, what="daemon answering again")
        self.assert_answering(d)
        d.stop()


def run_make(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run([os.environ.get("MAKE", "make"), "-C", BUILDDIR] + list(args), capture_output=True,
                          text=True, env=env, timeout=600)


class Install(unittest.TestCase):
    """make install DESTDIR=...: what is installed, the unit, bash completion, an out-of-tree plugin."""

    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="schedulerd-destdir-")
        p = run_make("install", "DESTDIR=" + cls.dest)
        if p.returncode != 0:
            shutil.rmtree(cls.dest, ignore_errors=True)
            raise AssertionError("make install failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])

        def find(pattern):
            hits = glob.glob(os.path.join(cls.dest, "**", pattern), recursive=True)
            return hits[0] if hits else None
        cls.find = staticmethod(find)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.cleanup()
            shutil.rmtree(d.tmp, ignore_errors=True)

    def test_everything_installed(self):
        for pattern in ("bin/schedctl", "sbin/schedulerd", "jobs/hello.so", "include/schedulerd/job.h",
                        "pkgconfig/schedulerd-job.pc", "system/schedulerd.service", "schedulerd/schedulerd.yaml",
                        "man1/schedctl.1", "man5/schedulerd.yaml.5", "man8/schedulerd.8",
                        "bash-completion/completions/schedctl"):
            self.assertIsNotNone(self.find(pattern), "%s not installed under %s" % (pattern, self.dest))
        unit = read(self.find("system/schedulerd.service"))
        self.assertNotRegex(unit.split("[Unit]")[1], r"@[a-z]+@")
        for key in ("Type=notify", "ExecReload=", "WatchdogSec=", "Restart=on-failure", "StateDirectory=",
                    "RuntimeDirectory=", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=",
                    "PrivateTmp=yes", "RestrictAddressFamilies=", "SystemCallArchitectures=native"):
            self.assertIn(key, unit)
        for af in ("AF_INET", "AF_INET6", "AF_UNIX"):
            self.assertIn(af, unit)
        self.assertNotIn("PrivateNetwork=yes", unit)

    def test_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze not available")
        tmp = tempfile.mkdtemp(prefix="schedulerd-unit-")
        try:
            unit = read(self.find("system/schedulerd.service"))
            # verify wants the executables to exist: point at the built ones
            sbin = os.path.dirname(self.find("sbin/schedulerd")).replace(self.dest, "", 1)
            unit = unit.replace(sbin + "/schedulerd", os.path.join(BUILDDIR, "schedulerd"))
            bindir = os.path.dirname(self.find("bin/schedctl")).replace(self.dest, "", 1)
            unit = unit.replace(bindir + "/schedctl", os.path.join(BUILDDIR, "schedctl"))
            path = os.path.join(tmp, "schedulerd.service")
            with open(path, "w") as f:
                f.write(unit)
            p = subprocess.run(["systemd-analyze", "verify", "--man=no", path], capture_output=True, text=True,
                               timeout=60, cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertNotIn("schedulerd.service:", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_out_of_tree_plugin_loaded_after_reload(self):
        if not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")) or not shutil.which("pkg-config"):
            self.skipTest("needs a C compiler and pkg-config")
        pc = self.find("pkgconfig/schedulerd-job.pc")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=self.dest,
                   PKG_CONFIG_LIBDIR=os.path.dirname(pc))
        cflags = subprocess.run(["pkg-config", "--cflags", "schedulerd-job"], capture_output=True, text=True, env=env,
                                check=True).stdout.split()
        self.assertTrue(any(f.startswith("-I" + self.dest) for f in cflags), cflags)

        d = Daemon(job("ok", "ok.so", "@yearly"))
        self.daemons.append(d)
        plugdir = own_plugin_dir(d)
        d.write_registry(job("ok", "ok.so", "@yearly"))
        d.start()

        compile_plugin(os.path.join(plugdir, "outside.so"), """#include <schedulerd/job.h>
static sched_job_result outside_run(sched_job_ctx *ctx) {
        sched_job_set_message(ctx, "built outside the tree");
        return SCHED_JOB_OK;
}
SCHEDULERD_JOB_DEFINE(.name = "outside", .description = "an out-of-tree job", .run = outside_run);
""", cflags)

        d.write_registry(job("ok", "ok.so", "@yearly") + job("outside", "outside.so", "@yearly"))
        rc, out, err = schedctl(d, "reload")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("2 jobs", out)
        rc, out, err = schedctl(d, "run", "outside", "--wait", "--json")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(json.loads(out)["message"], "built outside the tree")
        self.assertEqual(d.stop(), 0)

    def test_bash_completion_offers_job_names(self):
        if not shutil.which("bash"):
            self.skipTest("no bash")
        d = Daemon(job("alpha", "ok.so", "@yearly") + job("beta-2", "ok.so", "@yearly"))
        self.daemons.append(d)
        d.start()
        comp = self.find("bash-completion/completions/schedctl")

        def complete(*words):
            script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); '
                      '_schedctl; printf "%s\\n" "${COMPREPLY[@]}"')
            p = subprocess.run(["bash", "-c", script, "bash", comp] + list(words), capture_output=True, text=True,
                               timeout=60, env=dict(os.environ, PATH=BUILDDIR + os.pathsep + os.environ["PATH"]))
            self.assertEqual(p.returncode, 0, p.stderr)
            return sorted(x for x in p.stdout.splitlines() if x)

        self.assertEqual(complete("schedctl", "--socket", d.sock, "status", ""), ["alpha", "beta-2"])
        self.assertEqual(complete("schedctl", "--socket", d.sock, "run", "b"), ["beta-2"])
        self.assertIn("history", complete("schedctl", "h"))
        self.assertIn("--wait", complete("schedctl", "run", "alpha", "--w"))
        d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
