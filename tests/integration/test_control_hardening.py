#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The control socket under abuse (issue 13, items 3, 4, 5, 9, 10): where it is made, who may use
it after a reload, large replies while jobs fire, many held connections, and job text that
would drive the operator's terminal."""
import grp
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SCHEDCTL, DaemonTestCase, job, wait_for  # noqa: E402

NOBODY = 65534
# the python of the test may live where nobody cannot read it (/root/.pyenv)
PYTHON_FOR_NOBODY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
NOGROUP = grp.getgrnam("nogroup").gr_gid
ADM = grp.getgrnam("adm").gr_gid

# A client run as nobody (group nogroup): sends each request of argv[2] (JSON lines) on one
# connection to argv[1] and prints one JSON object: the replies, or the errno of connect().
NOBODY_CLIENT = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect_errno": e.errno})); sys.exit(0)
out = []
f = s.makefile("rb")
for line in sys.argv[2].splitlines():
    s.sendall(line.encode() + b"\n")
    out.append(json.loads(f.readline()))
print(json.dumps({"replies": out}))
'''


def drop_to_nobody():
    os.setgroups([])
    os.setgid(NOGROUP)
    os.setuid(NOBODY)


def as_nobody(sock, *reqs):
    p = subprocess.run([PYTHON_FOR_NOBODY, "-c", NOBODY_CLIENT, sock, "\n".join(json.dumps(r) for r in reqs)],
                       preexec_fn=drop_to_nobody, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("nobody client failed: %s" % p.stderr)
    return json.loads(p.stdout)


def schedctl(d, *args, timeout=120):
    p = subprocess.run([SCHEDCTL, "--socket", d.sock, "--config", d.config] + list(args), capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class SocketSetup(DaemonTestCase):
    """Item 3: the socket's directory must be root's alone; the socket is made 0660."""

    def test_socket_directory_must_be_roots(self):
        d = self.daemon(job("a", "ok.so", "@daily"))
        run_dir = os.path.join(d.tmp, "run")
        os.mkdir(run_dir, 0o755)
        d.sock = os.path.join(run_dir, "control.sock")
        d.write_registry(job("a", "ok.so", "@daily"))

        os.chown(run_dir, NOBODY, NOGROUP)  # its owner could swap the socket for a link
        d.start(wait_ready=False)
        self.assertNotEqual(d.proc.wait(15), 0)
        self.assertIn("Refusing control socket %s: its directory %s is owned by uid 65534" % (d.sock, run_dir), d.log())
        self.assertFalse(os.path.exists(d.sock))

        os.chown(run_dir, 0, 0)
        os.chmod(run_dir, 0o777)  # anyone could
        d.start(wait_ready=False)
        self.assertNotEqual(d.proc.wait(15), 0)
        self.assertIn("with mode 0777", d.log())

        os.chmod(run_dir, 0o755)
        d.start()
        st = os.lstat(d.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertTrue(d.ctl({"command": "list"})["ok"])
        self.assertEqual(d.stop(), 0)


class AdminGroupReload(DaemonTestCase):
    """Item 4: a reload that changes admin_group takes the old group's rights away."""

    def test_new_group_applies_on_reload(self):
        d = self.daemon(job("a", "ok.so", "@daily"), "  admin_group: nogroup\n")
        os.chmod(d.tmp, 0o755)  # nobody may reach the socket; the socket decides
        d.start()
        self.assertEqual(os.stat(d.sock).st_gid, NOGROUP)
        r = as_nobody(d.sock, {"command": "disable", "job": "a"})
        self.assertTrue(r["replies"][0]["ok"], r)

        d.write_registry(job("a", "ok.so", "@daily"), "  admin_group: adm\n")
        self.assertTrue(d.ctl({"command": "reload"})["ok"])
        self.assertEqual(os.stat(d.sock).st_gid, ADM)
        r = as_nobody(d.sock, {"command": "enable", "job": "a"})
        self.assertEqual(r.get("connect_errno"), 13, r)  # EACCES: no longer in the socket's group
        self.assertIn("group nogroup no longer has rights; adm does", d.log())
        self.assertEqual(d.stop(), 0)


class Connections(DaemonTestCase):
    """Item 10: one user cannot take every connection, and a trickle does not keep one."""

    def test_per_uid_cap_and_root_still_served(self):
        d = self.daemon(job("a", "ok.so", "@daily"), "  admin_group: nogroup\n")
        os.chmod(d.tmp, 0o755)
        d.start()
        # nobody (a group member) opens 300 connections and holds them
        holder = subprocess.Popen([PYTHON_FOR_NOBODY, "-c", r'''
