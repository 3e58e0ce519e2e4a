# SPDX-License-Identifier: MIT
"""Issue 6: the four azi-3 jobs end to end, through the real daemon, fauxqs and the fake
Megazord. Every run is a manual run with `at` (the logical clock), so a whole monitored day
passes in seconds. Each scenario asserts the exact Megazord requests and the store's windows.

A run's clock is `at` plus the time the run has taken so far, so a window opened by the
expiration step at `now` starts a few milliseconds after `at`: those are compared with
`near(at)` (at <= x < at + 5 s); everything that follows from event times is exact.

Issue 17 changed three rules these scenarios see, and their assertions with them: a full window
is judged only SETTLE (30 s, the default) after its until, and only after a replay of Megazord's
history since its since (one more GET per judged window); an alarm owed longer than
max_alarm_age (1 h) is recorded as too_late, not posted; a day without any activity event
completes as no_events; and the first monitoring-scheduler run of a daemon instance replays the
open sessions."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from harness import BUILDDIR, Daemon
from azi3_peers import H, M, S, Peers, Store, incoming, iso, peers_available, sqs_body, usec, utc

JOBS = ("monitoring-scheduler", "window-expiration", "session-cleanup", "sqs-consumer")
AZI3CTL = os.path.join(BUILDDIR, "azi3ctl")
SUBSCRIBE = "/internal/v1/events/robots/%d/subscriptions"
INCOMINGS = "/internal/v1/events/robots/%d/incomings"


SETTLE = 30 * S


class near:
    """Equal to any instant in [t, t + 5 s): a time the run's clock gave."""

    def __init__(self, t):
        self.t = t

    def __eq__(self, other):
        return isinstance(other, int) and self.t <= other < self.t + 5 * S

    def __repr__(self):
        return "near(%s)" % iso(self.t)


class near_s:
    """The unix-seconds string of an instant in [t, t + 5 s): created_since of a replay from a
    window the run's clock opened."""

    def __init__(self, t):
        self.t = t

    def __eq__(self, other):
        return isinstance(other, str) and other.isdigit() and self.t // S <= int(other) < self.t // S + 5

    def __repr__(self):
        return "near_s(%d)" % (self.t // S)


def local(zone, y, mo, d, h, mi=0):
    return usec(datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(zone)))


def rule(robot, rule_id="toilet-activity", zone="Europe/Amsterdam", start="07:00", end="22:00", window="2h"):
    return dict(robot_id=robot, rule_id=rule_id, timezone=zone, start=start, end=end, window=window)


