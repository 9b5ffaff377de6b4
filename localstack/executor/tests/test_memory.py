"""Unit tests of the MemorySize watchdog (no LocalStack needed).

    python3 -m unittest discover -s localstack/executor/tests -v
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn_localstack_executor.memory import (  # noqa: E402
    MemoryWatchdog,
    enforcement_enabled,
    process_tree,
    tree_rss_kib,
)

# Allocates (and touches) `mb` MiB in 8 MiB steps, 20 ms apart, then sleeps.
ALLOCATE = textwrap.dedent(
    """
    import sys, time
    keep = []
    for _ in range(int(sys.argv[1]) // 8):
        keep.append(b"x" * (8 << 20))
        time.sleep(0.02)
    print("allocated", flush=True)
    time.sleep(30)
    """
)
# Starts a child that allocates, then waits for it (the child is the one using memory).
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]])
    """
)


class WatchdogTest(unittest.TestCase):
    def spawn(self, *args):
        proc = subprocess.Popen(
            [sys.executable, "-c", *args],
            stdout=subprocess.PIPE,
            process_group=0,
        )
        self.addCleanup(self.reap, proc)
        return proc

    @staticmethod
    def reap(proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        proc.stdout.close()

    def test_process_over_the_limit_is_killed(self):
        proc = self.spawn(ALLOCATE, "256")
        calls = []
        dog = MemoryWatchdog(proc.pid, 64, lambda rss, limit: calls.append((rss, limit))).start()
        started = time.monotonic()
        code = proc.wait(timeout=20)
        dog.join(5)
        self.assertEqual(code, -signal.SIGKILL)
        self.assertEqual(len(calls), 1)
        rss, limit = calls[0]
        self.assertEqual(limit, 64 * 1024)
        self.assertGreater(rss, limit)
        # killed while allocating, well before it reached 256 MiB
        self.assertLess(rss, 200 * 1024)
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(dog.killed_at_kib, rss)

    def test_process_under_the_limit_lives(self):
        proc = self.spawn(ALLOCATE, "32")
        calls = []
        dog = MemoryWatchdog(proc.pid, 128, lambda rss, limit: calls.append(rss)).start()
        self.assertEqual(proc.stdout.readline().strip(), b"allocated")
        time.sleep(0.5)
        self.assertIsNone(proc.poll())
        self.assertEqual(calls, [])
        self.assertGreater(dog.peak_kib, 32 * 1024)
        dog.stop()
        dog.join(5)
        self.assertIsNone(proc.poll())

    def test_children_count_and_the_whole_group_dies(self):
        proc = self.spawn(PARENT, ALLOCATE, "256")
        calls = []
        dog = MemoryWatchdog(proc.pid, 64, lambda rss, limit: calls.append(rss)).start()
        # wait until the child exists, then remember it
        deadline = time.monotonic() + 10
        while len(process_tree(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        tree = process_tree(proc.pid)
        self.assertEqual(len(tree), 2)
        self.assertEqual(proc.wait(timeout=20), -signal.SIGKILL)
        dog.join(5)
        self.assertEqual(len(calls), 1)
        time.sleep(0.2)
        child = tree[1]
        self.assertFalse(Path(f"/proc/{child}").exists() and self._alive(child), "child survived")

    @staticmethod
    def _alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def test_watchdog_ends_with_its_process(self):
        proc = self.spawn("pass")
        dog = MemoryWatchdog(proc.pid, 64, lambda *a: None, interval=0.01).start()
        proc.wait(timeout=10)
        dog.join(5)
        self.assertFalse(dog._thread.is_alive())
        self.assertIsNone(dog.killed_at_kib)

    def test_tree_rss_of_self(self):
        self.assertGreater(tree_rss_kib(os.getpid()), 1000)
        self.assertEqual(tree_rss_kib(2**22 + 12345), 0)  # no such pid

    def test_enforcement_switch(self):
        self.assertTrue(enforcement_enabled({}, None))
        self.assertTrue(enforcement_enabled({"CAIRN_LAMBDA_ENFORCE_MEMORY": "1"}))
        for off in ("0", "false", "No", " off "):
            self.assertFalse(enforcement_enabled({}, {"CAIRN_LAMBDA_ENFORCE_MEMORY": off}), off)
            self.assertFalse(enforcement_enabled({"CAIRN_LAMBDA_ENFORCE_MEMORY": off}, {}), off)


if __name__ == "__main__":
    unittest.main()
