#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Starts fauxqs (an SQS emulator, pinned in package.json) for the tests, bound to 127.0.0.1
// only: its own CLI and startFauxqs() always listen on 0.0.0.0, so we build the app through
// its library API and listen ourselves.
//
// Usage: node tests/fakes/fauxqs-server.js [--port N] [--queue NAME]... [--ready-file PATH]
//   --port N          port to listen on (default 0: the kernel picks a free one)
//   --queue NAME      create this queue once listening (repeatable; default: status-queue)
//   --ready-file PATH write the ready line there too (atomically, via rename)
// When ready, prints one JSON line on stdout:
//   {"endpoint":"http://127.0.0.1:PORT","queues":{"NAME":"http://127.0.0.1:PORT/000000000000/NAME"}}
// Stops on SIGTERM, SIGINT or SIGHUP.
import { writeFileSync, renameSync } from "node:fs";

let fauxqs;
try {
  fauxqs = await import("fauxqs");
} catch (e) {
  process.stderr.write(`fauxqs-server: cannot load the fauxqs package (${e.message}); ` +
    "install it with: npm ci --prefix tests/fakes\n");
  process.exit(3);
}

function usage(msg) {
  process.stderr.write(`fauxqs-server: ${msg}\n` +
    "usage: fauxqs-server.js [--port N] [--queue NAME]... [--ready-file PATH]\n");
  process.exit(2);
}

let port = 0;
const queues = [];
let readyFile = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    return argv[++i];
  };
  if (a === "--port") {
    const v = val();
    port = Number(v);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      usage(`--port: '${v}' is not a port number (expected 0..65535)`);
  } else if (a === "--queue") {
    const q = val();
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(q))
      usage(`--queue: '${q}' is not a valid SQS queue name (expected 1-80 of [A-Za-z0-9_-])`);
    queues.push(q);
  } else if (a === "--ready-file") {
    readyFile = val();
  } else {
    usage(`unknown argument '${a}'`);
  }
}
if (queues.length === 0) queues.push("status-queue");

const app = fauxqs.buildApp({ logger: false });
await app.listen({ port, host: "127.0.0.1" });
const actualPort = app.server.address().port;
const endpoint = `http://127.0.0.1:${actualPort}`;

// Queues are created through the wire protocol itself, so the URLs are exactly what a
// client sees.
const urls = {};
for (const name of queues) {
  const res = await fetch(endpoint + "/", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": "AmazonSQS.CreateQueue",
    },
    body: JSON.stringify({ QueueName: name }),
  });
  const body = await res.json();
  if (!res.ok || !body.QueueUrl) {
    process.stderr.write(`fauxqs-server: CreateQueue ${name} failed: ${res.status} ${JSON.stringify(body)}\n`);
    process.exit(1);
  }
  urls[name] = body.QueueUrl;
}

const line = JSON.stringify({ endpoint, queues: urls, pid: process.pid }) + "\n";
if (readyFile) {
  writeFileSync(readyFile + ".tmp", line);
  renameSync(readyFile + ".tmp", readyFile);
}
process.stdout.write(line);

let stopping = false;
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await app.close();
    process.exit(0);
  });
}
