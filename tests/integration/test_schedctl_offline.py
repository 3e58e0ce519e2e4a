# SPDX-License-Identifier: MIT
"""Issue 2: schedctl check and schedctl next, through the real binary."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import PLUGINS, SCHEDCTL, SRCDIR


def schedctl(*args):
    p = subprocess.run([SCHEDCTL] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


class Next(unittest.TestCase):
    def test_json_across_spring_forward(self):
        rc, out, err = schedctl("next", "30 2 * * *", "--tz", "Europe/Amsterdam", "--from", "2026-03-28T12:00:00Z",
                                "-n", "3", "--json")
        self.assertEqual(rc, 0, err)
        fires = json.loads(out)
        self.assertEqual([f["utc"] for f in fires],
                         ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"])
        self.assertEqual(fires[0]["local"], "2026-03-29T03:00:00+02:00")
        self.assertEqual(fires[1]["local"], "2026-03-30T02:30:00+02:00")

    def test_periodic_fall_back_fires_twice(self):
        rc, out, err = schedctl("next", "0 * * * *", "--tz", "Europe/Amsterdam", "--from", "2026-10-25T00:30:00+02:00",
                                "-n", "4", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual([f["local"] for f in json.loads(out)],
                         ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
                          "2026-10-25T03:00:00+01:00"])

    def test_table(self):
        rc, out, err = schedctl("next", "0 0 29 2 *", "--from", "2028-03-01T00:00:00Z", "-n", "2")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("NEXT"))
        self.assertIn("2032-02-29T00:00:00+00:00", lines[1])
        self.assertIn("2032-02-29T00:00:00Z", lines[1])
        # LEFT counts from now, not from --from (issue 14 item 10): 365-day years, then days
        import datetime
        left = datetime.datetime(2032, 2, 29, tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
        self.assertIn("%dy" % (left.days // 365), lines[1].split("Z", 1)[1])

    def test_bad_expression_and_zone_exit_2(self):
        rc, out, err = schedctl("next", "61 * * * *")
        self.assertEqual(rc, 2)
        self.assertIn("61 is out of range", err)
        rc, out, err = schedctl("next", "* * * * *", "--tz", "Mars/Olympus")
        self.assertEqual(rc, 2)
        self.assertIn("Mars/Olympus", err)
        rc, out, err = schedctl("next", "* * * * *", "--from", "yesterday")
        self.assertEqual(rc, 2)
        self.assertIn("--from", err)

    def test_job_from_registry(self):
        reg = os.path.join(SRCDIR, "etc", "schedulerd.yaml")
        rc, out, err = schedctl("--config", reg, "next", "hello-amsterdam", "--from", "2026-03-27T00:00:00Z", "-n", "1",
                                "--json")
        self.assertEqual(rc, 0, err)
        f = json.loads(out)[0]
        self.assertEqual(f["zone"], "Europe/Amsterdam")
        self.assertEqual(f["local"], "2026-03-27T07:30:00+01:00")


class Check(unittest.TestCase):
    def write(self, text):
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_valid(self):
        path = self.write("scheduler:\n  plugin_dir: %s\njobs:\n  - name: a\n    plugin: ok.so\n    schedule: '@daily'\n"
                          % PLUGINS)
        rc, out, err = schedctl("check", path)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok, 1 job", out)

    def test_every_error_one_a_line(self):
        path = self.write("scheduler:\n  plugin_dir: %s\njobs:\n"
                          "  - name: a\n    plugin: badabi.so\n    schedule: '@daily'\n"
                          "  - name: b\n    plugin: ok.so\n    schedule: '* * * *'\n"
                          "  - name: c\n    plugin: ok.so\n    schedule: '@daily'\n    timezone: Mars/Olympus\n"
                          % PLUGINS)
        rc, out, err = schedctl("check", path)
        self.assertEqual(rc, 1)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[0], r"^%s:5:\d+: job a: .*ABI version 42, expected 1" % path)
        self.assertRegex(lines[1], r"^%s:9:\d+: job b: .*expected 5 or 6 fields, found 4" % path)
        self.assertRegex(lines[2], r"^%s:13:\d+: job c: .*Mars/Olympus" % path)

    def test_missing_file(self):
        rc, out, err = schedctl("check", "/nonexistent/registry.yaml")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/registry.yaml", out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
