# SPDX-License-Identifier: MIT
"""A daemon session for `contrib/dev.sh valgrind`: runs of every kind, a reload, a bad reload and
a graceful stop, with the daemon under $SCHEDULERD_VALGRIND. Exits non-zero on any memcheck
error (valgrind's --error-exitcode) or definite leak."""
import signal
import sys
import time

from harness import Daemon, job

jobs = (job("ok", "ok.so", "* * * * * *") + job("fail", "fail.so", "@yearly") + job("crash", "crash.so", "@yearly") +
        job("slow", "slow.so", "@yearly", params={"duration": "200ms"}) +
        job("flaky", "retry.so", "@yearly", retry={"attempts": 2, "backoff": "100ms"}))
d = Daemon(jobs)
try:
    d.start()
    for name in ("ok", "fail", "crash", "slow", "flaky"):
        d.ctl({"command": "run", "job": name, "wait": True}, timeout=120)
    d.ctl({"command": "list"})
    d.ctl({"command": "status", "job": "ok"})
    d.ctl({"command": "history", "limit": 50})
    d.write_registry(jobs + job("new", "ok.so", "@daily"))
    d.signal(signal.SIGHUP)
    time.sleep(2)
    d.write_registry(jobs + job("Bad", "ok.so", "nonsense"))
    d.ctl({"command": "reload"})
    time.sleep(3)
    rc = d.stop(timeout=120)
finally:
    d.cleanup()
log = d.log()
if rc != 0 or "definitely lost" in log or "ERROR SUMMARY: " in log and "ERROR SUMMARY: 0 " not in log:
    print(log[-4000:])
    print("valgrind session: daemon exit %s" % rc)
    sys.exit(1)
print("valgrind session: clean (exit %s)" % rc)