class Azi3Case(unittest.TestCase):
    RULES = [rule(42)]
    RETENTION = "24h"

    def setUp(self):
        self.peers = Peers()
        self.addCleanup(self.peers.stop)
        self.tmp = tempfile.mkdtemp(prefix="azi3-e2e-")
        self.config = os.path.join(self.tmp, "azi3.yaml")
        self.write_config(self.RULES)
        self.store = Store(os.path.join(self.tmp, "azi3.db"))
        jobs = ""
        for j in JOBS:
            jobs += ("  - name: %s\n    plugin: %s\n    schedule: \"@yearly\"\n    enabled: false\n"
                     "    timeout: 30s\n    params: { config: %s }\n" %
                     (j, j + ".so", self.config))
        # plugins load from plugin_dir only
        self.daemon = Daemon(jobs, tmp=self.tmp, plugin_dir=os.path.join(BUILDDIR, ".libs"))
        self.addCleanup(self.daemon.cleanup)
        self.start_daemon()

    def start_daemon(self):
        self.daemon.messages = []  # a restart waits for its own READY=1
        self.daemon.start(extra_env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})

    def write_config(self, rules):
        text = ("store: azi3.db\n"
                "megazord: { base_url: %s, timeout: 2s }\n"
                "sqs: { endpoint: %s, region: eu-west-1, queue_url: %s, wait_time: 0s, visibility_timeout: 30s }\n"
                "retention: %s\nrules:\n" % (self.peers.megazord, self.peers.sqs_endpoint, self.peers.queue_url,
                                             self.RETENTION))
        for r in rules:
            text += "  - " + "\n    ".join('%s: "%s"' % kv if isinstance(kv[1], str) else "%s: %s" % kv
                                          for kv in r.items()) + "\n"
        with open(self.config, "w") as f:
            f.write(text)

    def run_job(self, job, at, status="succeeded"):
        r = self.daemon.ctl({"command": "run", "job": job, "at": at, "wait": True})
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r["status"], status, "%s at %s: %s" % (job, iso(at), r))
        return r["message"]

    def consume(self, at, *messages):
        for m in messages:
            self.peers.send(m)
        msg = self.run_job("sqs-consumer", at)
        self.assertEqual(self.peers.queue_depth(), 0, msg)
        return msg

    def only_session(self):
        ss = self.store.sessions()
        self.assertEqual(len(ss), 1, ss)
        return ss[0]

    def assert_windows(self, session_id, expected):
        """EXPECTED: (since, until, reason or None if current, closing event id or None, alarm state)."""
        got = [(w["since_usec"], w["until_usec"], w["reason"], w["closing_event_id"], w["alarm_state"])
               for w in self.store.windows(session_id)]
        self.assertEqual(len(got), len(expected), "windows:\n%s\nexpected:\n%s" % (
            "\n".join(map(str, got)), "\n".join(map(str, expected))))
        for g, e in zip(got, expected):
            self.assertEqual(e, g)

    # exact requests
    @staticmethod
    def subscribe(robot, b):
        return ("POST", SUBSCRIBE % robot, {}, {"eventNames": ["TOILET_ACTIVITY"], "until": iso(b)})

    @staticmethod
    def replay(robot, a):
        return ("GET", INCOMINGS % robot, {"event_name": "TOILET_ACTIVITY",
                                           "created_since": a if isinstance(a, near_s) else str(a // S)}, None)

    @staticmethod
    def alarm(robot, ref):
        return ("POST", INCOMINGS % robot, {},
                {"providerName": "azi-3-status-jobs", "eventName": "NO_TOILET_ACTIVITY_ALARM", "level": 10,
                 "referenceId": ref})

    @staticmethod
    def unsubscribe(robot, sub):
        return ("DELETE", (SUBSCRIBE % robot) + "/%d" % sub, {}, None)

    def refs(self, session_id):
        return [w["alarm_reference_id"] for w in self.store.windows(session_id) if w["alarm_state"]]


def model(a, b, w, cur, runs, settle=SETTLE):
    """8.1 step 3 for expiration runs at RUNS from current window CUR: the windows it yields
    (closed ones and the last current), each as (since, until, reason). A full window is judged
    SETTLE after its until (issue 17)."""
    out = []
    for t in runs:
        since, until = cur
        if until + (settle if until - since == w else 0) <= t:
            out.append((since, until, "expired" if until - since == w else "ended"))
            if until < b and t < b:
                cur = (t, min(t + w, b))
            else:
                cur = None
                break
    if cur:
        out.append((cur[0], cur[1], None))
    return out


class OrdinaryDay(Azi3Case):
    def test_activity_every_90_minutes_no_alarm(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 10, 7), local(z, 2026, 6, 10, 22)
        self.assertEqual((a, b), (utc(2026, 6, 10, 5), utc(2026, 6, 10, 20)))
        msg = self.run_job("monitoring-scheduler", a)
        self.assertEqual(msg, "1 session created (0 events replayed), 1 session open")
        s = self.only_session()
        self.assertEqual((s["local_day"], s["start_usec"], s["end_usec"], s["subscription_id"]),
                         ("2026-06-10", a, b, 100))
        # idempotent: a second run in the same day does nothing
        self.assertEqual(self.run_job("monitoring-scheduler", a + 5 * M), "1 session open")

        events = [(9001 + i, local(z, 2026, 6, 10, 8, 30) + i * 90 * M) for i in range(9)]  # 08:30 .. 20:30
        for sid, t in events:
            self.consume(t + M, sqs_body(42, 100, sid, t))
            self.assertEqual(self.run_job("window-expiration", t + 2 * M), "1 session open")
        msg = self.run_job("window-expiration", b + 30 * S)
        self.assertEqual(msg, "0 sessions open, 1 window ended, 1 session completed")

        s = self.only_session()
        self.assertEqual((s["state"], s["result"]), ("completed", "no_alarms"))
        expected = [(a, a + 2 * H, "activity", 9001, None)]
        for (sid, t), nxt in zip(events, events[1:]):
            expected.append((t, t + 2 * H, "activity", nxt[0], None))
        expected.append((events[-1][1], b, "ended", None, None))
        self.assert_windows(s["id"], expected)
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.unsubscribe(42, 100)])
        self.assertEqual(self.peers.subscriptions(), [])
        self.assertEqual(self.store.pending(), [])
        # every Megazord request carried a fresh Call-Ref
        refs = [r[4].get("Call-Ref") for r in self.peers.requests()]
        self.assertEqual(len(set(refs)), 3, refs)


class LongGap(Azi3Case):
    def test_alarms_at_the_instants_of_8_1(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 11, 7), local(z, 2026, 6, 11, 22)
        e = local(z, 2026, 6, 11, 8)
        self.run_job("monitoring-scheduler", a)
        self.consume(e + M, sqs_body(42, 100, 9101, e))
        # the window [08:00, 10:00) is still running at 09:59:59
        self.assertEqual(self.run_job("window-expiration", e + 2 * H - S), "1 session open")
        # ... and at 10:00:29, settling (issue 17)
        self.assertEqual(self.run_job("window-expiration", e + 2 * H + SETTLE - S), "1 session open")
        runs = [e + 2 * H + SETTLE, e + 4 * H + M + SETTLE, e + 6 * H + 2 * M + SETTLE, e + 8 * H + 3 * M + SETTLE,
                e + 10 * H + 4 * M + SETTLE, e + 12 * H + 5 * M + SETTLE, b + 30 * S]
        msgs = [self.run_job("window-expiration", t) for t in runs]
        self.assertEqual(msgs[0], "1 session open, 1 window expired, 1 alarm posted")
        self.assertEqual(msgs[-1], "0 sessions open, 1 window ended, 1 session completed")

        s = self.only_session()
        self.assertEqual((s["state"], s["result"]), ("completed", "alarms_raised"))
        expected = [(a, a + 2 * H, "activity", 9101, None)]
        for since, until, reason in model(a, b, 2 * H, (e, e + 2 * H), runs):
            opened_by_run = since != e
            expected.append((near(since) if opened_by_run else since,
                             near(until) if opened_by_run and until != b else until,
                             reason, None, "alarmed" if reason == "expired" else None))
        self.assert_windows(s["id"], expected)
        # the first alarm: exactly the window [08:00, 10:00), posted by the run at 10:00:30
        ws = self.store.windows(s["id"])
        self.assertEqual((ws[1]["since_usec"], ws[1]["until_usec"]), (e, e + 2 * H))
        self.assertEqual(ws[1]["alarm_posted_usec"], near(e + 2 * H + SETTLE))
        refs = self.refs(s["id"])
        self.assertEqual(len(refs), 6)
        # each alarm after a replay of its window's history
        sinces = [e] + [near_s(t) for t in runs[:5]]
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a)] +
                         [c for since, r in zip(sinces, refs) for c in (self.replay(42, since), self.alarm(42, r))] +
                         [self.unsubscribe(42, 100)])


