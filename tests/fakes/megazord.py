#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake of the Megazord events API (SPEC 8.3) for the tests. Python standard library only.

Listens on 127.0.0.1 (a free port unless --port is given) and prints one JSON line when ready:
    {"base_url": "http://127.0.0.1:PORT", "pid": N}
(also written atomically to --ready-file if given). Stops on SIGTERM/SIGINT.

The API of SPEC 8.3:
    POST   /internal/v1/events/robots/{robotId}/subscriptions          -> 201 {id, robotId, eventNames, until}
    DELETE /internal/v1/events/robots/{robotId}/subscriptions/{id}     -> 204, 404 if unknown
    GET    /internal/v1/events/robots/{robotId}/incomings?event_name=E&created_since=S -> 200 [...]
    POST   /internal/v1/events/robots/{robotId}/incomings              -> 201 {id, ...}
Requests that break the contract get 400 {"message": "..."} saying what is wrong.

Connections are served by one asyncio loop with HTTP/1.1 keep-alive, so a client sending many
requests at once (the azi-3 jobs do, issue 16) is served concurrently, at well over 10,000
requests/s: fast enough that a benchmark measures the jobs, not the fake.

Control endpoints (never recorded):
    GET  /_fake/requests       every API request so far: [{method, path, query, headers, body, route}]
    GET  /_fake/routes         how many API requests so far, per route: {"replay": N, ...}
    GET  /_fake/subscriptions  live subscriptions: [{id, robotId, eventNames, until}]
    GET  /_fake/last-alarm     when the last alarm was created (this machine's wall clock, seconds):
                               {"at": T or null}; for the bench's "alarms posted after" figure
    GET  /_fake/concurrency    API requests in progress at once: {"max": N, "max_per_robot": M}
                               (the most overall, and the most for any one robot)
    POST /_fake/reset          forget requests, faults, subscriptions and incomings
    POST /_fake/incomings      seed incomings for replay: a JSON array of
                               {id, robotId, eventName, providerName, createdAt}
    POST /_fake/claims-store   {"path": FILE}: at each alarm POST, read its window in the azi3
                               SQLite store FILE from here, another process, as any other node
                               would see it (issue 15: the claim must be committed before the post)
    GET  /_fake/claim-checks   what those reads found: [{referenceId, claimOwner, alarmState}]
    POST /_fake/fault          arm a fault for the next `count` API calls matching `route`:
        {"route": "subscribe"|"unsubscribe"|"replay"|"alarm"|"any",
         "count": 1 (-1: forever), "status": 500, "body": "text" (default: a JSON message),
         "delay": seconds before answering, "garbage": true (answer the success status with
         malformed JSON)}
      Faults are consumed in the order they were armed.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
import time
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import parse_qs, unquote_plus

ROUTES = [
    ("subscribe", "POST", re.compile(r"^/internal/v1/events/robots/(\d+)/subscriptions$")),
    ("unsubscribe", "DELETE", re.compile(r"^/internal/v1/events/robots/(\d+)/subscriptions/(\d+)$")),
    ("replay", "GET", re.compile(r"^/internal/v1/events/robots/(\d+)/incomings$")),
    ("alarm", "POST", re.compile(r"^/internal/v1/events/robots/(\d+)/incomings$")),
]
ROUTE_NAMES = {name for name, _, _ in ROUTES} | {"any"}
REASONS = {s.value: s.phrase for s in HTTPStatus}
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


class Target:
    """A request target split as the API handlers read it: path and query."""
    __slots__ = ("path", "query")

    def __init__(self, path, query):
        self.path, self.query = path, query


class BadRequest(Exception):
    pass


def parse_rfc3339(s):
    if not isinstance(s, str) or not RFC3339_MS.match(s):
        raise BadRequest(f"'{s}' is not an RFC 3339 UTC time (expected e.g. 2026-03-29T20:00:00.000Z)")
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{datetime.now(timezone.utc).microsecond // 1000:03d}Z"


class State:
    """Everything the fake holds; one thread touches it, so no lock."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = []  # tuples, see request_record()
        self.routes = {}
        self.faults = []
        self.subscriptions = {}
        self.incomings = []
        self.incomings_by_robot = {}  # the same, per robot: a replay reads only its robot's
        self.next_subscription_id = 100
        self.next_incoming_id = 9100
        self.in_flight = 0
        self.in_flight_robot = {}
        self.max_in_flight = 0
        self.max_in_flight_robot = 0
        self.claims_store = None
        self.claim_checks = []
        self.last_alarm_at = None

    def take_fault(self, route):
        for f in self.faults:
            if f["route"] in (route, "any"):
                if f["count"] > 0:
                    f["count"] -= 1
                if f["count"] == 0:
                    self.faults.remove(f)
                return f
        return None


STATE = State()


# The header fields the fake acts on, read from a request head in one pass (by name, any case);
# the rest are parsed only when /_fake/requests shows them. Parsing every line in Python was a
# third of the fake's time per request, and the benchmark's runs waited on it (issue 16).
HEAD_FIELDS = re.compile(r"\r\n(content-length|content-type|connection|expect|transfer-encoding)[ \t]*:[ \t]*"
                         r"([^\r\n]*)", re.I)
# a header line without a colon
HEAD_BAD_LINE = re.compile(r"\r\n([^:\r\n]*)(?=\r\n|\Z)")


def head_headers(head):
    """The header lines of a request HEAD (its request line first), as the client spelled them."""
    out = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        out[name.strip()] = value.strip()
    return out


def query_params(query):
    """A query string's parameters, the first of each name (parse_qs, cut to what the replay
    reads: it cost a sixth of a request's time)."""
    out = {}
    for part in query.split("&"):
        if part:
            k, _, v = part.partition("=")
            if "%" in part or "+" in part:
                k, v = unquote_plus(k), unquote_plus(v)
            out.setdefault(k, v)
    return out


VERBOSE = bool(os.environ.get("FAKE_MEGAZORD_VERBOSE"))


def request_record(r):
    """A request as /_fake/requests shows it, from what dispatch() kept (a tuple: building the
    dict for every request cost more than answering it, and most are never asked for)."""
    method, path, query, head, body, route = r
    return {"method": method, "path": path,
            "query": {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()},
            "headers": head_headers(head), "body": body.decode("utf-8", "replace"), "route": route}


class Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 with keep-alive, requests answered in order.

    One thread serves every connection through asyncio, so the fake costs tens of microseconds
    per request: with a thread per connection the GIL held it near 5,000 requests/s, and the
    azi-3 benchmark measured the fake instead of the jobs (issue 16). A `delay` fault parks only
    its own connection (a timer, not a sleep), so other clients are served meanwhile."""

    MAX_HEAD = 64 * 1024

    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()
        self.busy = False  # a request of this connection waits for its delay fault
        self.close_after = False
        self.continued = False
        self._robot = None

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.serve()

    def connection_lost(self, exc):
        self.transport = None
        self.uncount()

    def serve(self):
        """Answers every complete request in the buffer, until one must wait."""
        while self.transport and not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > self.MAX_HEAD:
                    self.fail(431, "request head over %d bytes" % self.MAX_HEAD)
                return
            head = self.buf[:end].decode("latin-1")
            first = head.partition("\r\n")[0]
            try:
                method, target, version = first.split(" ")
            except ValueError:
                return self.fail(400, "malformed request line %r" % first[:200])
            bad = HEAD_BAD_LINE.search(head)
            if bad:
                return self.fail(400, "malformed header line %r" % bad.group(1)[:200])
            headers = {k.lower(): v.rstrip() for k, v in HEAD_FIELDS.findall(head)}
            if headers.get("transfer-encoding"):
                return self.fail(501, "Transfer-Encoding is not supported here; send Content-Length")
            try:
                n = int(headers.get("content-length") or 0)
            except ValueError:
                n = -1
            if n < 0:
                return self.fail(400, "bad Content-Length")
            if len(self.buf) < end + 4 + n:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            body = bytes(self.buf[end + 4:end + 4 + n])
            del self.buf[:end + 4 + n]
            conn = headers.get("connection", "").lower()
            self.close_after = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
            self.method, self.path, self.headers, self.head = method, target, headers, head
            self.dispatch(method, body)

    def fail(self, status, message):
        self.close_after = True
        self.send(status, {"message": message})

    def log_message(self, fmt, *args):
        if VERBOSE:
            sys.stderr.write("fake-megazord: " + (fmt % args) + "\n")

    def send(self, status, payload=None, raw=None):
        data = b""
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif payload is not None:
            data = json.dumps(payload).encode()
        self.uncount()
        if not self.transport:
            return  # the client gave up (a delay fault outlasted its timeout)
        if VERBOSE:
            self.log_message('"%s %s" %d', getattr(self, "method", "-"), getattr(self, "path", "-"), status)
        head = "HTTP/1.1 %d %s\r\nServer: fake-megazord/1\r\n" % (status, REASONS.get(status, "Status"))
        if data:
            head += "Content-Type: application/json\r\n"
        head += "Content-Length: %d\r\n" % len(data)
        if self.close_after:
            head += "Connection: close\r\n"
        self.transport.write(head.encode() + b"\r\n" + data)
        if self.close_after:
            self.transport.close()
            self.transport = None

    def json_body(self, body):
        if self.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise BadRequest("Content-Type must be application/json")
        try:
            return json.loads(body)
        except ValueError as e:
            raise BadRequest(f"body is not JSON: {e}")

    def dispatch(self, method, body):
        path, _, query = self.path.partition("?")
        path = path.partition("#")[0]
        url = Target(path, query)
        if path.startswith("/_fake/"):
            return self.control(method, path, body)

        route, match = None, None
        for name, m, rx in ROUTES:
            if m == method:
                mm = rx.match(path)
                if mm:
                    route, match = name, mm
                    break
        STATE.requests.append((method, path, query, self.head, body, route))
        STATE.routes[route] = STATE.routes.get(route, 0) + 1
        fault = STATE.take_fault(route) if route else None
        if route is None:
            return self.send(404, {"message": f"no route for {method} {url.path}"})
        robot = int(match.group(1))
        STATE.in_flight += 1
        STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
        n = STATE.in_flight_robot.get(robot, 0) + 1
        STATE.in_flight_robot[robot] = n
        STATE.max_in_flight_robot = max(STATE.max_in_flight_robot, n)
        self._robot = robot
        if fault and fault.get("delay"):
            # the answer waits; this connection reads no further request until it is sent
            self.busy = True
            asyncio.get_running_loop().call_later(float(fault["delay"]), self.delayed, route, match, url, body, fault)
            return
        self.answer(route, match, url, body, fault)

    def delayed(self, route, match, url, body, fault):
        self.busy = False
        try:
            self.answer(route, match, url, body, fault)
        except Exception as e:  # a timer's error would only be logged: close, so the client knows
            sys.stderr.write("fake-megazord: answering a delayed request failed: %r\n" % e)
            if self.transport:
                self.transport.close()
                self.transport = None
            return
        self.serve()

    def answer(self, route, match, url, body, fault):
        try:
            self.api(route, match, url, body, fault)
        finally:
            self.uncount()

    def uncount(self):
        """The request no longer counts as in progress: called before its answer is written,
        so a client that sends the robot's next call on reading it is not seen overlapping."""
        robot, self._robot = self._robot, None
        if robot is not None:
            # a /_fake/reset may have come while the request waited: never below zero
            STATE.in_flight = max(STATE.in_flight - 1, 0)
            STATE.in_flight_robot[robot] = max(STATE.in_flight_robot.get(robot, 0) - 1, 0)

    def api(self, route, match, url, body, fault):
        if fault:
            if fault.get("status"):
                if "body" in fault:
                    return self.send(fault["status"], raw=fault["body"])
                return self.send(fault["status"], {"message": f"injected failure {fault['status']}"})
            if fault.get("garbage"):
                status = 200 if route == "replay" else 204 if route == "unsubscribe" else 201
                return self.send(status, raw='{"id": 12, "robotId": [truncated')

        try:
            getattr(self, "api_" + route)(match, url, body)
        except BadRequest as e:
            self.send(400, {"message": str(e)})

    def api_subscribe(self, m, url, body):
        robot = int(m.group(1))
        req = self.json_body(body)
        names = req.get("eventNames") if isinstance(req, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise BadRequest("eventNames must be a non-empty array of strings")
        parse_rfc3339(req.get("until"))
        sid = STATE.next_subscription_id
        STATE.next_subscription_id += 1
        sub = {"id": sid, "robotId": robot, "eventNames": names, "until": req["until"]}
        STATE.subscriptions[sid] = sub
        self.send(201, sub)

    def api_unsubscribe(self, m, url, body):
        robot, sid = int(m.group(1)), int(m.group(2))
        sub = STATE.subscriptions.get(sid)
        if sub is None or sub["robotId"] != robot:
            return self.send(404, {"message": f"subscription {sid} of robot {robot} not found"})
        del STATE.subscriptions[sid]
        self.send(204)

    def api_replay(self, m, url, body):
        robot = int(m.group(1))
        q = query_params(url.query)
        name = q.get("event_name")
        since = q.get("created_since")
        if not name:
            raise BadRequest("query parameter event_name is required")
        if since is None or not re.fullmatch(r"\d+", since):
            raise BadRequest("query parameter created_since must be unix seconds")
        out = [i for i in STATE.incomings_by_robot.get(robot, ())
               if i["eventName"] == name and parse_rfc3339(i["createdAt"]) >= int(since)]
        out.sort(key=lambda i: (parse_rfc3339(i["createdAt"]), i["id"]))
        self.send(200, out)

    def api_alarm(self, m, url, body):
        robot = int(m.group(1))
        req = self.json_body(body)
        if not isinstance(req, dict):
            raise BadRequest("body must be a JSON object")
        for key in ("providerName", "eventName", "referenceId"):
            if not isinstance(req.get(key), str) or not req[key]:
                raise BadRequest(f"{key} must be a non-empty string")
        if not isinstance(req.get("level"), int) or isinstance(req.get("level"), bool):
            raise BadRequest("level must be an integer")
        if STATE.claims_store:
            STATE.claim_checks.append(claim_check(STATE.claims_store, req["referenceId"]))
        iid = STATE.next_incoming_id
        STATE.next_incoming_id += 1
        inc = {"id": iid, "robotId": robot, "eventName": req["eventName"],
               "providerName": req["providerName"], "level": req["level"],
               "referenceId": req["referenceId"], "createdAt": now_rfc3339()}
        STATE.incomings.append(inc)
        STATE.incomings_by_robot.setdefault(robot, []).append(inc)
        STATE.last_alarm_at = time.time()
        self.send(201, inc)

    def control(self, method, path, body):
        try:
            if method == "GET" and path == "/_fake/requests":
                return self.send(200, [request_record(r) for r in STATE.requests])
            if method == "GET" and path == "/_fake/routes":
                return self.send(200, {str(k): v for k, v in STATE.routes.items()})
            if method == "GET" and path == "/_fake/last-alarm":
                return self.send(200, {"at": STATE.last_alarm_at})
            if method == "GET" and path == "/_fake/concurrency":
                return self.send(200, {"max": STATE.max_in_flight, "max_per_robot": STATE.max_in_flight_robot})
            if method == "GET" and path == "/_fake/subscriptions":
                return self.send(200, list(STATE.subscriptions.values()))
            if method == "GET" and path == "/_fake/claim-checks":
                return self.send(200, list(STATE.claim_checks))
            if method == "POST" and path == "/_fake/claims-store":
                f = json.loads(body)
                if not isinstance(f, dict) or not isinstance(f.get("path"), str):
                    raise BadRequest('expected {"path": FILE}')
                STATE.claims_store = f["path"]
                return self.send(204)
            if method == "POST" and path == "/_fake/reset":
                STATE.reset()
                return self.send(204)
            if method == "POST" and path == "/_fake/incomings":
                items = json.loads(body)
                if not isinstance(items, list):
                    raise BadRequest("expected a JSON array of incomings")
                for i in items:
                    for key in ("id", "robotId", "eventName", "providerName", "createdAt"):
                        if key not in i:
                            raise BadRequest(f"incoming {i} lacks {key}")
                    parse_rfc3339(i["createdAt"])
                STATE.incomings.extend(items)
                for i in items:
                    STATE.incomings_by_robot.setdefault(i["robotId"], []).append(i)
                return self.send(204)
            if method == "POST" and path == "/_fake/fault":
                f = json.loads(body)
                if not isinstance(f, dict) or f.get("route", "any") not in ROUTE_NAMES:
                    raise BadRequest(f"route must be one of {sorted(ROUTE_NAMES)}")
                f.setdefault("route", "any")
                f["count"] = int(f.get("count", 1))
                if f["count"] == 0:
                    raise BadRequest("count must be positive or -1")
                if not (f.get("status") or f.get("delay") or f.get("garbage")):
                    raise BadRequest("a fault needs status, delay or garbage")
                STATE.faults.append(f)
                return self.send(204)
        except (ValueError, BadRequest) as e:
            return self.send(400, {"message": str(e)})
        self.send(404, {"message": f"no control endpoint {method} {path}"})


def claim_check(path, reference):
    """The window of alarm REFERENCE as a separate connection to the store at PATH sees it."""
    out = {"referenceId": reference, "claimOwner": None, "alarmState": None}
    try:
        db = sqlite3.connect(path, timeout=2)
        try:
            row = db.execute("SELECT alarm_claim_owner, alarm_state FROM windows WHERE alarm_reference_id = ?",
                             (reference,)).fetchone()
        finally:
            db.close()
        if row:
            out["claimOwner"], out["alarmState"] = row
    except sqlite3.Error as e:
        out["error"] = str(e)
    return out


def main():
    ap = argparse.ArgumentParser(description="fake Megazord events API for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    asyncio.run(serve(args))


async def serve(args):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    line = json.dumps({"base_url": f"http://127.0.0.1:{port}", "pid": os.getpid()}) + "\n"
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(line)
        os.rename(args.ready_file + ".tmp", args.ready_file)
    sys.stdout.write(line)
    sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    main()
