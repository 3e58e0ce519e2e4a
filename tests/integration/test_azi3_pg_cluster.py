# SPDX-License-Identifier: MIT
"""Issue 15 item 7: the azi-3 jobs of three daemons sharing one PostgreSQL azi3 store, through
the real daemons, fauxqs, the fake Megazord and a private PostgreSQL server. A monitored day
with every job run on all three nodes at the same logical instant: one session, every SQS
event applied once although each is delivered to every node, every alarm posted once, and an
alarm whose poster was killed mid-post posted once by another node after its claim lapsed.

What counts is what Megazord received (its own record), besides the store's rows. The
daemon-level cluster claims (one fire per cluster) come from other work; here every node runs
every job on purpose, the worst case the azi3 store must absorb on its own."""
import json
import os
import signal
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import BUILDDIR, SRCDIR, Daemon, wait_for
from azi3_peers import H, M, S, Peers, peers_available, sqs_body, utc

sys.path.insert(0, os.path.join(SRCDIR, "tests", "pg"))
import pgserver  # noqa: E402

JOBS = ("monitoring-scheduler", "window-expiration", "session-cleanup", "sqs-consumer")
ROBOT = 42
A = utc(2026, 3, 30, 5)  # 07:00 Amsterdam (CEST)
W = 2 * H
SETTLE = 30 * S
ALARM = "NO_TOILET_ACTIVITY_ALARM"


class ThreeNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pgserver.PgServer()
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.__exit__(None, None, None)

    def setUp(self):
        self.pg.psql("DROP SCHEMA IF EXISTS azi3 CASCADE")
        self.peers = Peers()
        self.addCleanup(self.peers.stop)
        self.tmp = tempfile.mkdtemp(prefix="azi3-pg-cluster-")
        self.config = os.path.join(self.tmp, "azi3.yaml")
        with open(self.config, "w") as f:
            f.write("store: '%s'\n"
                    "megazord: { base_url: %s, timeout: 2s }\n"
                    "sqs: { endpoint: %s, region: eu-west-1, queue_url: %s, wait_time: 0s, visibility_timeout: 30s }\n"
                    "rules:\n  - { robot_id: %d, rule_id: toilet-activity, timezone: Europe/Amsterdam,"
                    " start: \"07:00\", end: \"22:00\", window: 2h }\n" %
                    (self.pg.conninfo, self.peers.megazord, self.peers.sqs_endpoint, self.peers.queue_url, ROBOT))
        jobs = "".join("  - name: %s\n    plugin: %s.so\n    schedule: \"@yearly\"\n    enabled: false\n"
                       "    timeout: 30s\n    params: { config: %s }\n" % (j, j, self.config) for j in JOBS)
        self.nodes = []
        for k in range(3):
            tmp = os.path.join(self.tmp, "node%d" % k)
            os.mkdir(tmp)
            d = Daemon(jobs, tmp=tmp, plugin_dir=os.path.join(BUILDDIR, ".libs"))
            self.addCleanup(d.cleanup)
            d.start(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
            self.nodes.append(d)

    # --- helpers ---
    def run_on(self, node, job, at):
        r = node.ctl({"command": "run", "job": job, "at": at, "wait": True}, timeout=60)
        self.assertTrue(r.get("ok"), r)
        return r

    def run_everywhere(self, job, at):
        """JOB at the same logical instant on every node, started together."""
        out = [None] * len(self.nodes)
        go = threading.Barrier(len(self.nodes))

        def one(k):
            go.wait()
            out[k] = self.run_on(self.nodes[k], job, at)

        ts = [threading.Thread(target=one, args=(k,)) for k in range(len(self.nodes))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for k, r in enumerate(out):
            self.assertEqual(r["status"], "succeeded", "node %d: %s at %d: %s" % (k, job, at, r))
        return out

    def rows(self, sql):
        out = self.pg.psql("SET search_path TO azi3; " + sql).strip()
        return [line.split("|") for line in out.splitlines()] if out else []

    def alarms_created(self):
        """The alarms Megazord holds, from its own history (not our store)."""
        url = "%s/internal/v1/events/robots/%d/incomings?event_name=%s&created_since=0" % (
            self.peers.megazord, ROBOT, ALARM)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def alarm_posts(self):
        return [r for r in self.peers.calls() if r[0] == "POST" and r[1].endswith("/incomings")]

    # --- the day ---
    def test_monitored_day_on_three_nodes(self):
        # monitoring-scheduler everywhere: one session, one live subscription (the losers undo theirs)
        self.run_everywhere("monitoring-scheduler", A + M)
        self.assertEqual(self.rows("SELECT count(*) FROM sessions"), [["1"]])
        sub = self.rows("SELECT subscription_id FROM sessions")[0][0]
        live = [s for s in self.peers.subscriptions() if s["robotId"] == ROBOT]
        self.assertEqual([str(s["id"]) for s in live], [sub])
        self.assertEqual(self.rows("SELECT count(*) FROM windows"), [["1"]])
        # each node's first run replayed the open sessions once; the next runs, on any node, do
        # not replay again (a single "last instance" key flipped between the nodes and made every
        # run replay)
        gets = lambda: len([c for c in self.peers.calls() if c[0] == "GET" and c[1].endswith("/incomings")])
        before = gets()
        for k in range(2):
            self.run_everywhere("monitoring-scheduler", A + (2 + k) * M)
        self.assertEqual(gets(), before, "monitoring-scheduler replayed again")

        # SQS delivers event 9001 to every node (three copies), all consume at once: applied once
        e1 = A + 30 * M
        for _ in self.nodes:
            self.peers.send(sqs_body(ROBOT, int(sub), 9001, e1))
        self.run_everywhere("sqs-consumer", A + 31 * M)
        self.assertEqual(self.peers.queue_depth(), 0)
        self.assertEqual(self.rows("SELECT source_event_id, outcome FROM events"), [["9001", "applied"]])
        self.assertEqual(self.rows("SELECT reason, closing_event_id FROM windows ORDER BY since_usec"),
                         [["activity", "9001"], ["", ""]])

        # the window [e1, e1+2h) expires; window-expiration everywhere, at the alarm instant, with
        # the first post held 1 s at Megazord so all three runs overlap: one alarm
        self.peers.fault(route="alarm", delay=1)
        t1 = e1 + W + SETTLE + S
        self.run_everywhere("window-expiration", t1)
        self.assertEqual(len(self.alarms_created()), 1, self.alarms_created())
        self.assertEqual(len(self.alarm_posts()), 1, self.alarm_posts())
        self.run_everywhere("window-expiration", t1 + M)  # later runs post nothing more
        self.assertEqual(len(self.alarm_posts()), 1)
        self.assertEqual(self.rows("SELECT alarm_state, count(*) FROM windows WHERE alarm_state IS NOT NULL "
                                   "GROUP BY alarm_state"), [["alarmed", "1"]])

        # the next window [t1, t1+2h) expires; node 0 is killed (daemon and run) while its post
        # is at Megazord (held 3 s, then refused: nothing created). The others' runs at the same
        # instant find its claim live and post nothing; once the claim lapses one node posts it.
        self.peers.fault(route="alarm", delay=3, status=503)
        t2 = t1 + W + SETTLE + 10 * S
        n0 = self.nodes[0]
        r = n0.ctl({"command": "run", "job": "window-expiration", "at": t2})
        self.assertTrue(r.get("ok"), r)
        wait_for(lambda: len(self.alarm_posts()) == 2, timeout=20, what="node 0's alarm post at Megazord")
        pids = [row["pid"] for row in n0.rows("SELECT pid FROM runs WHERE pid > 0 AND status = 'running'")]
        n0.kill9()
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.assertEqual(self.rows("SELECT count(*) FROM windows WHERE alarm_state = 'owed' "
                                   "AND alarm_claim_owner IS NOT NULL"), [["1"]])
        time.sleep(3.5)  # Megazord answers the dead post (503) before the survivors run
        for node in self.nodes[1:]:
            self.run_on(node, "window-expiration", t2)
        self.assertEqual(len(self.alarms_created()), 1, "a live claim was posted over")
        self.assertEqual(len(self.alarm_posts()), 2)
        # past the claim's lease (2 x the 2 s Megazord timeout + 1 min): posted once
        t3 = t2 + 2 * M
        for node in self.nodes[1:]:
            self.run_on(node, "window-expiration", t3)
        created = self.alarms_created()
        self.assertEqual(len(created), 2, created)
        self.assertEqual(len({a["referenceId"] for a in created}), 2)
        self.assertEqual(self.rows("SELECT alarm_state, count(*) FROM windows WHERE alarm_state IS NOT NULL "
                                   "GROUP BY alarm_state"), [["alarmed", "2"]])


if __name__ == "__main__":
    if not pgserver.available():
        print("PostgreSQL not installed (contrib/dev.sh deps): skipped")
        sys.exit(77)
    why = peers_available()
    if why:
        print("skipped: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