import socket, sys, time, json
held, refused = [], 0
for i in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.settimeout(0.5)
    try:
        data = s.recv(4096)  # a refused connection gets one line and EOF
        refused += 1 if b"EBUSY" in data else 0
        s.close()
    except socket.timeout:
        s.sendall(b"{")
        held.append(s)
print(json.dumps({"held": len(held), "refused": refused}), flush=True)
sys.stdin.read()
''', d.sock], preexec_fn=drop_to_nobody, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            counts = json.loads(holder.stdout.readline())
            self.assertEqual(counts, {"held": 16, "refused": 284})
            self.assertIn("Refused a control connection of uid 65534: it holds 16 already", d.log())
            # root, and nobody's other requests elsewhere, are still served
            self.assertTrue(d.ctl({"command": "list"})["ok"])
            rc, out, err = schedctl(d, "list")
            self.assertEqual(rc, 0, err)
        finally:
            holder.kill()
            holder.wait()
            holder.stdin.close()
            holder.stdout.close()
        self.assertEqual(d.stop(), 0)

    def test_out_of_descriptors_the_daemon_waits_rather_than_spins(self):
        """The daemon's descriptors run out (its RLIMIT_NOFILE lowered under it) while clients
        connect: accept() fails with EMFILE and the peers stay in the backlog. The listening socket
        stays readable; the daemon used to spin on it at a full core. It pauses accepting instead,
        says so once, and serves again once descriptors are free."""
        d = self.daemon(job("a", "ok.so", "@daily"))
        d.start()
        pid = d.proc.pid
        n = len(os.listdir("/proc/%d/fd" % pid))
        soft = subprocess.run(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings", "--output=SOFT"],
                              check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:" % (n + 2)], check=True)  # the soft limit
        socks = []
        try:
            for _ in range(8):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(d.sock)
                socks.append(s)
            wait_for(lambda: "Cannot accept a control connection" in d.log(), timeout=10, what="accept to fail")

            def cpu():
                with open("/proc/%d/stat" % pid) as f:
                    st = f.read().rsplit(")", 1)[1].split()
                return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
            c0 = cpu()
            time.sleep(2)
            used = cpu() - c0
            self.assertLess(used, 0.5, "the daemon used %.2f s of CPU in 2 s waiting for descriptors" % used)
            self.assertEqual(d.log().count("Cannot accept a control connection"), 1, "said once")
        finally:
            for s in socks:
                s.close()
            subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%s:" % soft], check=True)
        st = d.ctl({"command": "status", "job": "a"})
        self.assertTrue(st.get("ok"), st)
        self.assertEqual(d.stop(), 0)

    def test_request_has_absolute_deadline(self):
        d = self.daemon(job("a", "ok.so", "@daily"))
        d.start()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        s.settimeout(1)
        closed_after = None
        # a byte every second never completes a request: before, each byte restarted the idle
        # timer and the connection was kept forever
        for i in range(70):
            try:
                s.sendall(b" ")
                if s.recv(1) == b"":
                    closed_after = i
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = i
                break
        s.close()
        self.assertIsNotNone(closed_after, "a connection trickling bytes was kept for 70 s")
        self.assertEqual(d.stop(), 0)


class PipelinedRequests(DaemonTestCase):
    def test_a_request_behind_run_wait_is_served_after_the_run_ended(self):
        """"run, wait" and "reload" in one write: the reload is served once the run's reply went,
        and not from inside the ending of the run (it used to be: the reload freed the job's
        state the run's ending went on to use, and counted the ending run as running again,
        so the job looked running for ever and its next fires were skipped)."""
        d = self.daemon(job("short", "slow.so", "@yearly", params={"duration": "100ms"}))
        d.start()
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(d.sock)
            s.sendall(b'{"command":"run","job":"short","wait":true}\n{"command":"reload"}\n')
            f = s.makefile("rb")
            replies = [json.loads(f.readline()), json.loads(f.readline())]
            s.close()
            self.assertEqual(replies[0].get("status"), "succeeded", replies)
            self.assertTrue(replies[1].get("ok"), replies)
            st = d.ctl({"command": "status", "job": "short"})
            self.assertFalse(st["job"]["running"], st)
        self.assertEqual([r["status"] for r in d.runs("short")], ["succeeded"] * 3)
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.stop(), 0)


class LargeReplies(DaemonTestCase):
    """Item 5: a list of 100,000 jobs comes whole, and an every-second job fires each second
    while it is served."""

    N = 100000

    def test_list_of_100000_jobs_while_firing(self):
        jobs = [job("tick", "ok.so", "@every 1s")]
        jobs += ["  - {name: j%06d, plugin: ok.so, schedule: \"@daily\"}\n" % i for i in range(self.N)]
        d = self.daemon("".join(jobs))
        d.start(wait_ready=False)
        d.wait_notify("READY=1", timeout=300)
        d.wait_runs("tick", lambda rs: len(rs) >= 3, timeout=30)

        t0 = time.monotonic()
        rc, out, err = schedctl(d, "list", "--json", timeout=600)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, err[-2000:])
        reply = json.loads(out)
        names = [j["name"] for j in reply["jobs"]]
        self.assertEqual(len(names), self.N + 1)
        self.assertEqual(names, sorted(names))
        self.assertFalse(reply["more"])
        with open("/proc/%d/status" % d.proc.pid) as f:
            rss = [l.split()[1] for l in f if l.startswith(("VmHWM", "VmRSS"))]
        t_list_end = time.time()
        print("list of %d jobs: %d bytes of JSON in %.1f s; daemon VmHWM %s kB, VmRSS %s kB"
              % (self.N + 1, len(out), took, rss[0], rss[1]), file=sys.stderr)

        # the tick's fires during the list, as its runs recorded them: one each second, none
        # skipped and none missing (a stalled loop fires once, late, for the missed seconds)
        d.wait_runs("tick", lambda rs: rs[-1]["scheduled_usec"] / 1e6 > t_list_end + 2, timeout=30)
        ticks = d.runs("tick")
        start = t_list_end - took
        during = [r for r in ticks if start - 1 <= r["scheduled_usec"] / 1e6 <= t_list_end + 1]
        self.assertGreaterEqual(len(during), int(took))
        # (an @every instant maps from the boottime clock to the wall clock: +-1 us)
        gaps = [(a["scheduled_usec"], b["scheduled_usec"]) for a, b in zip(during, during[1:])
                if abs(b["scheduled_usec"] - a["scheduled_usec"] - 1000000) > 1000]
        self.assertEqual(gaps, [])
        self.assertEqual([r for r in during if r["status"] != "succeeded"], [])

        # a page of it
        page = d.ctl({"command": "list", "after": "j000010", "limit": 3})
        self.assertEqual([j["name"] for j in page["jobs"]], ["j000011", "j000012", "j000013"])
        self.assertTrue(page["more"])
        self.assertEqual(d.stop(timeout=60), 0)

    def test_history_limit_is_capped(self):
        d = self.daemon(job("a", "ok.so", "@daily"))
        d.start()
        r = d.ctl({"command": "history", "limit": 0})
        self.assertFalse(r["ok"])
        self.assertIn("from 1 to 10000", r["error"])
        self.assertFalse(d.ctl({"command": "history", "limit": 10001})["ok"])
        self.assertTrue(d.ctl({"command": "history", "limit": 10000})["ok"])
        self.assertEqual(d.stop(), 0)


class FakeDaemon:
    """A socket that answers as schedulerd would and records the commands it was sent."""

    def __init__(self, answers):
        self.tmp = tempfile.mkdtemp(prefix="schedctl-fake-")
        self.sock = os.path.join(self.tmp, "control.sock")
        self.config = os.path.join(self.tmp, "none.yaml")
        self.answers, self.commands = answers, []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.sock)
        self.srv.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with c, c.makefile("rb") as f:
                for line in f:
                    cmd = json.loads(line)["command"]
                    self.commands.append(cmd)
                    c.sendall(json.dumps(self.answers[cmd]).encode() + b"\n")


class Status(unittest.TestCase):
    def test_status_asks_for_the_job_only(self):
        """status with runs took a list of every job for their zones: with 1,000,000 jobs each
        status stalled the daemon."""
        run = {"id": 7, "job": "a", "trigger": "schedule", "attempt": 0, "started_usec": 1700000000000000,
               "status": "succeeded", "duration_usec": 1000, "message": "ok", "output": ""}
        j = {"name": "a", "schedule": "@daily", "timezone": "Europe/Berlin", "enabled": True, "state": "idle",
             "next_usec": None, "last_usec": None, "runs": 1, "failures": 0, "last_runs": [run]}
        fake = FakeDaemon({"status": {"ok": True, "job": j}, "list": {"ok": True, "jobs": [j]}})
        p = subprocess.run([SCHEDCTL, "--socket", fake.sock, "--config", fake.config, "status", "a"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("CET", p.stdout)  # the run's time in the job's zone
        self.assertEqual(fake.commands, ["status"])


class JobText(DaemonTestCase):
    """Item 9: what a job writes reaches people as text, never as terminal commands, and sets a
    log level only through sched_job_log()."""

    # a title change, a screen clear, a hyperlink, the 8-bit CSI, a carriage return, and a line
    # that looks like an emergency
    TEXT = r'"\e]0;pwned\a\e[2J\e]8;;http://x\e\\link\u009b2J\rX\n<0>forged emergency"'
    RAW = (b"\x1b", b"\x07", b"\xc2\x9b", b"\r")

    def assertClean(self, what, data):
        for b in self.RAW:
            self.assertNotIn(b, data, "%s holds %r: %r" % (what, b, data[:400]))

    def test_output_messages_and_log_escaped(self):
        d = self.daemon(job("echo", "echo.so", "@yearly", description=r'"\e[2Jcleared"', params={"text": self.TEXT}))
        d.start()
        rc, out, err = schedctl(d, "run", "echo", "--wait")
        self.assertEqual(rc, 0, err)
        self.assertClean("run --wait", out)
        self.assertIn(b"\\x1B]0;pwned\\x07", out)
        rc, out, err = schedctl(d, "history", "echo", "--output")
        self.assertEqual(rc, 0, err)
        self.assertClean("history --output", out)
        self.assertIn(b"\\u009B2J", out)
        self.assertIn(b"\n<0>forged emergency\n", out)  # output lines stay lines
        rc, out, err = schedctl(d, "status", "echo")
        self.assertEqual(rc, 0, err)
        self.assertClean("status", out)
        self.assertIn(b"\\x1B[2Jcleared", out)
        # --json is for programs, but lands on terminals too: escapes only, and still the text
        rc, out, err = schedctl(d, "history", "echo", "--output", "--json")
        self.assertEqual(rc, 0, err)
        self.assertClean("history --json", out)
        self.assertIn("\x9b2J", json.loads(out)[0]["output"])

        self.assertEqual(d.stop(), 0)
        with open(d.log_path, "rb") as f:
            log = f.read()
        self.assertClean("the daemon's log", log)
        # output that looks like a level is output: info, never emergency
        self.assertRegex(log, rb"<info> echo\[run \d+\]: <0>forged emergency\n")
        self.assertNotIn(b"<emerg>", log)
        # sched_job_log() sets the level; a newline in its text does not start a line
        self.assertRegex(log, rb"<notice> echo\[run \d+\]: logged: \\x1B\]0;pwned.*\\x0A<0>forged emergency\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
