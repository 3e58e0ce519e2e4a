# SPDX-License-Identifier: MIT
"""Issue 15 figures: claim latency on loopback PostgreSQL (p50/p99, through history_claim_fire()
as the daemon makes it, won and lost claims), and take-over time (a node killed with a run in
flight -> that run's retry started on a survivor), with the default 10 s lease.

Run by bench.py (--only cluster) or alone: python3 bench_cluster.py --builddir build-bench"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "pg"))
import pgserver  # noqa: E402

LEASE = 10


def psql(conninfo, q):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", conninfo, "-c", q], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


def psql_quiet(conninfo, q):
    """psql's answer, or None while the query fails (the schema not made yet)."""
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", conninfo, "-c", q], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def start_node(builddir, tmp, name, conninfo, jobs):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    reg = os.path.join(d, "registry.yaml")
    with open(reg, "w") as f:
        f.write('scheduler:\n  plugin_dir: %s\n  state_dir: %s/state\n  control_socket: %s/control.sock\n'
                '  store: "%s"\n  cluster: { node: %s }\n  shutdown_grace: 2s\njobs:\n%s'
                % (os.path.join(builddir, "tests", "plugins", ".libs"), d, d, conninfo, name, jobs))
    log = open(os.path.join(d, "daemon.log"), "ab")
    return subprocess.Popen([os.path.join(builddir, "schedulerd"), "--config", reg], stdout=log,
                            stderr=subprocess.STDOUT)


def takeover_once(builddir, tmp, conninfo, trial):
    db = "takeover%d" % trial
    psql(conninfo, "CREATE DATABASE %s" % db)
    ci = conninfo.replace("dbname=postgres", "dbname=" + db)
    jobs = ('  - name: long\n    plugin: slow.so\n    schedule: "0 0 1 1 *"\n'
            '    retry: { attempts: 1, backoff: 100ms, max_backoff: 100ms }\n    params: { duration: 120s }\n')
    a = start_node(builddir, tmp, "a%d" % trial, ci, jobs)
    b = None
    try:
        # one after the other: the first creates the schema (concurrent first starts race in
        # the store's migration, reported to the pg-store work)
        while psql(ci, "SELECT count(*) FROM pg_tables WHERE tablename = 'cluster_nodes'") != "1":
            time.sleep(0.1)
        b = start_node(builddir, tmp, "b%d" % trial, ci, jobs)
        deadline = time.time() + 30
        while psql(ci, "SELECT count(*) FROM cluster_nodes WHERE state = 'alive'") != "2":
            if time.time() > deadline:
                raise RuntimeError("nodes did not register")
            time.sleep(0.1)
        subprocess.run([os.path.join(builddir, "schedctl"), "--socket",
                        os.path.join(tmp, "b%d" % trial, "control.sock"), "run", "long"],
                       check=True, stdout=subprocess.DEVNULL)
        while psql(ci, "SELECT count(*) FROM runs WHERE status = 'running' AND pid > 0") != "1":
            time.sleep(0.05)
        pid = int(psql(ci, "SELECT pid FROM runs WHERE status = 'running'"))
        killed = time.time()
        b.send_signal(signal.SIGKILL)
        b.wait()
        os.killpg(pid, signal.SIGKILL)
        while True:
            s = psql(ci, "SELECT started_usec FROM runs WHERE attempt = 1")
            if s:
                return int(s) / 1e6 - killed
            if time.time() > killed + 3 * LEASE:
                raise RuntimeError("no take-over within %d s" % (3 * LEASE))
            time.sleep(0.05)
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait()
        for pid in psql(ci, "SELECT pid FROM runs WHERE pid > 0").split():
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def lateness_once(builddir, tmp, conninfo, label, n_nodes, n_jobs, window, log):
    """N_JOBS every-second jobs (the stamp plugin, whose run() reads the real clock first) on
    N_NODES daemons sharing CONNINFO (None: one daemon on its own SQLite), for WINDOW whole
    seconds after a settle: lateness as the job sees it, fires executed per second, doubles."""
    from bench import pct, read_stamps  # the stamp file and percentiles as bench.py reads them
    d = os.path.join(tmp, label)
    os.makedirs(d, exist_ok=True)
    stamps = os.path.join(d, "stamps")
    jobs = "".join('  - name: j%04d\n    plugin: stamp.so\n    schedule: "* * * * * *"\n'
                   '    params: { out: %s }\n' % (i, stamps) for i in range(n_jobs))
    procs = []
    try:
        for k in range(n_nodes):
            nd = os.path.join(d, "n%d" % k)
            os.makedirs(nd, exist_ok=True)
            reg = os.path.join(nd, "registry.yaml")
            store = '  store: "%s"\n  cluster: { node: n%d }\n' % (conninfo, k) if conninfo else ""
            with open(reg, "w") as f:
                f.write("scheduler:\n  plugin_dir: %s\n  state_dir: %s/state\n  control_socket: %s/control.sock\n"
                        "  max_concurrent: 2000\n  shutdown_grace: 2s\n%sjobs:\n%s"
                        % (os.path.join(builddir, "tests", "plugins", ".libs"), nd, nd, store, jobs))
            log_f = open(os.path.join(nd, "daemon.log"), "ab")
            procs.append(subprocess.Popen([os.path.join(builddir, "schedulerd"), "--config", reg], stdout=log_f,
                                          stderr=subprocess.STDOUT))
            if conninfo and k == 0:
                # the first node creates the schema before the others start
                while psql_quiet(conninfo, "SELECT count(*) FROM cluster_nodes WHERE state = 'alive'") != "1":
                    time.sleep(0.1)
        a = int(time.time()) + 8
        b = a + window
        while time.time() < b + 2:
            time.sleep(0.5)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
    st = read_stamps(stamps)
    late, doubles, ran = [], 0, 0
    for (job, sched), starts in st.items():
        if a * 1000000 <= sched < b * 1000000:
            late.append(min(starts) - sched)
            doubles += len(starts) - 1
            ran += 1
    late.sort()
    r = {"label": label, "nodes": n_nodes, "jobs": n_jobs, "window_sec": window, "expected": n_jobs * window,
         "ran": ran, "doubles": doubles, "fires_per_sec": round(ran / window, 1),
         "p50_ms": round(pct(late, 50) / 1000, 2) if late else None,
         "p99_ms": round(pct(late, 99) / 1000, 2) if late else None,
         "max_ms": round(late[-1] / 1000, 2) if late else None}
    log("cluster lateness %s: %s" % (label, json.dumps(r)))
    return r