class DuplicatesAndOrder(Azi3Case):
    def test_duplicated_out_of_order_and_replay_overlap(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 12, 7), local(z, 2026, 6, 12, 22)
        t1, t2, t3, t4, t5 = (local(z, 2026, 6, 12, h, m) for h, m in ((7, 10), (8, 20), (8, 40), (9, 30), (9, 0)))
        self.peers.seed([incoming(42, 9001, t1)])
        self.assertEqual(self.run_job("monitoring-scheduler", a + 30 * M),
                         "1 session created (1 event replayed), 1 session open")
        # one batch: the replayed event again, two events out of order, one of them twice
        msg = self.consume(t3 + M, sqs_body(42, 100, 9001, t1), sqs_body(42, 100, 9003, t3),
                           sqs_body(42, 100, 9002, t2), sqs_body(42, 100, 9003, t3))
        self.assertEqual(msg, "4 messages received, 2 events applied, 2 duplicates, 4 deleted")
        msg = self.consume(t4 + M, sqs_body(42, 100, 9002, t2), sqs_body(42, 100, 9004, t4))
        self.assertEqual(msg, "2 messages received, 1 event applied, 1 duplicate, 2 deleted")
        # older than the current window's since: recorded as stale, nothing else changes
        msg = self.consume(t4 + 2 * M, sqs_body(42, 100, 9005, t5))
        self.assertEqual(msg, "1 message received, 1 stale event, 1 deleted")
        self.assertEqual(self.run_job("window-expiration", t4 + 2 * H - S), "1 session open")

        s = self.only_session()
        self.assert_windows(s["id"], [
            (a, a + 2 * H, "activity", 9001, None),
            (t1, t1 + 2 * H, "activity", 9002, None),
            (t2, t2 + 2 * H, "activity", 9003, None),
            (t3, t3 + 2 * H, "activity", 9004, None),
            (t4, t4 + 2 * H, None, None, None),
        ])
        evs = [(e["source_event_id"], e["outcome"]) for e in self.store.events(s["id"])]
        self.assertEqual(evs, [(9001, "applied"), (9002, "applied"), (9003, "applied"), (9005, "stale"),
                               (9004, "applied")])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a)])


class LateStartAndRestart(Azi3Case):
    def test_late_start_replays_and_restart_keeps_state(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 15, 7), local(z, 2026, 6, 15, 22)
        before, e1, e2 = local(z, 2026, 6, 15, 6, 50), local(z, 2026, 6, 15, 7, 30), local(z, 2026, 6, 15, 10, 15)
        self.peers.seed([incoming(42, 8999, before), incoming(42, 9001, e1), incoming(42, 9002, e2)])
        late = local(z, 2026, 6, 15, 11)
        self.assertEqual(self.run_job("monitoring-scheduler", late),
                         "1 session created (2 events replayed), 1 session open")
        s = self.only_session()
        # first window [A, A+W) whenever created; 10:15 came after [07:30, 09:30) ran out: late
        self.assert_windows(s["id"], [
            (a, a + 2 * H, "activity", 9001, None),
            (e1, e1 + 2 * H, "expired", 9002, "owed"),
            (e2, e2 + 2 * H, None, None, None),
        ])
        # issue 17: the gap ended at 09:30, 1 h 30 min ago, longer than max_alarm_age (1 h): too
        # late to help, recorded and not posted (before issue 17: posted)
        self.assertEqual(self.run_job("window-expiration", late + 30 * S),
                         "1 session open, 1 alarm too late (not posted)")
        self.assertIn("NOT POSTED, recorded as too_late", self.daemon.log())

        # restart mid-day; an event arrives while the daemon is down
        self.daemon.stop()
        e3 = local(z, 2026, 6, 15, 12)
        self.peers.send(sqs_body(42, 100, 9003, e3))
        self.start_daemon()
        # issue 17: the first run of the new daemon replays the open session (nothing new here)
        self.assertEqual(self.run_job("monitoring-scheduler", local(z, 2026, 6, 15, 13)),
                         "1 session open, 1 open session replayed (0 events applied)")
        self.consume(local(z, 2026, 6, 15, 13, 1))
        self.assertEqual(self.run_job("window-expiration", local(z, 2026, 6, 15, 13, 2)), "1 session open")
        self.assert_windows(s["id"], [
            (a, a + 2 * H, "activity", 9001, None),
            (e1, e1 + 2 * H, "expired", 9002, "too_late"),
            (e2, e2 + 2 * H, "activity", 9003, None),
            (e3, e3 + 2 * H, None, None, None),
        ])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, e2)])


class MegazordFailures(Azi3Case):
    def test_subscribe_500_and_replay_timeout_leave_nothing_then_succeed(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 16, 7), local(z, 2026, 6, 16, 22)
        self.peers.fault(route="subscribe", status=500)
        msg = self.run_job("monitoring-scheduler", a, status="failed")
        self.assertIn("Megazord subscribe", msg)
        self.assertIn("500", msg)
        self.assertEqual(self.store.sessions(), [])
        # subscribed, then the replay times out: the subscription is undone
        self.peers.fault(route="replay", delay=3)
        msg = self.run_job("monitoring-scheduler", a + M, status="failed")
        self.assertIn("Megazord replay", msg)
        self.assertIn("subscription undone", msg)
        self.assertEqual(self.store.sessions(), [])
        self.assertEqual(self.peers.subscriptions(), [])
        self.assertEqual(self.run_job("monitoring-scheduler", a + 2 * M),
                         "1 session created (0 events replayed), 1 session open")
        self.assertEqual(self.only_session()["subscription_id"], 101)
        self.assertEqual(self.peers.calls(), [
            self.subscribe(42, b),                                       # 500
            self.subscribe(42, b), self.replay(42, a), self.unsubscribe(42, 100),   # replay timed out
            self.subscribe(42, b), self.replay(42, a)])

    def test_alarm_500_and_timeout_are_retried_with_the_same_reference(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 17, 7), local(z, 2026, 6, 17, 22)
        self.run_job("monitoring-scheduler", a)
        self.peers.fault(route="alarm", status=500)
        msg = self.run_job("window-expiration", a + 2 * H + SETTLE, status="failed")
        self.assertIn("stays owed", msg)
        self.assertIn("1 window expired, 1 alarm still owed", msg)
        s = self.only_session()
        self.assertEqual(self.store.windows(s["id"])[0]["alarm_state"], "owed")
        # a timeout: Megazord may have taken it, the run cannot know; still owed
        self.peers.fault(route="alarm", delay=3)
        msg = self.run_job("window-expiration", a + 2 * H + M + SETTLE, status="failed")
        self.assertIn("1 alarm still owed", msg)
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + 2 * M + SETTLE), "1 session open, 1 alarm posted")
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + 3 * M + SETTLE), "1 session open")
        ref = self.refs(s["id"])
        self.assertEqual(len(ref), 1)
        self.assertEqual(self.store.windows(s["id"])[0]["alarm_state"], "alarmed")
        # the history is read once, when the window is judged; the confirmation is kept
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, a)] +
                         [self.alarm(42, ref[0])] * 3)


