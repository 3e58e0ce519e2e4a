#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the AWS SigV4 signature of every request it gets with botocore (an independent
implementation), for tests of the SQS client's signing.

Usage: sigv4-verifier.py --access-key K --secret-key S [--session-token T] [--region R]
Listens on 127.0.0.1, a free port; prints {"endpoint": "http://127.0.0.1:PORT"} when ready.
Answers 200 {} when the signature is valid (DeleteMessageBatch: per-entry results, entries whose
receipt handle starts with "bad" failing as ReceiptHandleIsInvalid), else 403 with an SQS-style JSON error
{"__type": "com.amazonaws.sqs#SignatureDoesNotMatch", "message": "..."} saying why.
Exits with status 3 if botocore is not installed.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    sys.stderr.write("sigv4-verifier: botocore is not installed (apt-get install python3-botocore)\n")
    sys.exit(3)

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def verify(args, method, path, headers, body):
    auth = headers.get("Authorization")
    if not auth:
        return "no Authorization header"
    m = AUTH_RE.match(auth)
    if not m:
        return f"Authorization header not understood: {auth}"
    key, date, region, service, signed, signature = m.groups()
    if key != args.access_key:
        return f"access key {key} (expected {args.access_key})"
    if region != args.region or service != "sqs":
        return f"scope {region}/{service} (expected {args.region}/sqs)"
    amz_date = headers.get("X-Amz-Date", "")
    if not amz_date.startswith(date):
        return f"X-Amz-Date {amz_date} does not match the credential date {date}"
    if args.session_token and headers.get("X-Amz-Security-Token") != args.session_token:
        return "X-Amz-Security-Token missing or wrong"
    if "expect" in signed.split(";"):
        return "the Expect header is signed (real SQS rejects that)"

    # Rebuild the request from exactly the headers the client says it signed.
    names = signed.split(";")
    sign_headers = {}
    for n in names:
        v = headers.get(n)
        if v is None:
            return f"signed header {n} is not in the request"
        sign_headers[n] = v
    req = AWSRequest(method=method, url=f"http://{headers.get('Host')}{path}", data=body,
                     headers=sign_headers)
    req.context["timestamp"] = amz_date
    creds = Credentials(args.access_key, args.secret_key, args.session_token)
    signer = SigV4Auth(creds, "sqs", args.region)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if expected != signature:
        return f"signature {signature} (botocore computes {expected}); canonical request was:\n{canonical}"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        problem = verify(self.server.args, "POST", self.path, self.headers, body)
        if problem:
            out = json.dumps({"__type": "com.amazonaws.sqs#SignatureDoesNotMatch",
                              "message": problem}).encode()
            self.send_response(403)
        elif self.headers.get("X-Amz-Target") == "AmazonSQS.DeleteMessageBatch":
            # Answers like SQS: entries whose receipt handle starts with "bad" fail.
            entries = json.loads(body).get("Entries", [])
            ok = [{"Id": e["Id"]} for e in entries if not e["ReceiptHandle"].startswith("bad")]
            failed = [{"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
                       "Message": f"The input receipt handle \"{e['ReceiptHandle']}\" is not valid."}
                      for e in entries if e["ReceiptHandle"].startswith("bad")]
            out = json.dumps({"Successful": ok, "Failed": failed}).encode()
            self.send_response(200)
        else:
            out = b"{}"
            self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--session-token")
    ap.add_argument("--region", default="eu-west-1")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.args = args
    sys.stdout.write(json.dumps({"endpoint": f"http://127.0.0.1:{server.server_address[1]}",
                                 "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda s, f: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
