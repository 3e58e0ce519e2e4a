# SPDX-License-Identifier: MIT
"""Drives the real schedulerd binary for integration tests.

A Daemon gets a temporary directory with its registry, state dir, control socket and a
NOTIFY_SOCKET the test reads, so READY=1 / STOPPING=1 are observed as systemd would.
Paths come from the environment make check sets: top_builddir, top_srcdir, TEST_PLUGIN_DIR.
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

BUILDDIR = os.environ.get("top_builddir", os.getcwd())
SRCDIR = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", ".."))
PLUGINS = os.environ.get("TEST_PLUGIN_DIR", os.path.join(BUILDDIR, "tests", "plugins", ".libs"))
SCHEDULERD = os.path.join(BUILDDIR, "schedulerd")
SCHEDCTL = os.path.join(BUILDDIR, "schedctl")
# SCHEDULERD_TEST_ISOLATION=worker: every job() of a test is `isolation: worker` unless it says
# otherwise, so the policy and fault tests run in both isolation modes (Makefile.am runs them so)
ISOLATION = os.environ.get("SCHEDULERD_TEST_ISOLATION", "")


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


class Daemon:
    def __init__(self, jobs_yaml, scheduler_yaml="", tmp=None, plugin_dir=PLUGINS):
        self.tmp = tmp or tempfile.mkdtemp(prefix="schedulerd-test-")
        self.plugin_dir = plugin_dir
        self.state = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "control.sock")
        self.config = os.path.join(self.tmp, "registry.yaml")
        self.log_path = os.path.join(self.tmp, "daemon.log")
        self.proc = None
        self.notify = None
        self.messages = []
        self.write_registry(jobs_yaml, scheduler_yaml)

    def write_registry(self, jobs_yaml, scheduler_yaml=""):
        if "shutdown_grace" not in scheduler_yaml:
            scheduler_yaml += "  shutdown_grace: 3s\n"
        text = "scheduler:\n  plugin_dir: %s\n  state_dir: %s\n  control_socket: %s\n%s\njobs:\n%s\n" % (
            self.plugin_dir, self.state, self.sock, scheduler_yaml, jobs_yaml)
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.config + ".tmp", self.config)

    def start(self, wait_ready=True, extra_env=None):
        npath = os.path.join(self.tmp, "notify.sock")
        if os.path.exists(npath):
            os.unlink(npath)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(npath)
        self.notify.settimeout(0.05)
        self.messages = []  # a restart must not see the previous process's READY=1
        # drain the socket continuously, as PID 1 does: sd_notify() blocks when its queue is full
        self.notify_lock = threading.Lock()
        self.notify_thread = threading.Thread(target=self._notify_reader, args=(self.notify,), daemon=True)
        self.notify_thread.start()
        env = dict(os.environ, NOTIFY_SOCKET=npath)
        env.pop("JOURNAL_STREAM", None)
        if extra_env:
            env.update(extra_env)
        if getattr(self, "logf", None):
            self.logf.close()
        self.logf = open(self.log_path, "ab")
        # SCHEDULERD_VALGRIND="valgrind --flags...": run the daemon under a checker
        prefix = os.environ.get("SCHEDULERD_VALGRIND", "").split()
        # self.cgroup: a cgroup v2 directory the daemon starts in (test_run_cgroups.py)
        if getattr(self, "cgroup", None):
            prefix = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.cgroup] + prefix
        self.proc = subprocess.Popen(prefix + [SCHEDULERD, "--config", self.config], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        if wait_ready:
            self.wait_notify("READY=1")
        return self

    def _notify_reader(self, sock):
        while True:
            try:
                data = sock.recv(4096)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            with self.notify_lock:
                self.messages.extend(data.decode().split("\n"))

    def read_notify(self):
        pass  # the reader thread collects messages

    def wait_notify(self, line, timeout=10.0):
        def seen():
            self.read_notify()
            if self.proc.poll() is not None and line not in self.messages:
                raise AssertionError("daemon exited (%s) before %s; log:\n%s" % (self.proc.returncode, line, self.log()))
            return line in self.messages
        wait_for(seen, timeout, what=line)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not stop within %ss of SIGTERM" % timeout)
        rc = self.proc.returncode if self.proc else None
        if self.notify:
            time.sleep(0.1)  # let the reader take the last datagrams
            self.notify.close()
            self.notify = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        if self.notify:
            self.notify.close()
            self.notify = None

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.notify:
            self.notify.close()
            self.notify = None
        if getattr(self, "logf", None):
            self.logf.close()
        # runs the daemon left behind in their own process groups (after kill -9)
        stale = "SELECT pid FROM runs WHERE pid > 0 AND status IN ('running', 'interrupted')"
        for r in self.rows(stale) if os.path.exists(self.db_path()) else []:
            try:
                os.killpg(r["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # --- control socket ---
    def ctl(self, req, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)

    # --- history ---
    def db_path(self):
        return os.path.join(self.state, "history.db")

    def rows(self, sql, args=()):
        con = sqlite3.connect(self.db_path(), timeout=10)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def runs(self, job=None):
        if job:
            return self.rows("SELECT * FROM runs WHERE job = ? ORDER BY id", (job,))
        return self.rows("SELECT * FROM runs ORDER BY id")

    def wait_runs(self, job, pred, timeout=15, what=None):
        return wait_for(lambda: (lambda rs: rs if pred(rs) else None)(self.runs(job)), timeout,
                        what=what or ("runs of %s" % job))


def job(name, plugin, schedule, **kw):
    lines = ["  - name: %s" % name, "    plugin: %s" % plugin, '    schedule: "%s"' % schedule]
    params = kw.pop("params", None)
    retry = kw.pop("retry", None)
    if ISOLATION and "isolation" not in kw and "command" not in kw:
        kw["isolation"] = ISOLATION
    for k, v in kw.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append("    %s: %s" % (k, v))
    if retry:
        lines.append("    retry: { %s }" % ", ".join("%s: %s" % kv for kv in retry.items()))
    if params:
        lines.append("    params:")
        for k, v in params.items():
            lines.append("      %s: %s" % (k, v))
    return "\n".join(lines) + "\n"


class DaemonTestCase(unittest.TestCase):
    """A test case whose daemons are killed (with any runs they left) however the test ends."""

    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.cleanup()

    def daemon(self, jobs, scheduler=""):
        d = Daemon(jobs, scheduler)
        self.daemons.append(d)
        return d
