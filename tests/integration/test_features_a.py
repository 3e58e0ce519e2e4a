# SPDX-License-Identifier: MIT
"""Issue 18, items 1, 6, 7: command jobs (exec.so), schedctl import-crontab, on_failure /
on_success with webhook.so, and the metrics endpoint checked by promtool — through the real
binaries."""
import http.server
import json
import os
import shutil
import subprocess
import threading
import unittest
import urllib.request

from features_a import SHIPPED, ShippedTestCase, free_port
from harness import PLUGINS, SCHEDCTL, SRCDIR, wait_for

CRONTAB = os.path.join(SRCDIR, "tests", "fixtures", "crontab", "sample.crontab")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose; gone between open() and read() is dead too
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class CommandJobs(ShippedTestCase):
    def test_exit_codes_output_and_working_directory(self):
        wd = self.id().split(".")[-1]
        d = self.daemon(
            '  - name: ok\n    schedule: "@yearly"\n    command: [/bin/echo, hello, "two words"]\n'
            '  - name: fail\n    schedule: "@yearly"\n    command: "echo to-stderr >&2; exit 3"\n    shell: true\n'
            '  - name: tempfail\n    schedule: "@yearly"\n    command: [/bin/sh, -c, "exit 75"]\n'
            '    retry: { attempts: 1, backoff: 100ms }\n'
            '  - name: where\n    schedule: "@yearly"\n    command: [/bin/pwd]\n    working_directory: /tmp\n'
            '  - name: missing\n    schedule: "@yearly"\n    command: [/nonexistent/program]\n').start()
        for name in ("ok", "fail", "tempfail", "where", "missing"):
            self.assertTrue(d.ctl({"command": "run", "job": name, "wait": True})["ok"], wd)
        ok = d.runs("ok")[0]
        self.assertEqual(ok["status"], "succeeded")
        self.assertEqual(ok["output"].strip(), "hello two words")
        fail = d.runs("fail")[0]
        self.assertEqual(fail["status"], "failed")
        self.assertIn("exited with status 3", fail["message"])
        self.assertIn("to-stderr", fail["output"])
        # 75 asks for a retry: the retry runs (and asks again; attempts are used up)
        rows = d.wait_runs("tempfail", lambda rs: len(rs) == 2 and rs[1]["status"] != "running")
        self.assertEqual([r["trigger"] for r in rows], ["manual", "retry"])
        self.assertIn("75", rows[0]["message"])
        self.assertEqual(d.runs("where")[0]["output"].strip(), "/tmp")
        missing = d.runs("missing")[0]
        self.assertEqual(missing["status"], "failed")
        self.assertIn("cannot execute /nonexistent/program", missing["output"])
        self.assertIn("status 127", missing["message"])

    def test_timeout_kills_the_whole_group(self):
        d = self.daemon('  - name: slow\n    schedule: "@yearly"\n    timeout: 1s\n'
                        '    command: "sleep 300 & echo $! > grandchild.pid; trap \'\' TERM; wait; sleep 300"\n'
                        '    shell: true\n').start()
        r = d.ctl({"command": "run", "job": "slow", "wait": True}, timeout=30)
        self.assertTrue(r["ok"], r)
        row = d.runs("slow")[0]
        self.assertEqual(row["status"], "timed_out")
        with open(os.path.join(d.state, "jobs", "slow", "grandchild.pid")) as f:
            pid = int(f.read())
        wait_for(lambda: not alive(pid), 10, what="the command's background child to be killed")

    def test_command_errors_name_the_place(self):
        d = self.daemon('  - name: s\n    schedule: "@yearly"\n    command: "echo hi"\n'
                        '  - name: w\n    schedule: "@yearly"\n    command: [/bin/true]\n    working_directory: rel\n'
                        '  - name: p\n    schedule: "@yearly"\n    plugin: hello.so\n    command: [/bin/true]\n'
                        '  - name: h\n    schedule: "@yearly"\n    shell: true\n    plugin: hello.so\n')
        p = subprocess.run([SCHEDCTL, "check", d.config], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        err = p.stdout + p.stderr
        self.assertIn(":10:14: job s: command: found the string \"echo hi\", expected a list", err)
        self.assertIn("add shell: true", err)
        self.assertIn(":14:24: job w: working_directory: found \"rel\", expected an absolute path", err)
        self.assertIn(":18:14: job p: command: runs with exec.so, but plugin is \"hello.so\"", err)
        self.assertIn(":21:12: job h: shell: found without command:", err)
        self.assertNotIn("required key \"command\"", err)


class ImportCrontab(ShippedTestCase):
    def test_twenty_lines_imported_checked_and_run(self):
        with open(CRONTAB) as f:
            self.assertEqual(len(f.read().splitlines()), 20)
        p = subprocess.run([SCHEDCTL, "import-crontab", "--json", CRONTAB], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual((out["jobs"], out["skipped"], out["notes"]), (11, 2, 3), out["yaml"])
        yaml = out["yaml"]
        self.assertIn("line 16 could not be carried over: schedule \"61 * * * *\"", yaml)
        self.assertIn("line 20 could not be carried over: unknown @ macro", yaml)
        self.assertIn("MAILTO=ops@example.com is not supported", yaml)
        self.assertIn("SHELL=/bin/bash is not carried over", yaml)
        # stdin gives the same
        with open(CRONTAB) as f:
            p2 = subprocess.run([SCHEDCTL, "import-crontab", "-"], stdin=f, capture_output=True, text=True)
        self.assertEqual(p2.stdout.split("\n", 1)[1], yaml.split("\n", 1)[1])

        d = self.daemon("", "  include: imported.yaml\n")
        with open(os.path.join(d.tmp, "imported.yaml"), "w") as f:
            f.write(yaml)
        c = subprocess.run([SCHEDCTL, "check", d.config], capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        self.assertIn("ok, 11 jobs", c.stdout + c.stderr)
        d.start()
        # @reboot became run_on_startup
        d.wait_runs("echo-13", lambda rs: rs and rs[0]["status"] == "succeeded")
        for name in ("echo-7", "cat-15", "echo-11"):
            r = d.ctl({"command": "run", "job": name, "wait": True})
            self.assertEqual(r.get("status"), "succeeded", (name, r, d.runs(name)))
        with open(os.path.join(d.state, "jobs", "echo-7", "out.log")) as f:
            self.assertEqual(f.read(), "hello from cron\n")  # the VAR=value line reached the command
        with open(os.path.join(d.state, "jobs", "cat-15", "mail.txt")) as f:
            self.assertEqual(f.read(), "Subject: reminder\nstand-up at 9:30\n")  # % became stdin lines
        with open(os.path.join(d.state, "jobs", "echo-11", "out.log")) as f:
            self.assertRegex(f.read(), r"^monthly report for \d{4}-\d{2}\n$")  # \% is a literal %


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, self.headers.get("Content-Type"), self.headers.get("Authorization"),
                                  json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Chaining(ShippedTestCase):
    def setUp(self):
        super().setUp()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.http.posts = []
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def tearDown(self):
        self.http.shutdown()
        self.http.server_close()
        super().tearDown()

    def test_on_failure_once_per_failed_run_and_webhook_body(self):
        url = "http://127.0.0.1:%d/hook" % self.http.server_port
        d = self.daemon(
            '  - name: backup\n    schedule: "@yearly"\n    command: "echo partial; exit 75"\n    shell: true\n'
            '    retry: { attempts: 1, backoff: 100ms }\n    on_failure: [notify]\n    on_success: [after]\n'
            '  - name: good\n    schedule: "@yearly"\n    command: [/bin/true]\n    on_failure: notify\n'
            '    on_success: [after]\n'
            '  - name: after\n    schedule: "@yearly"\n    enabled: false\n    command: [/bin/true]\n'
            '  - name: notify\n    plugin: webhook.so\n    schedule: "@yearly"\n    enabled: false\n'
            '    params: { url: "%s", authorization: "Bearer t0ken" }\n' % url).start()
        first = d.ctl({"command": "run", "job": "backup"})["run_id"]
        d.wait_runs("notify", lambda rs: len(rs) == 1 and rs[0]["status"] == "succeeded")
        second = d.ctl({"command": "run", "job": "backup"})["run_id"]
        d.wait_runs("notify", lambda rs: len(rs) == 2 and rs[1]["status"] == "succeeded")
        self.assertTrue(d.ctl({"command": "run", "job": "good", "wait": True})["ok"])
        d.wait_runs("after", lambda rs: len(rs) == 1 and rs[0]["status"] == "succeeded")
        d.stop()

        backups = d.runs("backup")
        self.assertEqual([r["status"] for r in backups], ["failed"] * 4)  # two fires, a retry each (75 asks for one)
        self.assertEqual(len(d.runs("notify")), 2)  # once per failed fire, not per attempt
        self.assertEqual(len(self.http.posts), 2)
        retries = [r["id"] for r in backups if r["trigger"] == "retry"]
        for (path, ctype, auth, body), retry_of in zip(self.http.posts, (first, second)):
            self.assertEqual((path, ctype, auth), ("/hook", "application/json", "Bearer t0ken"))
            self.assertEqual(body["job"], "backup")
            self.assertEqual(body["status"], "failed")
            self.assertIn("exited with status 75", body["message"])
            self.assertIn(body["run_id"], retries)  # the last attempt, not the first
            self.assertRegex(body["finished"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(body["notifier"], "notify")
        self.assertEqual(sorted(p[3]["run_id"] for p in self.http.posts), sorted(retries))
        self.assertEqual(len(d.runs("after")), 1)  # on_success of good only

    def test_unknown_and_cyclic_chains_are_load_errors(self):
        d = self.daemon('  - name: a\n    schedule: "@yearly"\n    command: [/bin/true]\n    on_failure: [b, nope]\n'
                        '  - name: b\n    schedule: "@yearly"\n    command: [/bin/true]\n    on_success: [a]\n')
        p = subprocess.run([SCHEDCTL, "check", d.config], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        err = p.stdout + p.stderr
        self.assertIn(':11:21: job a: on_failure: no job named "nope" in the registry', err)
        self.assertIn(':15:18: job b: on_success: job "a" leads back to "b"', err)


class Metrics(ShippedTestCase):
    def test_endpoint_and_schedctl_metrics_pass_promtool(self):
        port = free_port()
        d = self.daemon('  - name: ok\n    schedule: "* * * * *"\n    command: [/bin/true]\n'
                        '  - name: bad\n    schedule: "@yearly"\n    command: [/bin/false]\n'
                        '  - name: slow\n    plugin: slow.so\n    schedule: "@yearly"\n    params: { duration: 3s }\n',
                        "  metrics_listen: 127.0.0.1:%d\n" % port).start()
        for name in ("ok", "bad"):
            d.ctl({"command": "run", "job": name, "wait": True})
        d.ctl({"command": "run", "job": "slow"})
        skipped = d.ctl({"command": "run", "job": "slow"})  # overlap: recorded as skipped
        self.assertFalse(skipped["ok"])
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        self.assertIn('schedulerd_runs_total{job="ok",status="succeeded"} 1\n', text)
        self.assertIn('schedulerd_runs_total{job="bad",status="failed"} 1\n', text)
        self.assertIn('schedulerd_fires_skipped_total{job="slow",reason="overlap"} 1\n', text)
        self.assertIn("schedulerd_runs_in_flight 1\n", text)
        self.assertIn('schedulerd_run_duration_seconds_count{job="ok"} 1\n', text)
        self.assertIn('schedulerd_next_fire_timestamp_seconds{job="ok"} ', text)
        self.assertIn('schedulerd_last_success_timestamp_seconds{job="ok"} ', text)
        self.assertIn('schedulerd_fires_missed_total{job="ok"} 0\n', text)
        self.assertIn('schedulerd_build_info{version="', text)
        ctl = subprocess.run([SCHEDCTL, "--socket", d.sock, "metrics"], capture_output=True, text=True)
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        self.assertIn('schedulerd_runs_total{job="bad",status="failed"} 1\n', ctl.stdout)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian package prometheus) is a test dependency: contrib/dev.sh deps")
        for t in (text, ctl.stdout):
            p = subprocess.run([promtool, "check", "metrics"], input=t, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(p.stdout + p.stderr, "")  # no lint warnings either
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=10)
        self.assertEqual(e.exception.code, 404)

    def test_job_gauges_join_the_exposition(self):
        port = free_port()
        d = self.daemon('  - name: g1\n    plugin: gauge.so\n    schedule: "@yearly"\n'
                        '  - name: g2\n    plugin: gauge.so\n    schedule: "@yearly"\n    params: { value: 7 }\n',
                        "  metrics_listen: 127.0.0.1:%d\n" % port).start()
        for name in ("g1", "g2"):
            self.assertEqual(d.ctl({"command": "run", "job": name, "wait": True})["status"], "succeeded")
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        self.assertIn('test_level{job="g1",kind="a"} 42\n', text)
        self.assertIn('test_level{job="g2",kind="a"} 7\n', text)
        self.assertIn('test_plain{job="g1"} 1.5\n', text)
        self.assertEqual(text.count("# TYPE test_level gauge\n"), 1)  # one family, one group
        # a job cannot pose as the daemon's own series
        self.assertIn("schedulerd_runs_in_flight 0\n", text)
        self.assertNotIn("99", [line.split()[-1] for line in text.splitlines() if line.startswith("schedulerd_runs_in_flight")])
        p = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))
        d.stop()

    def test_bad_listen_address_is_a_load_error(self):
        d = self.daemon('  - name: ok\n    schedule: "@yearly"\n    command: [/bin/true]\n',
                        "  metrics_listen: example.com:9163\n")
        p = subprocess.run([SCHEDCTL, "check", d.config], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(':5:19: scheduler.metrics_listen: "example.com:9163": not an IPv4 address', p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
