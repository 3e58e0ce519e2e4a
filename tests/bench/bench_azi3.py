# SPDX-License-Identifier: MIT
"""Benchmarks of the azi-3 jobs (issue 7, figure 6), driven through the real daemon.

One schedulerd with the azi-3 plugins (disabled, so only manual runs happen), the fake Megazord
(tests/fakes/megazord.py) and fauxqs (tests/fakes/fauxqs-server.js), all started here on
loopback and stopped at the end. Every run is `run` with `at` and `wait` on the control socket,
exactly what `schedctl run --wait --at` does, so a monitored day passes in one sitting:

  1. monitoring-scheduler at A over N rules: creates N sessions (subscribe + replay each);
  2. monitoring-scheduler at A+1m, +2m, +3m: the every-minute run with every session there;
  3. window-expiration at A+5m, +6m, +7m: N open sessions, nothing due;
  4. sqs-consumer draining M pre-loaded messages (some duplicated), run after run;
  5. window-expiration at A+3h: every current window ran out, N alarms posted;
  6. window-expiration after B: N more alarms, N sessions completed and unsubscribed.

A run's time is finished_usec - started_usec of its history.db row (fork to reaped); its CPU is
the growth of the daemon's cutime+cstime across the run (the run is the only child reaped then);
its peak RSS is VmHWM of the run's process, sampled from /proc every 10 ms while it lives.
Megazord requests are counted by the fake, per route.
"""
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import speed_probe

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", ".."))
FAKES = os.path.join(SRCDIR, "tests", "fakes")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
S, M, H = 1000000, 60 * 1000000, 3600 * 1000000

JOBS = ("monitoring-scheduler", "window-expiration", "sqs-consumer")
ZONE = "Europe/Amsterdam"
# the monitored day: 07:00-22:00 in Amsterdam on a summer day (CEST), 2 h windows
A = int(datetime(2026, 6, 10, 5, 0, tzinfo=timezone.utc).timestamp()) * S
B = int(datetime(2026, 6, 10, 20, 0, tzinfo=timezone.utc).timestamp()) * S
W = 2 * H


