"""MemorySize enforcement for host-process Lambdas, as Lambda does it.

On AWS an execution environment whose memory exceeds the function's MemorySize is killed
(the invocation fails with "Runtime exited with error: signal: killed", error type
Runtime.OutOfMemory) and the next invocation gets a fresh one. Host processes have no such
limit, so a leak that would kill a Lambda after a few requests goes unnoticed locally.

`MemoryWatchdog` samples the resident memory (VmRSS of /proc/<pid>/status) of a process and
of all its descendants every `interval` seconds and, over the limit, calls `on_exceeded` and
SIGKILLs the process group. This module has no LocalStack import so it can be tested alone
(`python -m unittest discover localstack/executor/tests`).

Disable with CAIRN_LAMBDA_ENFORCE_MEMORY=0 in LocalStack's environment (all functions) or in
a function's environment variables (that function).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping

LOG = logging.getLogger(__name__)

ENFORCE_ENV = "CAIRN_LAMBDA_ENFORCE_MEMORY"
# Sampling period; a process that allocates faster than this can overshoot the limit by what
# it allocates in one period before it is killed.
DEFAULT_INTERVAL_SECONDS = 0.1


def enforcement_enabled(*environments: Mapping[str, str] | None) -> bool:
    """False if any of the environments sets CAIRN_LAMBDA_ENFORCE_MEMORY to 0/false/no/off."""
    for env in environments:
        value = (env or {}).get(ENFORCE_ENV)
        if value is not None and str(value).strip().lower() in ("0", "false", "no", "off"):
            return False
    return True


def _status_kib(pid: int, field: str = "VmRSS:") -> int:
    """A `kB` field of /proc/<pid>/status; 0 if the process is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Direct children of every thread of `pid` (/proc/<pid>/task/<tid>/children)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                out.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return out


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def tree_rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its descendants, KiB (VmRSS summed)."""
    return sum(_status_kib(p) for p in process_tree(pid))


def peak_rss_kib(pid: int) -> int:
    """VmHWM of `pid` alone (peak resident memory), KiB."""
    return _status_kib(pid, "VmHWM:")


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class MemoryWatchdog:
    """Kills process group `pgid` (led by `pid`) when the tree's VmRSS exceeds `limit_mb` MiB.

    `on_exceeded(rss_kib, limit_kib)` is called before the SIGKILL, so the caller can record
    why the process is about to die. Stops by itself once the process has gone, or on `stop()`.
    """

    def __init__(
        self,
        pid: int,
        limit_mb: int,
        on_exceeded: Callable[[int, int], None],
        *,
        pgid: int | None = None,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        name: str | None = None,
    ) -> None:
        self.pid = pid
        self.pgid = pid if pgid is None else pgid
        self.limit_kib = int(limit_mb) * 1024
        self.interval = interval
        self.on_exceeded = on_exceeded
        self.peak_kib = 0
        self.killed_at_kib: int | None = None
        self._start_time = _start_time(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=name or f"cairn-mem-{pid}", daemon=True
        )

    def start(self) -> MemoryWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _alive(self) -> bool:
        return self._start_time is not None and _start_time(self.pid) == self._start_time

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._alive():
                return
            rss = tree_rss_kib(self.pid)
            self.peak_kib = max(self.peak_kib, rss)
            if rss > self.limit_kib:
                # Re-check identity right before killing: never signal a reused pid.
                if self._stop.is_set() or not self._alive():
                    return
                self.killed_at_kib = rss
                try:
                    self.on_exceeded(rss, self.limit_kib)
                except Exception:  # the kill matters more than the report
                    LOG.exception("memory watchdog callback failed")
                try:
                    os.killpg(self.pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                return
            self._stop.wait(self.interval)