def lateness_compare(builddir, tmp, conninfo, log):
    window = int(os.environ.get("CLUSTER_LATENESS_WINDOW", "30"))
    out = []
    for n_jobs in (200, 1000):
        out.append(lateness_once(builddir, tmp, None, "sqlite-1x%d" % n_jobs, 1, n_jobs, window, log))
        for nodes in (1, 3):
            db = "late%d_%d" % (nodes, n_jobs)
            psql(conninfo, "CREATE DATABASE %s" % db)
            ci = conninfo.replace("dbname=postgres", "dbname=" + db)
            out.append(lateness_once(builddir, tmp, ci, "pg-%dx%d" % (nodes, n_jobs), nodes, n_jobs, window, log))
    return out


def run(args, log):
    tmp = tempfile.mkdtemp(prefix="schedulerd-bench-cluster-")
    with pgserver.PgServer(os.path.join(tmp, "pg")) as pg:
        out = subprocess.run([os.path.join(args.builddir, "tests", "bench", "bench-claim"), pg.conninfo, "2000"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        claim = json.loads(out)
        log("cluster claim latency: %s" % out.strip())
        tcp = pg.conninfo.replace("host=%s/sock" % pg.dir, "host=127.0.0.1")
        out = subprocess.run([os.path.join(args.builddir, "tests", "bench", "bench-claim"), tcp, "2000", "bench-claim-tcp"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        claim_tcp = json.loads(out)
        log("cluster claim latency over TCP loopback: %s" % out.strip())
        takeovers = [round(takeover_once(args.builddir, tmp, pg.conninfo, i), 2) for i in range(int(os.environ.get("TAKEOVER_TRIALS", "3")))]
        log("cluster take-over times (s): %s" % takeovers)
        lateness = lateness_compare(args.builddir, tmp, pg.conninfo, log)
    return {"claim_unix": claim, "claim_tcp": claim_tcp, "lease_sec": LEASE, "takeover_sec": takeovers,
            "lateness": lateness}


def render(r):
    c, t = r["claim_unix"], r["claim_tcp"]
    return [
        "| figure | value | target |",
        "| --- | --- | --- |",
        "| claim latency, Unix socket (won) p50 / p99 | %.0f / %.0f us | p99 <= 2 ms |" % (c["won_p50_us"], c["won_p99_us"]),
        "| claim latency, Unix socket (lost: already claimed) p50 / p99 | %.0f / %.0f us | |"
        % (c["lost_p50_us"], c["lost_p99_us"]),
        "| claim latency, TCP 127.0.0.1 (won) p50 / p99 | %.0f / %.0f us | p99 <= 2 ms |" % (t["won_p50_us"], t["won_p99_us"]),
        "| take-over (node killed -> its run's retry started elsewhere), lease %d s | %s s | <= lease + 2 s |"
        % (r["lease_sec"], " / ".join("%.2f" % x for x in r["takeover_sec"])),
        "",
        "Claims are single INSERT ... ON CONFLICT DO NOTHING statements, each committed alone, %d of each kind. "
        "The take-over includes the retry's backoff (100 ms)." % c["n"],
        "",
    ] + render_lateness(r.get("lateness") or [])


def render_lateness(rows):
    if not rows:
        return []
    out = ["Every-second jobs (the stamp plugin: lateness read by the job's own code), one daemon on SQLite "
           "beside one and three daemons sharing PostgreSQL, process isolation, the same window each:",
           "",
           "| store x jobs | nodes | fires run / due | doubles | fires/s run | lateness p50 / p99 / max |",
           "| --- | --- | --- | --- | --- | --- |"]
    for x in rows:
        out.append("| %s | %d | %d / %d | %d | %.0f | %s / %s / %s ms |" % (
            x["label"], x["nodes"], x["ran"], x["expected"], x["doubles"], x["fires_per_sec"],
            x["p50_ms"], x["p99_ms"], x["max_ms"]))
    out.append("")
    return out


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--builddir", required=True)
    p.add_argument("--only-lateness", action="store_true")
    a = p.parse_args()
    if a.only_lateness:
        tmp = tempfile.mkdtemp(prefix="schedulerd-bench-cluster-")
        with pgserver.PgServer(os.path.join(tmp, "pg")) as pg:
            rows = lateness_compare(a.builddir, tmp, pg.conninfo, lambda m: print(m, file=sys.stderr))
        print("\n".join(render_lateness(rows)))
        sys.exit(0)
    res = run(a, lambda m: print(m, file=sys.stderr))
    print("\n".join(render(res)))
