// SPDX-License-Identifier: MIT
// The same work as a schedulerd bench window, done by croner 11 (in-process callbacks, no
// isolation): N jobs, each callback's first statement reads the real clock, exactly as the
// stamp plugin does at the top of run().
//
// usage: node croner-bench.mjs MODE N SETTLE WINDOW
//   MODE every   N jobs "* * * * * *"
//        spread  job i at second i % 60 of every minute
//        herd    N jobs at the one instant SETTLE seconds from now (WINDOW is ignored)
// Fires whose scheduled instant falls in [a, a + WINDOW) count, a = the whole second SETTLE
// seconds after start. Prints one JSON object: expected, ran, doubles, lateness in ms
// (median, p99, max), peak RSS in MiB.
import { readFileSync } from "node:fs";
import { Cron } from "croner";

const [mode, nArg, settleArg, windowArg] = process.argv.slice(2);
const N = Number(nArg), SETTLE = Number(settleArg), WINDOW = Number(windowArg);
const now = () => performance.timeOrigin + performance.now(); // ms, sub-ms resolution

const a = Math.floor(now() / 1000) + SETTLE;           // epoch seconds
const b = mode === "herd" ? a + 1 : a + WINDOW;
const late = new Float64Array(mode === "herd" ? N : N * (WINDOW + 2));
let ran = 0, doubles = 0;
const seen = new Set();
let rssPeak = 0;

// the latest instant <= t (ms) at which job i is due, in epoch seconds
function scheduled(i, t) {
        const s = Math.floor(t / 1000);
        if (mode === "every") return s;
        if (mode === "herd") return a;
        const want = i % 60;
        return s - (((s % 60) - want + 60) % 60);
}

function expr(i) {
        if (mode === "every") return "* * * * * *";
        if (mode === "spread") return `${i % 60} * * * * *`;
        const d = new Date(a * 1000);
        return `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} ${d.getUTCDate()} ${d.getUTCMonth() + 1} *`;
}

const jobs = [];
for (let i = 0; i < N; i++) {
        jobs.push(new Cron(expr(i), { timezone: "UTC" }, () => {
                const t = now();
                const s = scheduled(i, t);
                if (s < a || s >= b) return;
                const key = i * 4096 + (s - a);
                if (seen.has(key)) { doubles++; return; }
                seen.add(key);
                late[ran++] = t - s * 1000;
        }));
}

const timer = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage().rss); }, 250);
setTimeout(() => {
        clearInterval(timer);
        for (const j of jobs) j.stop();
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        const xs = Array.from(late.subarray(0, ran)).sort((x, y) => x - y);
        const pct = (p) => (xs.length ? xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] : null);
        let expected = 0;
        for (let i = 0; i < N; i++)
                for (let s = a; s < b; s++) if (mode !== "spread" || s % 60 === i % 60) expected++;
        const r3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
        console.log(JSON.stringify({
                peer: "croner " + JSON.parse(readFileSync(new URL("./node_modules/croner/package.json", import.meta.url))).version,
                mode, jobs: N, window_sec: b - a, expected, runs: ran, missed: expected - ran, doubles,
                lateness_ms: { median: r3(pct(50)), p99: r3(pct(99)), max: r3(xs.length ? xs[xs.length - 1] : null) },
                rss_peak_mib: Math.round((rssPeak / 1048576) * 10) / 10,
        }));
        process.exit(0);
}, (b - now() / 1000) * 1000 + 2000);
