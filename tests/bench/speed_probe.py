# SPDX-License-Identifier: MIT
"""How fast this machine is right now, for the benchmarks (bench.py, bench_azi3.py)."""
import sqlite3
import time


def speed_probe():
    """CPU seconds a fixed workload takes here now (SQLite in memory: 200,000 inserts, an index, a
    scan; median of 3). This VM's cores are shared with other tenants: the same run of the same
    commit has taken twice as long minutes later, CPU figures included (2026-12-06: 0.27 s
    and 0.55 s within a minute). The probe says how fast
    the machine was when a figure was taken, so runs of different times can be compared."""
    times = []
    for _ in range(3):
        con = sqlite3.connect(":memory:")
        t = time.process_time()
        con.execute("CREATE TABLE t (a INTEGER, b TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", ((i * 7919 % 200003, str(i)) for i in range(200000)))
        con.execute("CREATE INDEX t_a ON t (a)")
        con.execute("SELECT count(*) FROM t WHERE b LIKE '%77%'").fetchone()
        times.append(time.process_time() - t)
        con.close()
    return round(sorted(times)[1], 3)
