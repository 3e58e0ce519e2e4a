# SPDX-License-Identifier: MIT
"""A private PostgreSQL server for integration tests, through tests/pg/pg-server.sh.

    with PgServer() as pg:
        pg.conninfo           # libpq connection string (Unix socket in the server's dir)
        pg.stop(); pg.start() # a PostgreSQL outage or restart, on the same data and port
"""
import os
import shutil
import subprocess
import tempfile

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg-server.sh")


def available():
    return subprocess.call([_SCRIPT, "available"]) == 0


class PgServer:
    def __init__(self, dir=None):
        self.dir = dir or tempfile.mkdtemp(prefix="schedulerd-pg-")
        self.conninfo = None

    def start(self):
        out = subprocess.run([_SCRIPT, "start", self.dir], check=True, stdout=subprocess.PIPE, text=True)
        self.conninfo = out.stdout.strip()
        return self.conninfo

    def stop(self):
        subprocess.run([_SCRIPT, "stop", self.dir], check=True)

    def psql(self, sql):
        """Runs SQL through psql; returns stdout (unaligned, tuples only)."""
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.conninfo, "-c", sql],
                             check=True, stdout=subprocess.PIPE, text=True)
        return out.stdout

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
