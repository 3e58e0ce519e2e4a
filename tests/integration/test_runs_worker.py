# SPDX-License-Identifier: MIT
"""test_runs.py again with every job `isolation: worker` (issue 16: singleton, max_concurrent, retry,
timeout and the fault handling mean the same in both isolation modes)."""
import os
import unittest

os.environ["SCHEDULERD_TEST_ISOLATION"] = "worker"  # read by harness.job(), imported below

from test_runs import *  # noqa: E402,F401,F403

if __name__ == "__main__":
    unittest.main(verbosity=2)
