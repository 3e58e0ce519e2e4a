# SPDX-License-Identifier: MIT
"""Issue 18 item 7: a real Prometheus (Debian's package) scrapes the daemon's metrics_listen and
sees schedulerd_runs_total rise. Exit 77 (skipped) only when the prometheus binary is missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from features_a import ShippedTestCase, free_port
from harness import wait_for

PROMETHEUS = shutil.which("prometheus")


def query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.load(r)
    except OSError:
        return None
    res = data.get("data", {}).get("result", [])
    return float(res[0]["value"][1]) if res else None


class PrometheusScrape(ShippedTestCase):
    def test_scrape_sees_runs_total_rise(self):
        port = free_port()
        d = self.daemon('  - name: tick\n    schedule: "@yearly"\n    command: [/bin/true]\n',
                        "  metrics_listen: 127.0.0.1:%d\n" % port).start()
        tmp = tempfile.mkdtemp(prefix="schedulerd-prom-")
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: schedulerd\n    honor_labels: true\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % port)
        web = free_port()
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file", cfg, "--storage.tsdb.path", os.path.join(tmp, "data"),
                                 "--web.listen-address", "127.0.0.1:%d" % web], stdout=log, stderr=subprocess.STDOUT)
        try:
            q = 'schedulerd_runs_total{job="tick",status="succeeded"}'
            first = wait_for(lambda: query(web, q) is not None, 60, step=0.5, what="Prometheus to scrape schedulerd")
            self.assertEqual(query(web, q), 0.0)
            self.assertEqual(query(web, 'up{job="schedulerd"}'), 1.0)
            for _ in range(2):
                self.assertTrue(d.ctl({"command": "run", "job": "tick", "wait": True})["ok"])
            wait_for(lambda: query(web, q) == 2.0, 30, step=0.5, what="the scraped runs_total to reach 2")
            self.assertTrue(first)
        finally:
            prom.terminate()
            try:
                prom.wait(15)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not PROMETHEUS:
        print("prometheus is not installed (Debian package prometheus; contrib/dev.sh deps): skipped")
        sys.exit(77)
    unittest.main()