class SpringForward(Azi3Case):
    RULES = [rule(42, "spring-a-in-gap", start="02:30", end="22:00"),
             rule(43, "night-b-in-gap", start="22:00", end="02:30")]

    def test_amsterdam_spring_forward(self):
        # 2026-03-29: 02:00 CET -> 03:00 CEST. 02:30 does not exist: A is 03:00 CEST = 01:00Z.
        a = utc(2026, 3, 29, 1)
        b = utc(2026, 3, 29, 20)  # 22:00 CEST
        # the night session of the 28th: 22:00 CET = 21:00Z to "02:30" on the 29th = 01:00Z
        na, nb = utc(2026, 3, 28, 21), utc(2026, 3, 29, 1)
        self.assertEqual(self.run_job("monitoring-scheduler", na), "1 session created (0 events replayed), 1 session open")
        # 23:59Z: the 4 hours of the night session contain a 2h window; B cuts the second
        self.assertEqual(self.run_job("window-expiration", na + 2 * H + SETTLE),
                         "1 session open, 1 window expired, 1 alarm posted")
        msg = self.run_job("monitoring-scheduler", a)
        self.assertEqual(msg, "1 session created (0 events replayed), 1 session open")
        self.assertEqual(self.run_job("window-expiration", nb + S),
                         "1 session open, 1 window ended, 1 session completed")
        ss = {s["rule_id"]: s for s in self.store.sessions()}
        night, day = ss["night-b-in-gap"], ss["spring-a-in-gap"]
        # not one event all night: no_events (issue 17; before it: alarms_raised)
        self.assertEqual((night["local_day"], night["start_usec"], night["end_usec"], night["result"]),
                         ("2026-03-28", na, nb, "no_events"))
        self.assertEqual((day["local_day"], day["start_usec"], day["end_usec"]), ("2026-03-29", a, b))
        self.assert_windows(night["id"], [(na, na + 2 * H, "expired", None, "alarmed"),
                                          (near(na + 2 * H + SETTLE), nb, "ended", None, None)])
        self.assert_windows(day["id"], [(a, a + 2 * H, None, None, None)])
        self.assertEqual(self.peers.calls(), [
            self.subscribe(43, nb), self.replay(43, na), self.replay(43, na), self.alarm(43, self.refs(night["id"])[0]),
            self.subscribe(42, b), self.replay(42, a), self.unsubscribe(43, 100)])


class FallBack(Azi3Case):
    RULES = [rule(44, "fall-a-repeated", start="02:30", end="23:00")]

    def test_amsterdam_fall_back(self):
        # 2026-10-25: 03:00 CEST -> 02:00 CET. 02:30 happens twice: A is the first, 02:30 CEST = 00:30Z.
        a, b = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 22)  # B: 23:00 CET
        # at 00:29Z nothing starts; 00:30Z starts the fall-back day
        self.assertEqual(self.run_job("monitoring-scheduler", a - M), "0 sessions open")
        self.assertEqual(self.run_job("monitoring-scheduler", a), "1 session created (0 events replayed), 1 session open")
        e = utc(2026, 10, 25, 1, 40)  # 02:40 CET, the second 02:40 of the night
        self.consume(e + M, sqs_body(44, 100, 9500, e))
        s = self.only_session()
        self.assertEqual((s["local_day"], s["start_usec"], s["end_usec"]), ("2026-10-25", a, b))
        self.assert_windows(s["id"], [(a, a + 2 * H, "activity", 9500, None), (e, e + 2 * H, None, None, None)])
        self.assertEqual(self.peers.calls(), [self.subscribe(44, b), self.replay(44, a)])


