# SPDX-License-Identifier: MIT
"""Shared by the issue 18 tests of command jobs, chaining and metrics: a daemon whose plugin_dir
is the build's shipped plugins (exec.so, webhook.so), and a free loopback port."""
import glob
import os
import shutil
import socket

from harness import BUILDDIR, PLUGINS, Daemon, DaemonTestCase

SHIPPED = os.path.join(BUILDDIR, ".libs")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ShippedDaemon(Daemon):
    """Plugins load from plugin_dir only (schedulerd.yaml(5), FILE OWNERSHIP): this daemon's is a
    directory of its own holding copies of the shipped plugins and the test plugins."""

    def own_plugin_dir(self):
        d = os.path.join(self.tmp, "plugins")
        if not os.path.isdir(d):
            os.mkdir(d, 0o755)
            for so in glob.glob(os.path.join(SHIPPED, "*.so")) + glob.glob(os.path.join(PLUGINS, "*.so")):
                shutil.copy(so, d)
        self.plugin_dir = d
        return d

    def write_registry(self, jobs_yaml, scheduler_yaml=""):
        if "shutdown_grace" not in scheduler_yaml:
            scheduler_yaml += "  shutdown_grace: 3s\n"
        text = "scheduler:\n  plugin_dir: %s\n  state_dir: %s\n  control_socket: %s\n%s\njobs:\n%s\n" % (
            self.own_plugin_dir(), self.state, self.sock, scheduler_yaml, jobs_yaml)
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.config + ".tmp", self.config)


class ShippedTestCase(DaemonTestCase):
    def daemon(self, jobs, scheduler=""):
        d = ShippedDaemon(jobs, scheduler)
        self.daemons.append(d)
        return d
