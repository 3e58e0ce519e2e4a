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

Every connection is served by a thread of its own with HTTP/1.1 keep-alive, so a client sending
many requests at once (the azi-3 jobs do, issue 16) is served concurrently.

Control endpoints (never recorded):
    GET  /_fake/requests       every API request so far: [{method, path, query, headers, body, route}]
    GET  /_fake/subscriptions  live subscriptions: [{id, robotId, eventNames, until}]
    GET  /_fake/concurrency    API requests in progress at once: {"max": N, "max_per_robot": M}
                               (the most overall, and the most for any one robot)
    POST /_fake/reset          forget requests, faults, subscriptions and incomings
    POST /_fake/incomings      seed incomings for replay: a JSON array of
                               {id, robotId, eventName, providerName, createdAt}
    POST /_fake/fault          arm a fault for the next `count` API calls matching `route`:
        {"route": "subscribe"|"unsubscribe"|"replay"|"alarm"|"any",
         "count": 1 (-1: forever), "status": 500, "body": "text" (default: a JSON message),
         "delay": seconds before answering, "garbage": true (answer the success status with
         malformed JSON)}
      Faults are consumed in the order they were armed.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROUTES = [
    ("subscribe", "POST", re.compile(r"^/internal/v1/events/robots/(\d+)/subscriptions$")),
    ("unsubscribe", "DELETE", re.compile(r"^/internal/v1/events/robots/(\d+)/subscriptions/(\d+)$")),
    ("replay", "GET", re.compile(r"^/internal/v1/events/robots/(\d+)/incomings$")),
    ("alarm", "POST", re.compile(r"^/internal/v1/events/robots/(\d+)/incomings$")),
]
ROUTE_NAMES = {name for name, _, _ in ROUTES} | {"any"}
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


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
    def __init__(self):
        self.lock = threading.RLock()  # send() takes it, and some answers are sent holding it
        self.reset()

    def reset(self):
        self.requests = []
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-megazord/1"
    # headers and body go out in separate writes: with Nagle on, the body waits for the
    # client's delayed ACK of the headers, 40 ms on Linux, on every keep-alive request
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_MEGAZORD_VERBOSE"):
            sys.stderr.write("fake-megazord: " + (fmt % args) + "\n")

    def send(self, status, payload=None, raw=None):
        data = b""
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif payload is not None:
            data = json.dumps(payload).encode()
        self.uncount()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def json_body(self, body):
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise BadRequest("Content-Type must be application/json")
        try:
            return json.loads(body)
        except ValueError as e:
            raise BadRequest(f"body is not JSON: {e}")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urlsplit(self.path)
        body = self.read_body()
        if url.path.startswith("/_fake/"):
            return self.control(method, url.path, body)

        route, match = None, None
        for name, m, rx in ROUTES:
            mm = rx.match(url.path)
            if mm and m == method:
                route, match = name, mm
                break
        with STATE.lock:
            STATE.requests.append({
                "method": method,
                "path": url.path,
                "query": {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()},
                "headers": {k: v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "route": route,
            })
            fault = STATE.take_fault(route) if route else None
        if route is None:
            return self.send(404, {"message": f"no route for {method} {url.path}"})
        robot = int(match.group(1))
        with STATE.lock:
            STATE.in_flight += 1
            STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
            n = STATE.in_flight_robot.get(robot, 0) + 1
            STATE.in_flight_robot[robot] = n
            STATE.max_in_flight_robot = max(STATE.max_in_flight_robot, n)
        self._robot = robot
        try:
            self.api(route, match, url, body, fault)
        finally:
            self.uncount()

    def uncount(self):
        """The request no longer counts as in progress: called before its answer is written,
        so a client that sends the robot's next call on reading it is not seen overlapping."""
        robot, self._robot = getattr(self, "_robot", None), None
        if robot is not None:
            with STATE.lock:
                STATE.in_flight -= 1
                STATE.in_flight_robot[robot] -= 1

    def api(self, route, match, url, body, fault):
        if fault:
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
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
        with STATE.lock:
            sid = STATE.next_subscription_id
            STATE.next_subscription_id += 1
            sub = {"id": sid, "robotId": robot, "eventNames": names, "until": req["until"]}
            STATE.subscriptions[sid] = sub
        self.send(201, sub)

    def api_unsubscribe(self, m, url, body):
        robot, sid = int(m.group(1)), int(m.group(2))
        with STATE.lock:
            sub = STATE.subscriptions.get(sid)
            if sub is None or sub["robotId"] != robot:
                return self.send(404, {"message": f"subscription {sid} of robot {robot} not found"})
            del STATE.subscriptions[sid]
        self.send(204)

    def api_replay(self, m, url, body):
        robot = int(m.group(1))
        q = parse_qs(url.query, keep_blank_values=True)
        name = q.get("event_name", [None])[0]
        since = q.get("created_since", [None])[0]
        if not name:
            raise BadRequest("query parameter event_name is required")
        if since is None or not re.fullmatch(r"\d+", since):
            raise BadRequest("query parameter created_since must be unix seconds")
        with STATE.lock:
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
        with STATE.lock:
            iid = STATE.next_incoming_id
            STATE.next_incoming_id += 1
            inc = {"id": iid, "robotId": robot, "eventName": req["eventName"],
                   "providerName": req["providerName"], "level": req["level"],
                   "referenceId": req["referenceId"], "createdAt": now_rfc3339()}
            STATE.incomings.append(inc)
            STATE.incomings_by_robot.setdefault(robot, []).append(inc)
        self.send(201, inc)

    def control(self, method, path, body):
        try:
            if method == "GET" and path == "/_fake/requests":
                with STATE.lock:
                    return self.send(200, list(STATE.requests))
            if method == "GET" and path == "/_fake/concurrency":
                with STATE.lock:
                    return self.send(200, {"max": STATE.max_in_flight, "max_per_robot": STATE.max_in_flight_robot})
            if method == "GET" and path == "/_fake/subscriptions":
                with STATE.lock:
                    return self.send(200, list(STATE.subscriptions.values()))
            if method == "POST" and path == "/_fake/reset":
                with STATE.lock:
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
                with STATE.lock:
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
                with STATE.lock:
                    STATE.faults.append(f)
                return self.send(204)
        except (ValueError, BadRequest) as e:
            return self.send(400, {"message": str(e)})
        self.send(404, {"message": f"no control endpoint {method} {path}"})


def main():
    ap = argparse.ArgumentParser(description="fake Megazord events API for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    line = json.dumps({"base_url": f"http://127.0.0.1:{server.server_address[1]}",
                       "pid": os.getpid()}) + "\n"
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(line)
        os.rename(args.ready_file + ".tmp", args.ready_file)
    sys.stdout.write(line)
    sys.stdout.flush()

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