class TwoRobotsTwoZones(Azi3Case):
    RULES = [rule(7, zone="America/New_York", start="07:00", end="19:00"),
             rule(8, zone="Asia/Kolkata", start="07:00", end="19:00")]

    def test_new_york_and_kolkata_in_one_store(self):
        # 2026-03-09: New York on EDT since the 8th (UTC-4); Kolkata UTC+5:30
        ka, kb = utc(2026, 3, 9, 1, 30), utc(2026, 3, 9, 13, 30)
        na, nb = utc(2026, 3, 9, 11), utc(2026, 3, 9, 23)
        self.assertEqual(self.run_job("monitoring-scheduler", ka), "1 session created (0 events replayed), 1 session open")
        self.assertEqual(self.run_job("monitoring-scheduler", na), "1 session created (0 events replayed), 2 sessions open")
        ss = {s["robot_id"]: s for s in self.store.sessions()}
        self.assertEqual((ss[8]["local_day"], ss[8]["start_usec"], ss[8]["end_usec"], ss[8]["subscription_id"]),
                         ("2026-03-09", ka, kb, 100))
        self.assertEqual((ss[7]["local_day"], ss[7]["start_usec"], ss[7]["end_usec"], ss[7]["subscription_id"]),
                         ("2026-03-09", na, nb, 101))
        e7, e8 = na + 30 * M, na + 31 * M
        msg = self.consume(na + 40 * M, sqs_body(7, 101, 7001, e7), sqs_body(8, 100, 8001, e8),
                           sqs_body(8, 101, 8002, e8))  # robot 8 with robot 7's subscription: unknown
        self.assertEqual(msg, "3 messages received, 1 event applied, 1 late event, 1 unknown subscription, 3 deleted")
        self.assert_windows(ss[7]["id"], [(na, na + 2 * H, "activity", 7001, None), (e7, e7 + 2 * H, None, None, None)])
        # Kolkata's first window ran out at 03:30Z; 8001 is late: closes it as expired
        self.assert_windows(ss[8]["id"], [(ka, ka + 2 * H, "expired", 8001, "owed"), (e8, kb, None, None, None)])

        out = subprocess.run([AZI3CTL, "--config", self.config, "sessions", "--robot", "8", "--json"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = json.loads(out.stdout)
        self.assertEqual([(r["robot_id"], r["a"], r["alarms_owed"]) for r in rows],
                         [(8, "2026-03-09T07:00:00.000+05:30", 1)])
        out = subprocess.run([AZI3CTL, "--config", self.config, "windows", str(ss[8]["id"])],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("expired", out.stdout)
        self.assertIn("event 8001", out.stdout)
        out = subprocess.run([AZI3CTL, "--config", self.config, "windows", "999"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        out = subprocess.run([AZI3CTL, "--config", self.config, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)


class Cleanup(Azi3Case):
    def test_retention_stale_sessions_and_failed_unsubscription(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 18, 7), local(z, 2026, 6, 18, 22)
        self.run_job("monitoring-scheduler", a)
        e = b - 30 * M  # 21:30: the last window is cut by B
        for i in range(1, 9):  # every 100 minutes, 08:40 .. 20:20
            self.peers.send(sqs_body(42, 100, 9000 + i, a + i * 100 * M))
        self.peers.send(sqs_body(42, 100, 9010, e))
        self.run_job("sqs-consumer", e + M)
        # window-expiration did not run after B (downtime); its DELETE will fail once
        self.peers.fault(route="unsubscribe", status=503)
        msg = self.run_job("session-cleanup", b + 2 * H, status="failed")
        self.assertIn("deleting subscription 100 of robot 42 failed", msg)
        self.assertIn("0 old sessions deleted, 1 stale session completed", msg)
        s = self.only_session()
        self.assertEqual((s["state"], s["result"]), ("completed", "no_alarms"))
        self.assertEqual([(p["subscription_id"], p["attempts"]) for p in self.store.pending()], [(100, 1)])
        # not due yet (backoff), then retried and gone
        self.assertEqual(self.run_job("session-cleanup", b + 2 * H + M),
                         "0 old sessions deleted")
        self.assertEqual(self.run_job("session-cleanup", b + 3 * H),
                         "0 old sessions deleted, 1 pending unsubscription done")
        self.assertEqual(self.store.pending(), [])
        # kept for the retention (24h after completion), then deleted with its windows and events
        self.assertEqual(self.run_job("session-cleanup", b + 2 * H + 23 * H), "0 old sessions deleted")
        self.assertEqual(self.run_job("session-cleanup", b + 2 * H + 25 * H), "1 old session deleted")
        self.assertEqual(self.store.sessions(), [])
        self.assertEqual(self.store.rows("SELECT count(*) AS n FROM windows")[0]["n"], 0)
        self.assertEqual(self.store.rows("SELECT count(*) AS n FROM events")[0]["n"], 0)
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.unsubscribe(42, 100),
                                              self.unsubscribe(42, 100)])
        self.assertEqual(self.peers.subscriptions(), [])


class BadMessages(Azi3Case):
    def test_malformed_body_and_unknown_subscription(self):
        z = "Europe/Amsterdam"
        a = local(z, 2026, 6, 19, 7)
        self.run_job("monitoring-scheduler", a)
        s = self.only_session()
        before = self.store.windows(s["id"])
        msg = self.consume(a + 10 * M, "this is not JSON", {"event": {"id": 1}},
                           sqs_body(42, 999, 9001, a + 5 * M))
        self.assertEqual(msg, "3 messages received, 2 malformed, 1 unknown subscription, 3 deleted")
        self.assertEqual(self.store.windows(s["id"]), before)
        self.assertEqual(self.store.events(s["id"]), [])
        self.assertIn("malformed body", self.daemon.log())
        self.assertIn("no session has subscription 999 of robot 42", self.daemon.log())

    def test_events_dated_after_the_runs_clock_are_not_applied(self):
        """An event cannot have happened after the run's clock. Applied, one dated late in the
        day closed the current window as expired hours early (an alarm without a gap) and left
        nothing to monitor until B. From SQS: a few minutes ahead (clocks apart) it is left for
        redelivery; further ahead it is refused as malformed. In the replay that creates a
        session it is left to SQS or the history read before a window is judged."""
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 6, 20, 7), local(z, 2026, 6, 20, 22)
        self.peers.seed([incoming(42, 9401, b - 10 * M)])
        self.assertIn("1 session created", self.run_job("monitoring-scheduler", a + M))
        s = self.only_session()
        self.assert_windows(s["id"], [(a, a + 2 * H, None, None, None)])
        self.assertEqual(self.store.events(s["id"]), [])

        self.peers.send(sqs_body(42, 100, 9402, a + 3 * H))
        self.peers.send(sqs_body(42, 100, 9403, a + 5 * M))
        self.assertEqual(self.run_job("sqs-consumer", a + 2 * M),
                         "2 messages received, 1 malformed, 1 dated ahead (left for redelivery), 1 deleted")
        self.assertEqual(self.peers.queue_depth(), 1)  # the one 3 min ahead, in flight
        self.assert_windows(s["id"], [(a, a + 2 * H, None, None, None)])
        self.assertEqual(self.store.events(s["id"]), [])
        log = self.daemon.log()
        self.assertIn("event 9402 of robot 42 is dated", log)
        self.assertIn("more than 5 min ahead, deleted as malformed", log)
        self.assertIn("event 9403 of robot 42 is dated", log)
        self.assertIn("left for redelivery", log)
        # no window ran out: nothing to judge, no alarm
        self.assertEqual(self.run_job("window-expiration", a + 3 * M), "1 session open")
        self.assertEqual([c for c in self.peers.calls() if c[0] == "POST" and c[1] == INCOMINGS % 42], [])

    def test_an_event_id_of_zero_is_malformed_not_a_poison_batch(self):
        """The store keeps source event ids as positive: a 0 accepted failed the whole batch, so
        the good messages received with it came back for ever with it."""
        z = "Europe/Amsterdam"
        a = local(z, 2026, 6, 21, 7)
        self.run_job("monitoring-scheduler", a)
        s = self.only_session()
        msg = self.consume(a + 20 * M, sqs_body(42, 100, 0, a + 5 * M), sqs_body(42, 100, 9501, a + 10 * M))
        self.assertEqual(msg, "2 messages received, 1 event applied, 1 malformed, 2 deleted")
        self.assertEqual([e["source_event_id"] for e in self.store.events(s["id"])], [9501])
        self.assertIn('"sourceEventId" is not a positive integer', self.daemon.log())

    def test_sqs_unreachable_is_retry_naming_sqs(self):
        self.peers.sqs_proc.terminate()
        self.peers.sqs_proc.wait()
        msg = self.run_job("sqs-consumer", utc(2026, 6, 19, 6), status="failed")
        self.assertIn("receiving from SQS failed", msg)
        self.assertIn(self.peers.sqs_endpoint.split("//")[1], msg)


# --- issue 17: no false alarms ---------------------------------------------------------------

REF = re.compile(r"^azi3-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)$")


def compact(t):
    return datetime.fromtimestamp(t // S, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class LateDelivery(Azi3Case):
    def test_event_10s_before_the_end_delivered_50s_late_closes_as_activity(self):
        # the audit's case: 08:59:50 recorded by Megazord, SQS delivers it at 09:00:40
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 1, 7), local(z, 2026, 7, 1, 22)
        e = a + 2 * H - 10 * S
        self.run_job("monitoring-scheduler", a)
        self.peers.seed([incoming(42, 9201, e)])
        # at until: settling, nothing judged yet
        self.assertEqual(self.run_job("window-expiration", a + 2 * H), "1 session open")
        # at until + settle: judged on Megazord's history, which has the event: activity
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + SETTLE), "1 session open")
        # SQS's late delivery is a duplicate
        self.assertEqual(self.consume(a + 2 * H + 40 * S, sqs_body(42, 100, 9201, e)),
                         "1 message received, 1 duplicate, 1 deleted")
        s = self.only_session()
        self.assert_windows(s["id"], [(a, a + 2 * H, "activity", 9201, None), (e, e + 2 * H, None, None, None)])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, a)])

    def test_delivery_within_the_settle_closes_as_activity_without_history(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 2, 7), local(z, 2026, 7, 2, 22)
        e = a + 2 * H - 10 * S
        self.run_job("monitoring-scheduler", a)
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + 5 * S), "1 session open")
        # delivered 20 s late, inside the settle: it closes the window in time
        self.assertEqual(self.consume(a + 2 * H + 10 * S, sqs_body(42, 100, 9202, e)),
                         "1 message received, 1 event applied, 1 deleted")
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + SETTLE), "1 session open")
        s = self.only_session()
        self.assert_windows(s["id"], [(a, a + 2 * H, "activity", 9202, None), (e, e + 2 * H, None, None, None)])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a)])


