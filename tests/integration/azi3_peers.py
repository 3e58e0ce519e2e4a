# SPDX-License-Identifier: MIT
"""The peers of the azi-3 jobs for end-to-end tests: the fake Megazord (tests/fakes/megazord.py)
and fauxqs (tests/fakes/fauxqs-server.js), each started on a free loopback port, plus readers of
the azi-3 store and helpers for the times the tests reason about."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone

from harness import SRCDIR

FAKES = os.path.join(SRCDIR, "tests", "fakes")


def usec(dt):
    """An aware datetime as microseconds since the epoch."""
    return int(dt.timestamp()) * 1000000 + dt.microsecond


def utc(y, mo, d, h=0, mi=0, s=0):
    return usec(datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc))


def iso(t):
    """Megazord's form: 2026-03-29T07:41:12.000Z."""
    dt = datetime.fromtimestamp(t // 1000000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t % 1000000 // 1000)


H = 3600 * 1000000
M = 60 * 1000000
S = 1000000


def peers_available():
    """None when the peers can run here, else why not (the test then skips)."""
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(FAKES, "node_modules", "fauxqs")):
        return "fauxqs is not installed (npm ci --prefix tests/fakes)"
    return None


def _start(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line:
        p.wait()
        raise AssertionError("%s exited (%s) before it was ready" % (argv[1], p.returncode))
    return p, json.loads(line)


class Peers:
    def __init__(self):
        self.mz_proc, ready = _start([sys.executable, os.path.join(FAKES, "megazord.py")])
        self.megazord = ready["base_url"]
        try:
            self.sqs_proc, ready = _start(["node", os.path.join(FAKES, "fauxqs-server.js")])
        except Exception:
            self.mz_proc.terminate()
            raise
        self.sqs_endpoint = ready["endpoint"]
        self.queue_url = ready["queues"]["status-queue"]

    def stop(self):
        for p in (getattr(self, "mz_proc", None), getattr(self, "sqs_proc", None)):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p and p.stdout:
                p.stdout.close()

    # --- fake Megazord ---
    def _mz(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.megazord + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def requests(self):
        """The API requests so far, as (method, path, query, body-as-JSON-or-None)."""
        out = []
        for r in self._mz("GET", "/_fake/requests"):
            body = json.loads(r["body"]) if r["body"] else None
            out.append((r["method"], r["path"], r["query"], body, r["headers"]))
        return out

    def calls(self):
        """Requests as (method, path, query, body): what the tests compare exactly."""
        return [r[:4] for r in self.requests()]

    def fault(self, **kw):
        self._mz("POST", "/_fake/fault", kw)

    def seed(self, incomings):
        self._mz("POST", "/_fake/incomings", incomings)

    def subscriptions(self):
        return self._mz("GET", "/_fake/subscriptions")

    # --- fauxqs ---
    def _sqs(self, action, body):
        body = dict(body, QueueUrl=self.queue_url)
        req = urllib.request.Request(self.sqs_endpoint + "/", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/x-amz-json-1.0",
                                              "X-Amz-Target": "AmazonSQS." + action})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def send(self, body):
        self._sqs("SendMessage", {"MessageBody": body if isinstance(body, str) else json.dumps(body)})

    def queue_depth(self):
        """Messages still in the queue, visible or in flight."""
        a = self._sqs("GetQueueAttributes", {"AttributeNames": ["All"]})["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def sqs_body(robot, subscription, source_id, created, event_name="TOILET_ACTIVITY"):
    """The message of SPEC 8.4 for the activity event SOURCE_ID created at CREATED (usec)."""
    return {
        "from": {"serviceName": "megazord-events"},
        "to": {"robotId": robot},
        "link": "/internal/v1/events/robots/%d/outgoings/%d" % (robot, source_id + 50000),
        "event": {"id": source_id + 50000, "robotId": robot, "subscriptionId": subscription,
                  "sourceEventId": source_id, "eventName": event_name,
                  "providerName": "sensara-adaptor", "createdAt": iso(created)},
    }


def incoming(robot, source_id, created, event_name="TOILET_ACTIVITY"):
    return {"id": source_id, "robotId": robot, "eventName": event_name, "providerName": "sensara-adaptor",
            "createdAt": iso(created)}


class Store:
    """Read-only view of the azi-3 store the jobs write."""

    def __init__(self, path):
        self.path = path

    def rows(self, sql, args=()):
        if not os.path.exists(self.path):
            return []
        con = sqlite3.connect(self.path, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def sessions(self):
        return self.rows("SELECT * FROM sessions ORDER BY id")

    def windows(self, session_id):
        return self.rows("SELECT * FROM windows WHERE session_id = ? ORDER BY since_usec, id", (session_id,))

    def events(self, session_id):
        return self.rows("SELECT * FROM events WHERE session_id = ? ORDER BY created_usec, source_event_id",
                         (session_id,))

    def pending(self):
        return self.rows("SELECT * FROM pending_unsubscriptions ORDER BY subscription_id")
