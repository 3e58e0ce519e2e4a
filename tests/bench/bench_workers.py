# SPDX-License-Identifier: MIT
"""Issue 16 measurements of isolation: worker beside isolation: process, taken inside the job
(trace.so reads CLOCK_REALTIME on the first line of run()) and from history.db:

  herd        N jobs due at one instant: when the last one's code started, after the instant
  throughput  N non-singleton jobs every second for a window: runs/s recorded (succeeded) in
              history, sustained

Run from the build directory (`make check TESTS=` first, for the test plugins):
    python3 ../tests/bench/bench_workers.py herd [N]        python3 ../tests/bench/bench_workers.py throughput [N] [SECONDS]
Prints one JSON object per mode.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, wait_for  # noqa: E402


def jobs(n, schedule, plugin, isolation, params=None, singleton=True):
    out = []
    for i in range(n):
        s = "  - name: j%05d\n    plugin: %s\n    schedule: \"%s\"\n    isolation: %s\n" % (i, plugin, schedule, isolation)
        if not singleton:
            s += "    singleton: false\n"
        if params:
            s += "    params:\n" + "".join("      %s: %s\n" % kv for kv in params.items())
        out.append(s)
    return "".join(out)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else None


def herd(mode, n):
    trace_file = "/tmp/bench-workers-trace-%s.txt" % mode
    if os.path.exists(trace_file):
        os.unlink(trace_file)
    plugin = "trace-worker.so" if mode == "worker" else "trace.so"
    # the instant: a second at least 8 s ahead, so start-up (and warming, in process mode) is done
    now = time.time()
    sec = int(now + 8) % 60
    d = Daemon(jobs(n, "%d * * * * *" % sec, plugin, mode, params={"file": trace_file}),
               "  max_concurrent: 10000\n  history:\n    max_runs_per_job: 100\n")
    d.start()
    instant = (int(now + 8) // 60) * 60 + sec
    if instant < now:
        instant += 60
    try:
        wait_for(lambda: os.path.exists(trace_file) and sum(1 for _ in open(trace_file)) >= n, 60, 0.2,
                 what="%d runs" % n)
        time.sleep(1)
        starts = []
        for line in open(trace_file):
            job, sched, attempt, wall, pid = line.split()
            starts.append(int(wall) - int(sched))
        rows = d.rows("SELECT started_usec - scheduled_usec AS late FROM runs WHERE status = 'succeeded'")
        hist = [r["late"] for r in rows]
        pids = len({line.split()[4] for line in open(trace_file)})
    finally:
        d.stop(timeout=60)
        d.cleanup()
    return {"mode": mode, "jobs": n, "ran": len(starts), "processes": pids,
            "job_clock_ms": {"median": pct(starts, 50) / 1000, "p99": pct(starts, 99) / 1000,
                             "last": max(starts) / 1000},
            "history_ms": {"median": pct(hist, 50) / 1000, "last": max(hist) / 1000}}


def throughput(mode, n, window):
    d = Daemon(jobs(n, "* * * * * *", "ok-worker.so" if mode == "worker" else "ok.so", mode, singleton=False),
               "  max_concurrent: 10000\n  history:\n    max_runs_per_job: 100000\n")
    d.start()
    try:
        time.sleep(3)  # past the first, partial second
        t0 = int(time.time()) + 1
        time.sleep(window + 4)
        t1 = t0 + window
        per_sec = d.rows("SELECT scheduled_usec / 1000000 AS s, COUNT(*) AS n FROM runs WHERE status = 'succeeded' AND "
                         "scheduled_usec >= ? AND scheduled_usec < ? GROUP BY s", (t0 * 1000000, t1 * 1000000))
        skipped = d.rows("SELECT COUNT(*) AS n FROM runs WHERE status = 'skipped' AND scheduled_usec >= ? AND "
                         "scheduled_usec < ?", (t0 * 1000000, t1 * 1000000))[0]["n"]
        done = sum(r["n"] for r in per_sec)
        with open("/proc/%d/status" % d.proc.pid) as f:
            rss = [int(l.split()[1]) for l in f if l.startswith("VmHWM")][0]
    finally:
        d.stop(timeout=120)
        d.cleanup()
    return {"mode": mode, "offered_per_s": n, "window_s": window, "succeeded": done,
            "succeeded_per_s": round(done / window), "skipped": skipped,
            "per_second": [r["n"] for r in per_sec], "daemon_rss_peak_mib": round(rss / 1024, 1)}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "herd"
    modes = os.environ.get("MODES", "process,worker").split(",")
    for mode in modes:
        if what == "herd":
            print(json.dumps(herd(mode, int(sys.argv[2]) if len(sys.argv) > 2 else 1000)), flush=True)
        else:
            print(json.dumps(throughput(mode, int(sys.argv[2]) if len(sys.argv) > 2 else 20000,
                                        int(sys.argv[3]) if len(sys.argv) > 3 else 10)), flush=True)