class LostDelivery(Azi3Case):
    def test_event_only_in_megazords_history(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 3, 7), local(z, 2026, 7, 3, 22)
        e = local(z, 2026, 7, 3, 8)
        self.run_job("monitoring-scheduler", a)
        self.peers.seed([incoming(42, 9301, e)])  # SQS never delivers it
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + SETTLE), "1 session open")
        s = self.only_session()
        self.assert_windows(s["id"], [(a, a + 2 * H, "activity", 9301, None), (e, e + 2 * H, None, None, None)])
        self.assertIn("events from Megazord's history that SQS had not delivered", self.daemon.log())
        # the next window runs out for real: judged on the history again, and alarmed
        self.assertEqual(self.run_job("window-expiration", e + 2 * H + SETTLE),
                         "1 session open, 1 window expired, 1 alarm posted")
        ref = self.refs(s["id"])
        self.assertEqual(len(ref), 1)
        # the alarm names its window: azi3-<uuid>-<since>-<until>, the same on every attempt
        self.assertEqual(REF.match(ref[0]).groups(), (compact(e), compact(e + 2 * H)))
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, a),
                                              self.replay(42, e), self.alarm(42, ref[0])])


class HistoryUnreadable(Azi3Case):
    def test_alarm_held_until_the_history_can_be_checked(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 4, 7), local(z, 2026, 7, 4, 22)
        self.run_job("monitoring-scheduler", a)
        self.peers.fault(route="replay", status=503)
        msg = self.run_job("window-expiration", a + 2 * H + SETTLE, status="failed")
        self.assertIn("Megazord's history cannot be read, so no alarm is posted unverified", msg)
        self.assertIn("1 window expired, 1 alarm still owed", msg)
        s = self.only_session()
        w = self.store.windows(s["id"])[0]
        self.assertEqual((w["reason"], w["alarm_state"], w["alarm_verified_usec"]), ("expired", "owed", None))
        # readable again and shows no activity: posted
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + M + SETTLE), "1 session open, 1 alarm posted")
        ref = self.refs(s["id"])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, a),
                                              self.replay(42, a), self.alarm(42, ref[0])])

    def test_held_alarm_withdrawn_when_the_history_shows_activity(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 5, 7), local(z, 2026, 7, 5, 22)
        e = local(z, 2026, 7, 5, 8, 30)
        self.run_job("monitoring-scheduler", a)
        self.peers.fault(route="replay", status=503)
        self.run_job("window-expiration", a + 2 * H + SETTLE, status="failed")
        # Megazord had the 08:30 event all along; SQS lost it
        self.peers.seed([incoming(42, 9401, e)])
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + M + SETTLE),
                         "1 session open, 1 window judged again on history")
        s = self.only_session()
        # judged again: the window the failed run opened is gone, 08:30 closed the first
        self.assert_windows(s["id"], [(a, a + 2 * H, "activity", 9401, None), (e, e + 2 * H, None, None, None)])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, a),
                                              self.replay(42, a)])