def iso(t):
    dt = datetime.fromtimestamp(t // S, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t % S // 1000)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def rnd(x, n=3):
    return None if x is None else round(x, n)


# --- the peers -------------------------------------------------------------------------------

def start_peer(argv, what):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line:
        p.wait()
        raise RuntimeError("%s exited (%s) before it was ready" % (what, p.returncode))
    return p, json.loads(line)


def stop_peer(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p and p.stdout:
        p.stdout.close()


class Megazord:
    def __init__(self):
        self.proc, ready = start_peer([sys.executable, os.path.join(FAKES, "megazord.py")], "the fake Megazord")
        self.base_url = ready["base_url"]

    def get(self, path):
        u = urlsplit(self.base_url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            c.request("GET", path)
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def routes(self):
        """Requests so far, counted per route."""
        return self.get("/_fake/routes")

    def last_alarm_at(self):
        """When the fake created the last alarm (wall clock, seconds), or None."""
        return self.get("/_fake/last-alarm")["at"]


class Fauxqs:
    def __init__(self):
        self.proc, ready = start_peer(["node", os.path.join(FAKES, "fauxqs-server.js")], "fauxqs")
        self.endpoint = ready["endpoint"]
        self.queue_url = ready["queues"]["status-queue"]
        u = urlsplit(self.endpoint)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def call(self, action, body):
        body = dict(body, QueueUrl=self.queue_url)
        self.conn.request("POST", "/", body=json.dumps(body),
                          headers={"Content-Type": "application/x-amz-json-1.0",
                                   "X-Amz-Target": "AmazonSQS." + action})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("fauxqs %s: HTTP %d %s" % (action, r.status, data[:200]))
        return json.loads(data or b"{}")

    def send_all(self, bodies):
        for i in range(0, len(bodies), 10):
            out = self.call("SendMessageBatch", {"Entries": [{"Id": str(k), "MessageBody": json.dumps(b)}
                                                             for k, b in enumerate(bodies[i:i + 10])]})
            if out.get("Failed"):
                raise RuntimeError("fauxqs refused messages: %s" % out["Failed"])

    def depth(self):
        a = self.call("GetQueueAttributes", {"AttributeNames": ["All"]})["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def stop(self):
        self.conn.close()
        stop_peer(self.proc)


def fauxqs_missing():
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(FAKES, "node_modules", "fauxqs")):
        return "fauxqs is not installed (contrib/dev.sh deps, or npm ci --prefix tests/fakes)"
    return None


# --- the daemon ------------------------------------------------------------------------------

def proc_children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_hwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def proc_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def proc_cpu_fields(pid):
    """utime, stime, cutime, cstime of PID, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return [int(x) / CLK_TCK for x in s[s.rindex(")") + 2:].split()[11:15]]


def proc_own_cpu(pid):
    """utime + stime of PID: its own CPU so far, in seconds."""
    return sum(proc_cpu_fields(pid)[0:2])


def proc_child_cpu(pid):
    """cutime + cstime of PID: the CPU of the children it has reaped, in seconds."""
    return sum(proc_cpu_fields(pid)[2:4])


class Daemon:
    def __init__(self, args, tmp, jobs_yaml):
        self.args = args
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        self.sock = os.path.join(tmp, "control.sock")
        self.config = os.path.join(tmp, "registry.yaml")
        self.log_path = os.path.join(tmp, "daemon.log")
        with open(self.config, "w") as f:
            f.write("scheduler:\n  plugin_dir: %s\n  state_dir: %s\n  control_socket: %s\n  timezone: UTC\n"
                    "  shutdown_grace: 10s\njobs:\n%s" % (os.path.join(args.builddir, ".libs"), self.state, self.sock,
                                                        jobs_yaml))
        self.proc = None

    def start(self, env, timeout=60):
        npath = os.path.join(self.tmp, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(npath)
        self.notify.settimeout(0.2)
        e = dict(os.environ, NOTIFY_SOCKET=npath)
        for k in ("JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "SCHEDULERD_LOG_LEVEL"):
            e.pop(k, None)
        e.update(env)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.args.schedulerd, "--config", self.config], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=e)
        deadline = time.monotonic() + timeout
        msgs = []
        while "READY=1" not in msgs:
            if self.proc.poll() is not None:
                raise RuntimeError("schedulerd exited (%s) before READY=1; see %s" % (self.proc.returncode,
                                                                                     self.log_path))
            if time.monotonic() > deadline:
                raise RuntimeError("schedulerd not ready after %ss" % timeout)
            try:
                msgs.extend(self.notify.recv(65536).decode().split("\n"))
            except socket.timeout:
                pass
        # keep reading as systemd does: sd_notify() blocks once the datagram queue is full
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            try:
                self.notify.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return

    def ctl(self, req, timeout):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        return json.loads(buf)

    def run_row(self, run_id):
        con = sqlite3.connect(os.path.join(self.state, "history.db"), timeout=30)
        try:
            return con.execute("SELECT started_usec, finished_usec, status, message FROM runs WHERE id = ?",
                               (run_id,)).fetchone()
        finally:
            con.close()

    def run(self, job, at, timeout, peer_pid=None):
        """One manual run of JOB at logical time AT, waited for. Returns its figures; with
        PEER_PID, the CPU that process (the fake Megazord) used meanwhile too."""
        pid = self.proc.pid
        hwm = {}
        done = threading.Event()

        def sample():
            while not done.is_set():
                for c in proc_children(pid):
                    v = proc_hwm(c)
                    if v is not None:
                        hwm[c] = max(hwm.get(c, 0), v)
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        cpu0 = proc_child_cpu(pid)
        own0 = proc_own_cpu(pid)
        peer0 = proc_own_cpu(peer_pid) if peer_pid else None
        sampler.start()
        try:
            reply = self.ctl({"command": "run", "job": job, "at": at, "wait": True}, timeout)
        finally:
            done.set()
            sampler.join()
        # the reply leaves with the exit seen, which can precede the reaping that adds the run's
        # CPU to the daemon's cutime: wait until the run's process is gone (a zombie is not)
        deadline = time.monotonic() + 5
        while any(os.path.exists("/proc/%d" % c) for c in hwm) and time.monotonic() < deadline:
            time.sleep(0.005)
        cpu1 = proc_child_cpu(pid)
        own1 = proc_own_cpu(pid)
        peer1 = proc_own_cpu(peer_pid) if peer_pid else None
        if not reply.get("ok"):
            raise RuntimeError("%s at %s: %s" % (job, iso(at), reply))
        row = self.run_row(reply["run_id"])
        for _ in range(100):  # the reply can precede the history commit by a moment
            if row and row[1] is not None:
                break
            time.sleep(0.05)
            row = self.run_row(reply["run_id"])
        if not row or row[1] is None:
            raise RuntimeError("%s run %s has no finished row in history.db" % (job, reply["run_id"]))
        return {"status": row[2], "message": row[3] or "", "sec": (row[1] - row[0]) / 1e6, "started_usec": row[0],
                "cpu_sec": cpu1 - cpu0, "rss_peak": max(hwm.values()) if hwm else None,
                "daemon_cpu_sec": round(own1 - own0, 2),
                "megazord_cpu_sec": None if peer_pid is None else round(peer1 - peer0, 2)}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "notify", None):
            self.notify.close()
        if getattr(self, "logf", None):
            self.logf.close()


# --- the benchmark ---------------------------------------------------------------------------

def counts(msg):
    """'12 messages received, 3 events applied, 1 duplicate' -> {'messages received': 12, ...}"""
    out = {}
    for n, what in re.findall(r"(\d+) ([a-z][a-z ]*?)(?=,|;|\(|$)", msg):
        what = what.strip()
        what = {"message received": "messages received", "event applied": "events applied",
                "duplicate": "duplicates"}.get(what, what)
        out[what] = out.get(what, 0) + int(n)
    return out


class Bench:
    def __init__(self, args, log, tmp, n_rules, n_messages):
        self.args, self.log, self.tmp = args, log, tmp
        self.n, self.m = n_rules, n_messages
        self.mz = self.sqs = self.daemon = None

    def figure(self, name, job, at, want=None, timeout=900):
        before = self.mz.routes()
        r = self.daemon.run(job, at, timeout, self.mz.proc.pid)
        after = self.mz.routes()
        r["megazord_requests"] = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        if r["status"] != "succeeded" or (want and want not in r["message"]):
            raise RuntimeError("%s: %s run at %s: %s: %s (expected '%s')" % (name, job, iso(at), r["status"],
                                                                           r["message"], want))
        r["rss_peak_mib"] = rnd(r.pop("rss_peak") / MIB, 1) if r.get("rss_peak") else None
        r["sec"], r["cpu_sec"] = rnd(r["sec"]), rnd(r["cpu_sec"], 2)
        # what the alarm target is about: when Megazord had the run's last alarm, from the run's
        # start (its row's started_usec; the fake's clock is this machine's wall clock too)
        started = r.pop("started_usec")
        if r["megazord_requests"].get("alarm"):
            at = self.mz.last_alarm_at()
            r["last_alarm_sec"] = rnd(at - started / 1e6) if at is not None else None
        self.log("azi3: %s: %s" % (name, json.dumps(r)))
        return r

    def repeated(self, name, job, ats, want):
        rs = [self.figure("%s #%d" % (name, i + 1), job, at, want) for i, at in enumerate(ats)]
        return {"runs": len(rs), "sec_median": median(r["sec"] for r in rs), "sec_all": [r["sec"] for r in rs],
                "cpu_sec_median": median(r["cpu_sec"] for r in rs),
                "rss_peak_mib": max((r["rss_peak_mib"] or 0) for r in rs),
                "megazord_requests": sum(sum(r["megazord_requests"].values()) for r in rs),
                "message": rs[-1]["message"]}

    def store_copy(self, src, dst):
        """Copies the azi-3 store SRC over DST with SQLite's backup (WAL included)."""
        a = sqlite3.connect(src, timeout=30)
        b = sqlite3.connect(dst, timeout=30)
        try:
            a.backup(b)
        finally:
            a.close()
            b.close()

    def store_rows(self, sql, args=()):
        con = sqlite3.connect(os.path.join(self.tmp, "azi3.db"), timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def setup(self):
        self.mz = Megazord()
        self.sqs = None if fauxqs_missing() else Fauxqs()
        self.config = os.path.join(self.tmp, "azi3.yaml")
        with open(self.config, "w") as f:
            f.write("store: azi3.db\nmegazord: { base_url: %s, timeout: 5s }\n" % self.mz.base_url)
            if self.sqs:
                f.write("sqs: { endpoint: %s, region: eu-west-1, queue_url: %s, wait_time: 0s, "
                        "visibility_timeout: 120s }\n" % (self.sqs.endpoint, self.sqs.queue_url))
            else:  # the file needs an sqs section; nothing will use it
                f.write("sqs: { endpoint: http://127.0.0.1:9, region: eu-west-1, "
                        "queue_url: http://127.0.0.1:9/000000000000/status-queue }\n")
            # the day passes in minutes of logical time jumps: at B+30s the windows that ran out
            # at A+5h are owed for 10 h, which the default max_alarm_age (1h) would drop unposted
            f.write("retention: 24h\nmax_alarm_age: 24h\nrules:\n")
            for i in range(self.n):
                f.write('  - robot_id: %d\n    rule_id: toilet-activity\n    timezone: %s\n    start: "07:00"\n'
                        '    end: "22:00"\n    window: 2h\n' % (1000 + i, ZONE))
        jobs = "".join("  - name: %s\n    plugin: %s\n    schedule: \"@yearly\"\n    enabled: false\n"
                       "    timeout: 15m\n    params: { config: %s }\n"
                       % (j, j + ".so", self.config) for j in JOBS)
        self.daemon = Daemon(self.args, self.tmp, jobs)
        self.daemon.start({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})

    def teardown(self):
        if self.daemon:
            self.daemon.stop()
        if self.sqs:
            self.sqs.stop()
        if self.mz:
            stop_peer(self.mz.proc)

    def sqs_phase(self, res):
        """M messages: one event for each of the first M*9/10 sessions, plus M/10 exact
        duplicates of some of them, shuffled so duplicates land in other batches too."""
        if not self.sqs or getattr(self.args, "azi3_skip_sqs", False):
            res["sqs"] = {"measured": False, "reason": fauxqs_missing() or "left out (--azi3-skip-sqs)"}
            return
        subs = dict(self.store_rows("SELECT robot_id, subscription_id FROM sessions"))
        uniq = self.m * 9 // 10
        dups = self.m - uniq
        e0 = A + 30 * M
        bodies = []
        for i in range(uniq):
            robot = 1000 + i % self.n
            sid = 5000000 + i
            t = e0 + (i % 600) * S
            bodies.append({"from": {"serviceName": "megazord-events"}, "to": {"robotId": robot},
                           "link": "/internal/v1/events/robots/%d/outgoings/%d" % (robot, sid + 50000),
                           "event": {"id": sid + 50000, "robotId": robot, "subscriptionId": subs[robot],
                                     "sourceEventId": sid, "eventName": "TOILET_ACTIVITY",
                                     "providerName": "sensara-adaptor", "createdAt": iso(t)}})
        bodies += [bodies[i * uniq // dups] for i in range(dups)]
        random.Random(7).shuffle(bodies)
        t0 = time.monotonic()
        self.sqs.send_all(bodies)
        load_sec = time.monotonic() - t0
        if self.sqs.depth() != self.m:
            raise RuntimeError("fauxqs holds %d messages after loading %d" % (self.sqs.depth(), self.m))
        self.log("azi3: %d SQS messages loaded in %.1f s; draining with sqs-consumer" % (self.m, load_sec))

        at = A + 40 * M
        runs, total, cpu, rss, got = 0, 0.0, 0.0, 0, {}
        w0 = time.monotonic()
        while runs < self.m // 10 + 20:  # a run takes up to 100; a few spare for a stuck queue
            r = self.daemon.run("sqs-consumer", at, 300)
            if r["status"] != "succeeded":
                raise RuntimeError("sqs-consumer at %s: %s: %s" % (iso(at), r["status"], r["message"]))
            runs += 1
            total += r["sec"]
            cpu += r["cpu_sec"]
            rss = max(rss, r["rss_peak"] or 0)
            c = counts(r["message"])
            for k, v in c.items():
                got[k] = got.get(k, 0) + v
            if c.get("messages received", 0) == 0:
                break
        wall = time.monotonic() - w0
        left = self.sqs.depth()
        windows = self.store_rows("SELECT count(*), sum(reason = 'activity') FROM windows")[0]
        events = self.store_rows("SELECT count(*), count(DISTINCT source_event_id) FROM events")[0]
        received = got.get("messages received", 0)
        res["sqs"] = {
            "measured": True,
            "messages": self.m, "unique_events": uniq, "duplicates_sent": dups,
            "runs": runs, "received": received, "applied": got.get("events applied", 0),
            "duplicates": got.get("duplicates", 0), "deleted": got.get("deleted", 0), "left_in_queue": left,
            "run_sec_total": rnd(total), "cpu_sec_total": rnd(cpu, 2), "wall_sec": rnd(wall, 1),
            "msgs_per_sec": rnd(received / total, 1) if total else None,
            "usec_per_msg": rnd(1e6 * total / received, 1) if received else None,
            "cpu_usec_per_msg": rnd(1e6 * cpu / received, 1) if received else None,
            "rss_peak_mib": rnd(rss / MIB, 1),
            "windows_after": windows[0], "windows_closed_by_activity": windows[1],
            "event_rows": events[0], "distinct_events": events[1],
        }
        s = res["sqs"]
        s["dedup_correct"] = (received == self.m and left == 0 and s["applied"] == uniq and s["duplicates"] == dups
                              and s["event_rows"] == uniq and s["distinct_events"] == uniq
                              and s["windows_closed_by_activity"] == uniq and s["windows_after"] == self.n + uniq)
        self.log("azi3: sqs: %s" % json.dumps(s))

    def measure(self):
        n = self.n
        res = {"measured": True, "rules": n, "zone": ZONE, "day": "2026-06-10 07:00-22:00, 2 h windows",
               "cores": os.cpu_count()}
        self.log("azi3: monitoring-scheduler at A over %d rules (creates every session)" % n)
        res["monitoring_create"] = self.figure("monitoring-scheduler creating", "monitoring-scheduler", A,
                                               "%d sessions created (0 events replayed), %d sessions open" % (n, n))
        res["monitoring_steady"] = self.repeated("monitoring-scheduler steady", "monitoring-scheduler",
                                                 [A + k * M for k in (1, 2, 3)], "%d sessions open" % n)
        res["monitoring_sec"] = res["monitoring_steady"]["sec_median"]
        res["expiration_steady"] = self.repeated("window-expiration steady", "window-expiration",
                                                 [A + k * M for k in (5, 6, 7)], "%d sessions open" % n)
        self.sqs_phase(res)
        # The alarm run is the figure with a target: timed several times, each from the store as
        # it was before the first (restored while no run has it open), the median reported.
        repeats = max(1, getattr(self.args, "azi3_alarm_runs", 1))
        snapshot = os.path.join(self.tmp, "azi3-before-alarms.db")
        if repeats > 1:
            self.store_copy(os.path.join(self.tmp, "azi3.db"), snapshot)
        alarm_runs = []
        for k in range(repeats):
            if k > 0:
                self.store_copy(snapshot, os.path.join(self.tmp, "azi3.db"))
            probe = speed_probe.speed_probe()  # how fast the machine is just before
            alarm_runs.append(self.figure(
                "window-expiration, every window expired #%d" % (k + 1), "window-expiration", A + 3 * H,
                "%d sessions open, %d windows expired, %d alarms posted" % (n, n, n)))
            alarm_runs[-1]["speed_probe_sec"] = probe
        by_time = sorted(alarm_runs, key=lambda r: (r.get("last_alarm_sec") or r["sec"], r["sec"]))
        res["expiration_all_expire"] = dict(by_time[len(by_time) // 2], sec_all=[r["sec"] for r in alarm_runs],
                                            last_alarm_sec_all=[r.get("last_alarm_sec") for r in alarm_runs],
                                            probe_all=[r["speed_probe_sec"] for r in alarm_runs])
        # the windows opened at A+3h ran out at A+5h: after B they close without a successor,
        # post their alarms, and every session completes and is unsubscribed
        res["expiration_complete"] = self.figure(
            "window-expiration after B", "window-expiration", B + 30 * S,
            "0 sessions open, %d windows expired, %d alarms posted, %d sessions completed" % (n, n, n))
        res["daemon_rss_mib"] = rnd(proc_rss(self.daemon.proc.pid) / MIB, 1)
        return res


def run(args, log):
    """The azi-3 figures (see the module's comment); ARGS as bench.py's (builddir, schedulerd,
    plugin_dir, quick, keep)."""
    missing = [j for j in JOBS if not os.path.exists(os.path.join(args.builddir, ".libs", j + ".so"))]
    if missing:
        raise RuntimeError("not built in %s: %s" % (args.builddir, ", ".join(j + ".so" for j in missing)))
    n = 1000 if args.quick else 10000
    tmp = tempfile.mkdtemp(prefix="schedulerd-bench-azi3-")
    b = Bench(args, log, tmp, n, n)
    try:
        b.setup()
        return b.measure()
    finally:
        b.teardown()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("azi3: kept %s" % tmp)


def fmt_req(d):
    return ", ".join("%d %s" % (v, k) for k, v in sorted(d.items())) or "none"


def render(az):
    """The azi-3 section of BENCHMARKS.md (without its heading), as markdown lines."""
    if not az.get("measured"):
        return ["Not measured: %s.\n" % az.get("reason", "?")]
    o = []
    n = az["rules"]
    o.append("One daemon with the azi-3 plugins, the fake Megazord (`tests/fakes/megazord.py`, Python, one asyncio "
             "loop, over 10,000 requests/s) and fauxqs on loopback, on the same machine; %s rules, one robot each, %s %s. Every run is a manual run "
             "with `at` (`schedctl run --wait --at`), so the day passes in minutes. *Time* is the run's "
             "`finished_usec - started_usec` in `history.db` (fork to reaped, as an operator sees it); *CPU* the "
             "run process's own (the daemon's `cutime+cstime` across the run); *RSS* the run process's VmHWM "
             "(sampled every 10 ms; it is a fork of the daemon, so the daemon's pages count). Wall-clock figures "
             "are noisy: the machine is shared.\n" % ("{:,}".format(n), az["zone"], az["day"]))
    o.append("| run | time s | CPU s | RSS peak MiB | Megazord requests | run's message |")
    o.append("| --- | ---: | ---: | ---: | --- | --- |")

    def row(label, r):
        o.append("| %s | %s | %s | %s | %s | %s |" % (label, r["sec"], r["cpu_sec"], r["rss_peak_mib"],
                                                      fmt_req(r["megazord_requests"]), r["message"]))

    def rep(label, r):
        o.append("| %s | %s (median of %s: %s) | %s | %s | %d | %s |"
                 % (label, r["sec_median"], r["runs"], ", ".join(map(str, r["sec_all"])), r["cpu_sec_median"],
                    r["rss_peak_mib"], r["megazord_requests"], r["message"]))

    row("monitoring-scheduler at A: creates every session", az["monitoring_create"])
    rep("monitoring-scheduler, every minute after A", az["monitoring_steady"])
    rep("window-expiration, nothing due", az["expiration_steady"])
    ae = az["expiration_all_expire"]
    row("window-expiration, every window expired%s" % (
        " (median of %d runs from the same store: %s s%s)" % (
            len(ae["sec_all"]), ", ".join(map(str, ae["sec_all"])),
            "; speed probe just before each: %s s" % ", ".join(map(str, ae["probe_all"])) if ae.get("probe_all") else "")
        if len(ae.get("sec_all", [])) > 1 else ""), ae)
    row("window-expiration after B: every window expired, every session completes", az["expiration_complete"])
    o.append("")
    if ae.get("last_alarm_sec") is not None:
        o.append("*When the alarms were posted* (the target's figure): the fake Megazord notes when it created "
                 "each alarm; the alarm run's last alarm was created %s s after the run started (its row's "
                 "`started_usec`; runs: %s s). The rest of the run's time is the store's close (the WAL "
                 "checkpointed into the file) and its exit.\n"
                 % (ae["last_alarm_sec"], ", ".join(str(x) for x in ae.get("last_alarm_sec_all", [ae["last_alarm_sec"]]))))
    if ae.get("megazord_cpu_sec") is not None:
        total = ae["cpu_sec"] + ae["megazord_cpu_sec"] + ae["daemon_cpu_sec"]
        cores = az.get("cores") or os.cpu_count()
        o.append("The CPU the alarm run took on this machine (its median run): the run %s s, the fake Megazord "
                 "answering it %s s, the daemon (its output and history) %s s: %.2f s in all on %d cores, so no "
                 "run can take less than %.2f s here, however its work is spread. A real Megazord is on other "
                 "machines; only the run's own CPU would be left on the daemon's.\n"
                 % (ae["cpu_sec"], ae["megazord_cpu_sec"], ae["daemon_cpu_sec"], total, cores, total / cores))
    s = az.get("sqs", {})
    if not s.get("measured"):
        o.append("sqs-consumer: not measured: %s.\n" % s.get("reason", "?"))
    else:
        o.append("**sqs-consumer**: %s messages pre-loaded into fauxqs (%s distinct events, one per session, and "
                 "%s exact duplicates of some of them, shuffled), drained by %d consecutive runs (`wait_time: 0s`; "
                 "a run takes up to 10 batches of 10).\n"
                 % ("{:,}".format(s["messages"]), "{:,}".format(s["unique_events"]),
                    "{:,}".format(s["duplicates_sent"]), s["runs"]))
        o.append("| figure | value |")
        o.append("| --- | ---: |")
        o.append("| messages consumed per second of run time | %s |" % s["msgs_per_sec"])
        o.append("| run time per message | %s µs |" % s["usec_per_msg"])
        o.append("| run CPU per message | %s µs |" % s["cpu_usec_per_msg"])
        o.append("| run time in all / wall time of the drain | %s s / %s s |" % (s["run_sec_total"], s["wall_sec"]))
        o.append("| RSS peak of a run | %s MiB |" % s["rss_peak_mib"])
        o.append("| received / applied / duplicates / deleted / left in the queue | %d / %d / %d / %d / %d |"
                 % (s["received"], s["applied"], s["duplicates"], s["deleted"], s["left_in_queue"]))
        o.append("| event rows (distinct) / windows (closed by activity) after | %d (%d) / %d (%d) |"
                 % (s["event_rows"], s["distinct_events"], s["windows_after"], s["windows_closed_by_activity"]))
        o.append("| de-duplication correct | %s |" % ("yes" if s["dedup_correct"] else "**no**"))
        o.append("")
        o.append("The schedule shipped in `etc/jobs.d/azi3.yaml.example` (`@every 5s`, at most 10 batches of 10 "
                 "per run) bounds what the daemon takes from the queue to 100 messages per 5 s, 20/s, whatever a "
                 "run could do; a backlog drains at that rate.\n")
    o.append("Daemon RSS at the end: %s MiB.\n" % az.get("daemon_rss_mib"))
    return o
