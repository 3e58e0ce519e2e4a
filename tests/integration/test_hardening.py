# SPDX-License-Identifier: MIT
"""Issue 13: hardening found by a real systemd install and a security review, through the real
binaries. Runs as root (as make check does here); tests that need another owner use `nobody`."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import PLUGINS, SCHEDCTL, SCHEDULERD, Daemon, DaemonTestCase, job, wait_for

IS_ROOT = os.geteuid() == 0
try:
    NOBODY = pwd.getpwnam("nobody").pw_uid
except KeyError:
    NOBODY = None

EVIL_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
        int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0)
                close(fd);
}
"""


def schedctl(*args):
    p = subprocess.run([SCHEDCTL] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def compile_evil(path, marker):
    """A shared object whose constructor creates MARKER: proof that it ran in the loader."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    src = path[:-3] + ".c"
    with open(src, "w") as f:
        f.write(EVIL_C)
    p = subprocess.run([cc, "-shared", "-fPIC", "-std=c11", '-DMARKER="%s"' % marker, "-o", path, src],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("compiling %s failed:\n%s" % (src, p.stderr))
    os.unlink(src)


@unittest.skipUnless(IS_ROOT and NOBODY is not None, "needs root and a user nobody to own untrusted files")
class Trust(DaemonTestCase):
    """Item 2: nothing an unprivileged user wrote runs as root, in the daemon or in schedctl check."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="sched-trust-")  # 0700, root: trusted
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.marker = os.path.join(self.tmp, "constructor-ran")
        self.plugins = os.path.join(self.tmp, "plugins")
        os.mkdir(self.plugins, 0o755)
        self.evil = os.path.join(self.plugins, "evil.so")
        compile_evil(self.evil, self.marker)
        os.chmod(self.evil, 0o755)

    def write(self, path, text, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def registry(self, plugin="evil.so", extra=""):
        return self.write(os.path.join(self.tmp, "registry.yaml"),
                          "scheduler:\n  plugin_dir: %s\n%sjobs:\n  - name: a\n    plugin: %s\n"
                          "    schedule: '@daily'\n" % (self.plugins, extra, plugin))

    def check_refused(self, config, *needles):
        rc, out, err = schedctl("--config", config, "check")
        self.assertNotEqual(rc, 0, out + err)
        for n in needles:
            self.assertIn(n, out + err)
        self.assertFalse(os.path.exists(self.marker), "the untrusted plugin's constructor ran in schedctl check")

    def test_trusted_plugin_loads(self):
        # the control: a root-owned plugin in a root-owned 0755 dir under a 0700 dir in /tmp loads
        # (it is no job: check says so after loading it)
        rc, out, err = schedctl("--config", self.registry(), "check")
        self.assertIn('no "schedulerd_job" symbol', out + err)
        self.assertTrue(os.path.exists(self.marker))

    def test_world_writable_plugin(self):
        os.chmod(self.evil, 0o666)
        self.check_refused(self.registry(), self.evil, "writable by others (mode 0666)", "chmod go-w")

    def test_plugin_owned_by_nobody(self):
        os.chown(self.evil, NOBODY, -1)
        self.check_refused(self.registry(), self.evil, "owned by uid %d" % NOBODY, "chown root")

    def test_sticky_world_writable_plugin_dir(self):
        os.chmod(self.plugins, 0o1777)
        self.check_refused(self.registry(), "directory %s is writable by others (mode 1777)" % self.plugins)

    def test_symlinked_plugin(self):
        os.rename(self.evil, os.path.join(self.tmp, "real.so"))
        os.symlink(os.path.join(self.tmp, "real.so"), self.evil)
        self.check_refused(self.registry(), self.evil, "is a symbolic link")

    def test_plugin_outside_plugin_dir(self):
        elsewhere = os.path.join(self.tmp, "elsewhere.so")
        shutil.copy(self.evil, elsewhere)
        self.check_refused(self.registry(plugin=elsewhere), "plugins are loaded from plugin_dir only")
        self.check_refused(self.registry(plugin="../elsewhere.so"), "plugins are loaded from plugin_dir only")

    def test_registry_owned_by_nobody(self):
        reg = self.registry()
        os.chown(reg, NOBODY, -1)
        self.check_refused(reg, reg, "owned by uid %d" % NOBODY)

    def test_dropin_in_world_writable_dir(self):
        jobs_d = os.path.join(self.tmp, "jobs.d")
        os.mkdir(jobs_d)
        os.chmod(jobs_d, 0o777)
        drop = self.write(os.path.join(jobs_d, "x.yaml"), "jobs:\n  - name: b\n    plugin: evil.so\n"
                          "    schedule: '@daily'\n")
        os.chmod(self.evil, 0o600)  # would pass on its own
        self.check_refused(self.registry(plugin="nothere.so", extra="  include: jobs.d/*.yaml\n"),
                           drop, "directory %s is writable by others (mode 0777)" % jobs_d)

    def test_reload_of_nobodys_dropin_runs_nothing(self):
        """The issue's scenario: nobody writes a drop-in into a world-writable jobs.d naming their own
        plugin through ../; a reload must refuse it without mapping the plugin."""
        d = Daemon(job("one", "ok.so", "@daily"), "  include: %s/jobs.d/*.yaml\n" % self.tmp, tmp=self.tmp)
        self.daemons.append(d)
        os.chmod(self.tmp, 0o755)  # nobody must reach jobs.d
        jobs_d = os.path.join(self.tmp, "jobs.d")
        os.mkdir(jobs_d)
        os.chmod(jobs_d, 0o1777)
        d.start()
        theirs = tempfile.mkdtemp(prefix="sched-nobody-")
        self.addCleanup(shutil.rmtree, theirs, True)
        os.chown(theirs, NOBODY, -1)
        evil = os.path.join(theirs, "evil.so")
        shutil.copy(self.evil, evil)
        os.chown(evil, NOBODY, -1)
        rel = os.path.relpath(evil, PLUGINS)
        drop = os.path.join(jobs_d, "evil.yaml")
        subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=65534", "--clear-groups", "sh", "-c",
                        "printf 'jobs:\\n  - name: evil\\n    plugin: %s\\n    schedule: \"@daily\"\\n' > %s"
                        % (rel, drop)], check=True)
        self.assertEqual(os.stat(drop).st_uid, NOBODY)
        r = d.ctl({"command": "reload"})
        self.assertFalse(r["ok"], r)
        self.assertTrue(any(drop in e for e in r["errors"]), r)
        self.assertFalse(os.path.exists(self.marker), "nobody's plugin ran as root in the daemon")
        self.assertEqual([j["name"] for j in d.ctl({"command": "list"})["jobs"]], ["one"])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