class DaemonDown(Azi3Case):
    def test_30_minutes_down_mid_window_events_come_from_the_replay(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 6, 7), local(z, 2026, 7, 6, 22)
        e1, e2, e3 = local(z, 2026, 7, 6, 7, 30), local(z, 2026, 7, 6, 8, 10), local(z, 2026, 7, 6, 8, 20)
        self.run_job("monitoring-scheduler", a)
        self.consume(e1 + M, sqs_body(42, 100, 9501, e1))
        self.daemon.stop()                     # 08:00 .. 08:30: down
        self.peers.seed([incoming(42, 9501, e1), incoming(42, 9502, e2), incoming(42, 9503, e3)])
        # their SQS messages are lost (never sent here): only Megazord's history has them
        self.start_daemon()
        back = local(z, 2026, 7, 6, 8, 30)
        self.assertEqual(self.run_job("monitoring-scheduler", back),
                         "1 session open, 1 open session replayed (2 events applied)")
        # a second run of the same daemon, SQS heard recently: no replay
        self.consume(back + 10 * S)
        self.assertEqual(self.run_job("monitoring-scheduler", back + M), "1 session open")
        # 09:30, when [07:30, 09:30) would have expired without the replay: nothing due
        self.assertEqual(self.run_job("window-expiration", e1 + 2 * H + SETTLE), "1 session open")
        s = self.only_session()
        self.assert_windows(s["id"], [
            (a, a + 2 * H, "activity", 9501, None),
            (e1, e1 + 2 * H, "activity", 9502, None),
            (e2, e2 + 2 * H, "activity", 9503, None),
            (e3, e3 + 2 * H, None, None, None),
        ])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, e1)])

    def test_sqs_deaf_longer_than_replay_after_replays_open_sessions(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 7, 7), local(z, 2026, 7, 7, 22)
        e1, e2 = local(z, 2026, 7, 7, 7, 30), local(z, 2026, 7, 7, 7, 45)
        self.run_job("monitoring-scheduler", a)
        self.consume(e1 + M, sqs_body(42, 100, 9601, e1))
        self.assertEqual(self.run_job("monitoring-scheduler", e1 + 2 * M), "1 session open")
        # SQS goes away (expired credentials look the same); Megazord records 07:45
        self.peers.sqs_proc.terminate()
        self.peers.sqs_proc.wait()
        self.run_job("sqs-consumer", e1 + 5 * M, status="failed")
        self.peers.seed([incoming(42, 9601, e1), incoming(42, 9602, e2)])
        self.assertEqual(self.run_job("monitoring-scheduler", e2 + M),
                         "1 session open, 1 open session replayed (1 event applied)")
        self.assertRegex(self.daemon.log(), r"sqs-consumer has not completed a receive for 1[45]m([0-9]+s)?\n")
        s = self.only_session()
        self.assert_windows(s["id"], [(a, a + 2 * H, "activity", 9601, None), (e1, e1 + 2 * H, "activity", 9602, None),
                                      (e2, e2 + 2 * H, None, None, None)])
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, e1)])


