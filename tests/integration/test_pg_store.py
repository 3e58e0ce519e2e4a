# SPDX-License-Identifier: MIT
"""Issue 15, item 1 (and a small part of item 6): the daemon with scheduler.store on a private
PostgreSQL server, through the real binaries: runs recorded there, read back by schedctl; the
server stopped and started under a running daemon, which survives it and records again."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import SCHEDCTL, DaemonTestCase, job, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import pgserver  # noqa: E402

if not pgserver.available():
    print("test_pg_store: initdb/pg_ctl not installed (contrib/dev.sh deps installs postgresql-15); skipping",
          file=sys.stderr)
    sys.exit(77)


def schedctl(d, *args):
    p = subprocess.run([SCHEDCTL, "--config", d.config, "--socket", d.sock] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def store_yaml(conninfo):
    return '  store: "%s"\n' % conninfo


class BlackHole:
    """A proxy in front of PostgreSQL's Unix socket that can turn into a black hole: the
    connections open are cut, and new ones are accepted and never answered, as a host that
    drops packets looks to a new connection (connect_timeout is what bounds the wait)."""

    def __init__(self, conninfo):
        self.target = "%s/.s.PGSQL.%s" % (re.search(r"host=(\S+)", conninfo).group(1),
                                         re.search(r"port=(\d+)", conninfo).group(1))
        self.dir = tempfile.mkdtemp(prefix="schedulerd-hole-")
        port = re.search(r"port=(\d+)", conninfo).group(1)
        self.conninfo = re.sub(r"host=\S+", "host=" + self.dir, conninfo)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(os.path.join(self.dir, ".s.PGSQL." + port))
        self.srv.listen(64)
        self.lock = threading.Lock()
        self.hole, self.open = False, []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.open.append(c)
                if self.hole:
                    continue  # held open, never answered
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.open.append(u)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_hole(self, hole):
        with self.lock:
            self.hole, socks, self.open = hole, self.open, []
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.srv.close()
        self.set_hole(True)


class PgStore(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.pg = pgserver.PgServer()
        self.pg.start()

    def tearDown(self):
        super().tearDown()
        self.pg.__exit__(None, None, None)

    def count(self, sql):
        return int(self.pg.psql(sql).strip() or 0)

    def test_runs_recorded_and_read_back(self):
        d = self.daemon(job("tick", "slow.so", "* * * * * *", params={"duration": "10ms"}) +
                        job("once", "ok.so", "@yearly"), store_yaml(self.pg.conninfo)).start()
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'tick' AND status = 'succeeded'") >= 2,
                 timeout=20, what="two runs of tick recorded in PostgreSQL")
        self.assertFalse(os.path.exists(d.db_path()), "no SQLite file when the store is PostgreSQL")
        self.assertIn("PostgreSQL", d.log())

        rc, out, err = schedctl(d, "history", "tick", "--json")
        self.assertEqual(rc, 0, err)
        runs = json.loads(out)
        self.assertGreaterEqual(len([r for r in runs if r["status"] == "succeeded"]), 2)
        ids = {r["id"] for r in runs}
        in_pg = {int(x) for x in self.pg.psql("SELECT id FROM runs WHERE job = 'tick'").split()}
        self.assertTrue(ids <= in_pg, "schedctl history shows the PostgreSQL rows")

        rc, out, err = schedctl(d, "run", "once", "--wait")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.count("SELECT count(*) FROM runs WHERE job = 'once' AND trigger = 'manual' "
                                    "AND status = 'succeeded'"), 1)
        rc, out, err = schedctl(d, "status", "tick")
        self.assertEqual(rc, 0, err)
        rc, out, err = schedctl(d, "list")
        self.assertEqual(rc, 0, err)
        self.assertIn("tick", out)

        # enable/disable is stored there, and outlives the daemon
        rc, out, err = schedctl(d, "disable", "tick")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.count("SELECT enabled_override FROM jobs WHERE name = 'tick'"), 0)
        self.assertEqual(d.stop(), 0)
        d.start()
        rc, out, err = schedctl(d, "list", "--json")
        self.assertEqual(rc, 0, err)
        tick = [j for j in json.loads(out)["jobs"] if j["name"] == "tick"][0]
        self.assertFalse(tick["enabled"], tick)
        self.assertEqual(d.stop(), 0)

    def test_a_running_worker_runs_start_is_in_its_row(self):
        """A worker's run, while it runs, shows the worker's pid and the real start in its row:
        PostgreSQL commits every write alone (no batch), so the start cannot wait for one."""
        d = self.daemon(job("long", "worker-probe.so", "@yearly", isolation="worker",
                            params={"mode": "sleep", "duration": "30s"}), store_yaml(self.pg.conninfo)).start()
        rid = d.ctl({"command": "run", "job": "long"})["run_id"]
        wait_for(lambda: "long[run %d]: logged by run %d" % (rid, rid) in d.log(), timeout=30, what="the run's code")
        row = self.pg.psql("SELECT pid, started_usec, scheduled_usec FROM runs WHERE id = %d" % rid).split("|")
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and self.ppid(int(p)) == d.proc.pid]
        self.assertTrue(row[0].strip(), "the running row has no pid: %r" % row)
        self.assertIn(int(row[0]), pids, "the row's pid is one of the daemon's children (its worker)")
        d.stop()

    @staticmethod
    def ppid(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            return -1

    def test_server_stopped_and_started_under_the_daemon(self):
        # 'long' is in flight across the outage: its result is written once the server is back
        d = self.daemon(job("tick", "slow.so", "* * * * * *", params={"duration": "10ms"}) +
                        job("long", "slow.so", "@yearly", params={"duration": "6s"}),
                        store_yaml(self.pg.conninfo)).start()
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'tick' AND status = 'succeeded'") >= 2,
                 timeout=20, what="tick recorded before the outage")
        rc, out, err = schedctl(d, "run", "long")
        self.assertEqual(rc, 0, err)
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'long' AND status = 'running'") == 1,
                 timeout=20, what="the long run claimed")

        self.pg.stop()
        time.sleep(3)  # fires due now cannot be recorded; the daemon must keep going
        self.assertIsNone(d.proc.poll(), "the daemon survives its store going away:\n" + d.log())
        self.pg.start()
        back = self.count("SELECT (extract(epoch from now()) * 1000000)::bigint")

        # after the server is back: new fires recorded, and the run in flight finished there
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'tick' AND status = 'succeeded' "
                                    "AND started_usec > %d" % back) >= 2,
                 timeout=30, what="tick recorded again after the server came back")
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'long' AND status = 'succeeded'") == 1,
                 timeout=30, what="the run in flight during the outage recorded as succeeded")
        self.assertIsNone(d.proc.poll())
        log = d.log()
        self.assertIn("is the PostgreSQL server up and reachable", log)
        self.assertEqual(log.count("is the PostgreSQL server up and reachable"), 1, "the outage is logged once")
        # nothing claimed twice
        self.assertEqual(self.count("SELECT count(*) FROM (SELECT job, scheduled_usec, attempt FROM runs "
                                    "WHERE claim_class = 'fire' GROUP BY 1, 2, 3 HAVING count(*) > 1) AS d"), 0)
        self.assertEqual(d.stop(), 0)

    def test_a_store_that_stops_answering_costs_the_loop_seconds(self):
        """Every connection of a cluster node goes through a proxy that turns into a black hole:
        the open connections are cut, new ones are never answered. Each reconnection (history,
        cluster lease, cluster control) may hold the loop for its connect_timeout, no longer:
        the daemon keeps answering schedctl. The cluster's connections used to have no bound:
        its lease renewal reconnected and waited for ever, and the daemon answered nothing."""
        hole = BlackHole(self.pg.conninfo)
        self.addCleanup(hole.close)
        d = self.daemon(job("tick", "ok.so", "* * * * * *"),
                        store_yaml(hole.conninfo) + "  cluster: { node: n0, lease: 6s }\n").start()
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'tick' AND status = 'succeeded'") >= 2,
                 timeout=30, what="tick recorded through the proxy")
        hole.set_hole(True)
        # past a lease renewal (every 2 s here) and the reconnections that follow it
        wait_for(lambda: "PostgreSQL unreachable" in d.log(), timeout=30, what="the cluster to see the outage")
        for _ in range(3):
            time.sleep(2)
            st = d.ctl({"command": "status", "job": "tick"}, timeout=25)
            self.assertTrue(st.get("ok"), st)
        self.assertIsNone(d.proc.poll())
        hole.set_hole(False)
        back = self.count("SELECT (extract(epoch from now()) * 1000000)::bigint")
        wait_for(lambda: self.count("SELECT count(*) FROM runs WHERE job = 'tick' AND status = 'succeeded' "
                                    "AND started_usec > %d" % back) >= 2,
                 timeout=60, what="tick recorded again once the proxy answers")
        self.assertEqual(d.stop(), 0)

    def test_unreachable_at_start_and_bad_strings(self):
        d = self.daemon(job("tick", "ok.so", "@yearly"),
                        store_yaml("host=/nonexistent-schedulerd-test port=1 dbname=x"))
        d.start(wait_ready=False)
        self.assertNotEqual(d.proc.wait(30), 0)
        self.assertIn("cannot connect", d.log())

        # a password in the registry is refused where it is written, by schedctl check too
        d.write_registry(job("tick", "ok.so", "@yearly"), store_yaml("host=db1 dbname=x password=hunter2"))
        p = subprocess.run([SCHEDCTL, "check", d.config], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(".pgpass", p.stdout + p.stderr)
        self.assertIn("registry.yaml:", p.stdout + p.stderr)
        self.assertNotIn("hunter2", p.stdout + p.stderr)

        d.write_registry(job("tick", "ok.so", "@yearly"), store_yaml("sqlite"))
        d.start()
        self.assertTrue(os.path.exists(d.db_path()))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