class RulesChangeMidDay(Azi3Case):
    RULES = [rule(42), rule(43)]

    def test_rule_removed_completes_its_session_and_drops_its_owed_alarm(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 8, 7), local(z, 2026, 7, 8, 22)
        self.assertEqual(self.run_job("monitoring-scheduler", a), "2 sessions created (0 events replayed), 2 sessions open")
        ss = {x["robot_id"]: x for x in self.store.sessions()}
        # the robots subscribe concurrently: Megazord numbers them in whichever order they arrive
        sub42, sub43 = ss[42]["subscription_id"], ss[43]["subscription_id"]
        self.assertEqual(sorted([sub42, sub43]), [100, 101])
        # both first windows run out; Megazord refuses both alarms once: both stay owed
        self.peers.fault(route="alarm", status=503, count=2)
        msg = self.run_job("window-expiration", a + 2 * H + SETTLE, status="failed")
        self.assertIn("2 windows expired, 2 alarms still owed", msg)
        r42, r43 = self.refs(ss[42]["id"])[0], self.refs(ss[43]["id"])[0]
        # 43 leaves the file: its session completes at the next run, its owed alarm is dropped
        self.write_config([rule(42)])
        self.assertEqual(self.run_job("monitoring-scheduler", a + 2 * H + M),
                         "1 session open, 1 session of a removed rule completed")
        s43 = [x for x in self.store.sessions() if x["robot_id"] == 43][0]
        self.assertEqual((s43["state"], s43["result"]), ("completed", "rule_removed"))
        self.assertEqual([(w["reason"], w["alarm_state"]) for w in self.store.windows(s43["id"])],
                         [("expired", "dropped"), ("ended", None)])
        self.assertIn("rule no longer in", self.daemon.log())
        # no alarm for 43 after that; 42's is posted
        self.assertEqual(self.run_job("window-expiration", a + 2 * H + 2 * M), "1 session open, 1 alarm posted")
        self.assertEqual(self.peers.subscriptions(), [{"id": sub42, "robotId": 42, "eventNames": ["TOILET_ACTIVITY"],
                                                       "until": iso(b)}])
        # the robots' calls overlap (issue 16); each robot's go out in order
        def per_robot(calls):
            out = {}
            for c in calls:
                out.setdefault(re.search(r"/robots/(\d+)/", c[1]).group(1), []).append(c)
            return out
        self.assertEqual(per_robot(self.peers.calls()), per_robot([
            self.subscribe(42, b), self.replay(42, a), self.subscribe(43, b), self.replay(43, a),
            self.replay(42, a), self.alarm(42, r42), self.replay(43, a), self.alarm(43, r43),  # both 503
            self.unsubscribe(43, sub43),
            self.alarm(42, r42)]))

    def test_rule_changed_mid_day_takes_effect_with_the_next_session(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 9, 7), local(z, 2026, 7, 9, 22)
        self.write_config([rule(42)])
        self.run_job("monitoring-scheduler", a)
        e = local(z, 2026, 7, 9, 8)
        self.consume(e + M, sqs_body(42, 100, 9701, e))
        self.consume(local(z, 2026, 7, 9, 9, 59))  # SQS heard: no replay below
        # at 10:00 the rule changes: 09:00-20:00, 1h windows
        self.write_config([rule(42, start="09:00", end="20:00", window="1h")])
        self.assertEqual(self.run_job("monitoring-scheduler", local(z, 2026, 7, 9, 10)), "1 session open")
        # today's session keeps the rule it was created with: A 07:00, B 22:00, 2h windows
        s = self.only_session()
        self.assertEqual((s["start_usec"], s["end_usec"], s["window_usec"]), (a, b, 2 * H))
        self.assertEqual(self.run_job("window-expiration", e + H + SETTLE), "1 session open")  # 1h: not yet
        self.assertEqual(self.run_job("window-expiration", e + 2 * H + SETTLE),
                         "1 session open, 1 window expired, 1 alarm posted")
        self.run_job("window-expiration", b + 30 * S)
        self.assertEqual(self.only_session()["state"], "completed")
        # the next day's session is the first with the new rule
        a2, b2 = local(z, 2026, 7, 10, 9), local(z, 2026, 7, 10, 20)
        self.assertEqual(self.run_job("monitoring-scheduler", local(z, 2026, 7, 10, 7)), "0 sessions open")
        self.assertEqual(self.run_job("monitoring-scheduler", a2),
                         "1 session created (0 events replayed), 1 session open")
        s2 = [x for x in self.store.sessions() if x["local_day"] == "2026-07-10"][0]
        self.assertEqual((s2["start_usec"], s2["end_usec"], s2["window_usec"]), (a2, b2, H))
        self.assert_windows(s2["id"], [(a2, a2 + H, None, None, None)])
        # day 1's last full window was judged at 22:00:30, 10 h after its end: too late
        day1 = self.store.windows(s["id"])
        self.assertEqual([w["alarm_state"] for w in day1 if w["alarm_state"]], ["alarmed", "too_late"])
        self.assertEqual(self.peers.calls(), [
            self.subscribe(42, b), self.replay(42, a), self.replay(42, e), self.alarm(42, self.refs(s["id"])[0]),
            self.replay(42, near_s(e + 2 * H + SETTLE)), self.unsubscribe(42, 100),
            self.subscribe(42, b2), self.replay(42, a2)])


class TooLate(Azi3Case):
    def test_owed_alarm_past_max_alarm_age_is_recorded_not_posted(self):
        z = "Europe/Amsterdam"
        a, b = local(z, 2026, 7, 11, 7), local(z, 2026, 7, 11, 22)
        self.run_job("monitoring-scheduler", a)
        self.peers.fault(route="alarm", status=503, count=2)
        self.run_job("window-expiration", a + 2 * H + SETTLE, status="failed")
        self.run_job("window-expiration", a + 2 * H + 30 * M, status="failed")
        # 1 h after the window's end it is too late to send a caregiver for that gap
        msg = self.run_job("window-expiration", a + 3 * H + S)
        self.assertIn("1 alarm too late (not posted)", msg)
        s = self.only_session()
        w = self.store.windows(s["id"])[0]
        self.assertEqual((w["reason"], w["alarm_state"], w["alarm_posted_usec"]), ("expired", "too_late", None))
        self.assertIn("NOT POSTED, recorded as too_late", self.daemon.log())
        ref = w["alarm_reference_id"]
        self.assertEqual(self.peers.calls(), [self.subscribe(42, b), self.replay(42, a), self.replay(42, a),
                                              self.alarm(42, ref), self.alarm(42, ref)])
        # the operator sees it in the job's metrics file
        with open(os.path.join(self.daemon.state, "jobs", "window-expiration", "metrics.prom")) as f:
            metrics = f.read()
        self.assertIn('azi3_alarms{state="too_late"} 1\n', metrics)
        self.assertIn('azi3_windows_closed{reason="expired"} 1\n', metrics)
        self.assertIn("azi3_sessions_open 1\n", metrics)


if __name__ == "__main__":
    why = peers_available()
    if why:
        print("skipped: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
