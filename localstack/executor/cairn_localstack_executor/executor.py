"""A LocalStack Lambda runtime executor that needs no Docker.

Each LocalStack execution environment is one host process: the function's `bootstrap`
(provided.al2023 / provided.al2 custom runtimes, e.g. a Rust binary built with cargo-lambda).
The process talks to an in-process HTTP server implementing the standard Lambda Runtime API
(`AWS_LAMBDA_RUNTIME_API`), so an unmodified Lambda runtime client works against it.

- every bootstrap runs in its own process group; the whole group is killed on timeout and
  when the environment (or LocalStack) stops
- stdout/stderr become the invocation logs (CloudWatch Logs in LocalStack) and are appended to
  $CAIRN_STATE/lambda-logs/<function-name>.log
- a pid file per live process lives in $CAIRN_STATE/lambda-pids/ so stop.sh can clean up even
  after LocalStack itself was killed
- the function's MemorySize is enforced as on Lambda: a process tree whose resident memory
  (VmRSS) exceeds it is SIGKILLed, the invocation fails with Runtime.OutOfMemory ("Runtime
  exited with error: signal: killed") and the next one starts a fresh process (memory.py;
  CAIRN_LAMBDA_ENFORCE_MEMORY=0 in LocalStack's or the function's environment turns it off)
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from cairn_localstack_executor.memory import MemoryWatchdog, enforcement_enabled, peak_rss_kib

LOG = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
# How the function sees LocalStack (both run on this host).
LOCALSTACK_HOSTNAME = "localhost"
# Grace period between SIGTERM and SIGKILL when an environment stops.
STOP_GRACE_SECONDS = 1.0
# Lines of output kept in memory per environment for get_logs().
ENV_LOG_LINES = 2000


def function_access_key(function_name: str) -> str:
    """The access key id a function's process gets: `CAIRNFN` and the function name's
    letters and digits (never 12 leading digits, which LocalStack would take for an
    account id)."""
    return "CAIRNFN" + "".join(c for c in function_name if c.isalnum())


def state_dir() -> Path:
    if state := os.environ.get("CAIRN_STATE"):
        return Path(state)
    cache = os.environ.get("CAIRN_CACHE") or os.path.expanduser("~/.cache/cairn")
    return Path(cache) / "state"


def _settle(future: Future, result=None, error: BaseException | None = None) -> None:
    """Resolve a future unless someone else already did (exit watcher vs. HTTP handler races)."""
    try:
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    except Exception:  # InvalidStateError: already resolved
        pass


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _pending_bytes(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


# Process groups alive in this LocalStack process: killed at interpreter exit in case
# LocalStack shuts down without stopping every environment.
_LIVE_GROUPS: dict[int, str] = {}
_LIVE_LOCK = threading.Lock()


@atexit.register
def _kill_live_groups() -> None:
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class FunctionLogFile:
    """Appends lines to $CAIRN_STATE/lambda-logs/<function>.log (shared by a function's environments)."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, function_name: str, env_id: str):
        self.path = state_dir() / "lambda-logs" / f"{function_name}.log"
        self.prefix = env_id[:8]
        with self._locks_guard:
            self._lock = self._locks.setdefault(str(self.path), threading.Lock())

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        stamp = _utc_now()
        text = "".join(f"{stamp} {self.prefix} {line}\n" for line in lines)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(text)
        except OSError as e:  # logging must never break an invocation
            LOG.warning("cannot write %s: %s", self.path, e)


class PendingInvocation:
    def __init__(self, payload: dict[str, str], timeout_s: int):
        self.request_id = payload["invoke-id"]
        self.function_arn = payload["invoked-function-arn"]
        self.trace_id = payload.get("trace-id") or ""
        self.body = (payload.get("payload") or "").encode("utf-8")
        self.deadline_ms = int(time.time() * 1000) + timeout_s * 1000
        # resolves to (payload bytes, is_error)
        self.future: Future[tuple[bytes, bool]] = Future()

    def finish(self, body: bytes, is_error: bool) -> bool:
        try:
            self.future.set_result((body, is_error))
            return True
        except Exception:  # InvalidStateError: lost a race with another finisher
            return False


class RuntimeApi:
    """The Lambda Runtime API of one execution environment, served on 127.0.0.1:<random port>."""

    def __init__(self, env_id: str):
        self.env_id = env_id
        self._cond = threading.Condition()
        self._queued: PendingInvocation | None = None
        self._in_flight: PendingInvocation | None = None
        self._closed = False
        self.init_future: Future[bool] = Future()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep LocalStack's log clean
                LOG.debug("runtime api %s: " + fmt, api.env_id, *args)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                try:
                    self.send_response(status)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if body:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # the bootstrap was killed (timeout, stop) while we answered
                    self.close_connection = True

            def do_GET(self):
                if self.path != f"{API_PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"unknown path"}')
                inv = api.next_invocation()
                if inv is None:  # environment is stopping
                    self.close_connection = True
                    return self._reply(410, b'{"errorMessage":"environment stopped"}')
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                }
                if inv.trace_id:
                    headers["Lambda-Runtime-Trace-Id"] = inv.trace_id
                self._reply(200, inv.body, headers)

            def do_POST(self):
                body = self._body()
                parts = self.path[len(API_PREFIX) :].strip("/").split("/")
                if self.path.startswith(API_PREFIX) and parts == ["init", "error"]:
                    api.init_error(body)
                    return self._reply(202, b'{"status":"OK"}')
                if self.path.startswith(API_PREFIX) and len(parts) == 3 and parts[0] == "invocation":
                    request_id, kind = parts[1], parts[2]
                    if kind in ("response", "error"):
                        if api.complete(request_id, body, is_error=kind == "error"):
                            return self._reply(202, b'{"status":"OK"}')
                        return self._reply(
                            400, b'{"errorMessage":"unknown or finished request id"}'
                        )
                self._reply(404, b'{"errorMessage":"unknown path"}')

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"cairn-runtime-api-{env_id[:8]}", daemon=True
        )
        self._thread.start()

    # -- called by the HTTP handler ---------------------------------------------------------
    def next_invocation(self) -> PendingInvocation | None:
        _settle(self.init_future, True)  # first /next call = init finished
        with self._cond:
            while self._queued is None and not self._closed:
                self._cond.wait(timeout=1.0)
            if self._closed:
                return None
            inv, self._queued = self._queued, None
            self._in_flight = inv
            return inv

    def complete(self, request_id: str, body: bytes, is_error: bool) -> bool:
        with self._cond:
            inv = self._in_flight
            if inv is None or inv.request_id != request_id:
                return False
            self._in_flight = None
        return inv.finish(body, is_error)

    def init_error(self, body: bytes) -> None:
        if not self.init_future.done():
            error = body.decode(errors="replace")
            _settle(self.init_future, error=LambdaRuntimeException(f"bootstrap reported an init error: {error}"))
        else:  # init errors after init: fail whatever is running
            self.fail_current(body)

    # -- called by the executor -------------------------------------------------------------
    def submit(self, inv: PendingInvocation) -> None:
        with self._cond:
            self._queued = inv
            self._cond.notify_all()

    def fail_current(self, body: bytes | Callable[[PendingInvocation], bytes]) -> None:
        """Resolve the queued/in-flight invocation with an error (process died, stop...).

        `body` may be a function of the invocation (error messages naming the request id).
        """
        with self._cond:
            invs = [i for i in (self._queued, self._in_flight) if i is not None]
            self._queued = self._in_flight = None
        for inv in invs:
            inv.finish(body(inv) if callable(body) else body, True)

    def reset(self) -> None:
        """Prepare for a fresh bootstrap process."""
        with self._cond:
            self._queued = self._in_flight = None
        self.init_future = Future()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class ProcessRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one `bootstrap` host process."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.function_name = function_version.id.function_name
        self.api: RuntimeApi | None = None
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self._stopped = threading.Event()
        self._invoke_lock = threading.Lock()
        self._spawn_lock = threading.Lock()
        # output handling: the reader only consumes the pipe while holding _out_lock
        self._out_lock = threading.Lock()
        self._out_fd: int | None = None
        self._partial = b""
        self._pending_lines: list[str] = []
        self._env_log: deque[str] = deque(maxlen=ENV_LOG_LINES)
        self._log_file = FunctionLogFile(self.function_name, id)
        self._tmp_dir = state_dir() / "lambda-tmp" / id
        self._pid_file = state_dir() / "lambda-pids" / f"{id}.pid"
        # MemorySize enforcement: the watchdog of the live process, and the pids it killed
        # (pid -> (resident KiB when killed, limit KiB))
        self._watchdog: MemoryWatchdog | None = None
        self._oom_killed: dict[int, tuple[int, int]] = {}
        # milliseconds the last start took, until the next REPORT line carries it
        self._init_ms: float | None = None

    # -- RuntimeExecutor API --------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        if self.function_version.config.package_type != PackageType.Zip:
            raise LambdaRuntimeException("cairn-process runs only zip-packaged functions")
        self.api = RuntimeApi(self.id)
        self.env = self._build_env(env_vars)
        self._spawn_and_wait(init_timeout=None)  # LocalStack's startup timer calls stop()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.api:
            self.api.fail_current(_error_body("Runtime.Stopped", "execution environment stopped"))
            _settle(self.api.init_future, error=LambdaRuntimeException("execution environment stopped during init"))
        self._kill(graceful=True)
        if self.api:
            self.api.close()
        shutil.rmtree(self._tmp_dir, ignore_errors=True)

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return LOCALSTACK_HOSTNAME

    def get_runtime_endpoint(self) -> str:
        # LocalStack's internal callback endpoint (used by its Go init); unused by host processes.
        return f"http://{LOCALSTACK_HOSTNAME}:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def get_logs(self) -> str:
        with self._out_lock:
            return "\n".join(self._env_log)

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        with self._invoke_lock:
            return self._invoke(payload)

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        code = function_version.config.code
        if not code:
            raise LambdaRuntimeException("cairn-process cannot run image-based functions")
        code.prepare_for_execution()
        bootstrap = Path(code.get_unzipped_code_location()) / "bootstrap"
        if bootstrap.is_file():
            # zip tools do not always keep the executable bit
            bootstrap.chmod(bootstrap.stat().st_mode | 0o755)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    # -- internals ------------------------------------------------------------------------
    def _code_dir(self) -> Path:
        return Path(self.function_version.config.code.get_unzipped_code_location())

    def _build_env(self, env_vars: dict[str, str]) -> dict[str, str]:
        user_env = self.function_version.config.environment or {}
        code_dir = str(self._code_dir())
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self._tmp_dir),
            "LD_LIBRARY_PATH": f"{code_dir}/lib:{code_dir}",
        }
        env.update({k: str(v) for k, v in env_vars.items() if v is not None})
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
                "LAMBDA_TASK_ROOT": code_dir,
                "LAMBDA_RUNTIME_DIR": code_dir,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        if "AWS_ENDPOINT_URL" not in user_env:
            env["AWS_ENDPOINT_URL"] = f"http://{LOCALSTACK_HOSTNAME}:{config.GATEWAY_LISTEN[0].port}"
        if "AWS_ACCESS_KEY_ID" not in user_env:
            # LocalStack hands out assumed-role credentials; a plain key per function is
            # simpler to reason about, and names the function in the API call log
            # (api_log.py). It maps to the default account like "test" does.
            env["AWS_ACCESS_KEY_ID"] = function_access_key(self.function_name)
            env["AWS_SECRET_ACCESS_KEY"] = user_env.get("AWS_SECRET_ACCESS_KEY", "test")
            if "AWS_SESSION_TOKEN" not in user_env:
                env.pop("AWS_SESSION_TOKEN", None)
        return env

    def _bootstrap_path(self) -> Path:
        bootstrap = self._code_dir() / "bootstrap"
        if not bootstrap.is_file():
            runtime = self.function_version.config.runtime
            raise LambdaRuntimeException(
                f"{self.function_name}: no 'bootstrap' in the function code (runtime {runtime}); "
                "the cairn-process executor runs only provided.al2023/provided.al2 custom runtimes"
            )
        return bootstrap

    def _spawn_and_wait(self, init_timeout: float | None) -> None:
        with self._spawn_lock:
            if self._stopped.is_set():
                raise LambdaRuntimeException("execution environment stopped")
            self.api.reset()
            spawned = time.monotonic()
            self._spawn()
            init_future = self.api.init_future
        try:
            init_future.result(timeout=init_timeout)
            # Lambda's "Init Duration": process start to the first /next call, reported
            # with the first invocation (tests/bench/coldstart.sh reads it).
            self._init_ms = (time.monotonic() - spawned) * 1000
        except FutureTimeout:
            self._kill(graceful=False)
            raise LambdaRuntimeException(
                f"{self.function_name}: bootstrap did not call /runtime/invocation/next within "
                f"{init_timeout}s"
            ) from None
        except LambdaRuntimeException as e:
            self._kill(graceful=False)
            tail = "\n".join(list(self._env_log)[-20:])
            raise LambdaRuntimeException(f"{self.function_name}: {e}\n--- last output ---\n{tail}") from None

    def _spawn(self) -> None:
        bootstrap = self._bootstrap_path()
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [str(bootstrap)],
                cwd=str(self._code_dir()),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                process_group=0,
                close_fds=True,
            )
        except OSError as e:
            os.close(read_fd)
            hint = ""
            if e.errno == 8:  # ENOEXEC
                hint = " (wrong architecture? this host runs x86_64 binaries only)"
            raise LambdaRuntimeException(f"{self.function_name}: cannot start {bootstrap}: {e}{hint}") from e
        finally:
            os.close(write_fd)
        self.proc = proc
        with self._out_lock:
            self._out_fd = read_fd
        with _LIVE_LOCK:
            _LIVE_GROUPS[proc.pid] = self.id
        try:
            self._pid_file.parent.mkdir(parents=True, exist_ok=True)
            self._pid_file.write_text(f"{proc.pid}\n")
        except OSError as e:
            LOG.warning("cannot write %s: %s", self._pid_file, e)
        memory_note = self._start_watchdog(proc)
        self._log_file.write(
            [f"[cairn] started {bootstrap} pid={proc.pid} runtime-api={self.api.address} {memory_note}"]
        )
        threading.Thread(
            target=self._read_output, args=(proc, read_fd), name=f"cairn-out-{self.id[:8]}", daemon=True
        ).start()
        threading.Thread(
            target=self._watch_exit, args=(proc,), name=f"cairn-wait-{self.id[:8]}", daemon=True
        ).start()

    # -- MemorySize enforcement (memory.py) -----------------------------------------------
    def _memory_limit_mb(self) -> int | None:
        """The function's MemorySize, or None when enforcement is off."""
        if not enforcement_enabled(os.environ, self.function_version.config.environment):
            return None
        try:
            size = int(self.function_version.config.memory_size or 0)
        except (TypeError, ValueError):
            return None
        return size if size > 0 else None

    def _start_watchdog(self, proc: subprocess.Popen) -> str:
        limit_mb = self._memory_limit_mb()
        if limit_mb is None:
            self._watchdog = None
            return "memory-limit=off"

        def exceeded(rss_kib: int, limit_kib: int) -> None:
            with self._spawn_lock:  # read by _watch_exit under the same lock
                self._oom_killed[proc.pid] = (rss_kib, limit_kib)
            message = (
                f"[cairn] out of memory: bootstrap pid={proc.pid} resident {rss_kib / 1024:.0f} MB "
                f"(VmRSS of the process tree) > MemorySize {limit_kib // 1024} MB; "
                "killing its process group (Lambda: Runtime.OutOfMemory)"
            )
            self._log_file.write([message])
            LOG.warning("%s: %s", self.function_name, message)

        self._watchdog = MemoryWatchdog(
            proc.pid, limit_mb, exceeded, name=f"cairn-mem-{self.id[:8]}"
        ).start()
        return f"memory-limit={limit_mb}MB"

    def _max_memory_used_mb(self, proc: subprocess.Popen | None) -> int | None:
        """Peak resident memory of the current process (Lambda's "Max Memory Used")."""
        if proc is None:
            return None
        peak = peak_rss_kib(proc.pid)
        watchdog = self._watchdog
        if watchdog is not None and watchdog.pid == proc.pid:
            peak = max(peak, watchdog.peak_kib, watchdog.killed_at_kib or 0)
        return round(peak / 1024) if peak else None

    def _read_output(self, proc: subprocess.Popen, fd: int) -> None:
        try:
            while True:
                select.select([fd], [], [])
                with self._out_lock:
                    data = os.read(fd, 65536)
                    if not data:
                        self._flush_partial()
                        break
                    self._consume(data)
        except OSError:
            pass
        finally:
            with self._out_lock:
                if self._out_fd == fd:
                    self._out_fd = None
                os.close(fd)

    def _consume(self, data: bytes) -> None:
        """Split output into lines (caller holds _out_lock)."""
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        lines = [line.decode("utf-8", errors="replace").rstrip("\r") for line in complete]
        self._record(lines)

    def _flush_partial(self) -> None:
        if self._partial:
            self._record([self._partial.decode("utf-8", errors="replace")])
            self._partial = b""

    def _record(self, lines: list[str]) -> None:
        self._env_log.extend(lines)
        self._pending_lines.extend(lines)
        self._log_file.write(lines)

    def _drain_output(self, max_wait: float = 0.5) -> list[str]:
        """Collect everything the process wrote so far (it wrote before answering)."""
        deadline = time.monotonic() + max_wait
        while True:
            with self._out_lock:
                fd = self._out_fd
                try:
                    empty = fd is None or _pending_bytes(fd) == 0
                except OSError:
                    empty = True
                if empty or time.monotonic() > deadline:
                    self._flush_partial()
                    lines, self._pending_lines = self._pending_lines, []
                    return lines
            time.sleep(0.002)

    def _watch_exit(self, proc: subprocess.Popen) -> None:
        code = proc.wait()
        watchdog = self._watchdog
        if watchdog is not None and watchdog.pid == proc.pid:
            watchdog.stop()
        with _LIVE_LOCK:
            _LIVE_GROUPS.pop(proc.pid, None)
        # kill leftovers of the group (children the bootstrap may have started)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            if self._pid_file.read_text().strip() == str(proc.pid):
                self._pid_file.unlink()
        except OSError:
            pass
        status = f"signal {-code}" if code < 0 else f"exit status {code}"
        self._log_file.write([f"[cairn] bootstrap pid={proc.pid} ended ({status})"])
        # under _spawn_lock so a replacement process being started is never failed by mistake
        with self._spawn_lock:
            oom = self._oom_killed.pop(proc.pid, None)
            if self.proc is not proc or self._stopped.is_set():
                return
            if oom is not None:
                # Lambda's words for an environment killed over its MemorySize
                message = "Runtime exited with error: signal: killed"
                detail = f" (out of memory: resident {oom[0] / 1024:.0f} MB > MemorySize {oom[1] // 1024} MB)"
                _settle(self.api.init_future, error=LambdaRuntimeException(message + detail))
                self.api.fail_current(
                    lambda inv: _error_body(
                        "Runtime.OutOfMemory", f"RequestId: {inv.request_id} Error: {message}"
                    )
                )
                return
            message = f"Runtime exited with error: {status}"
            _settle(self.api.init_future, error=LambdaRuntimeException(message))
            self.api.fail_current(_error_body("Runtime.ExitError", message))

    def _kill(self, graceful: bool) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            if graceful:
                try:
                    proc.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    def _invoke(self, payload: dict[str, str]) -> InvocationResult:
        timeout_s = int(self.function_version.config.timeout or 3)
        inv = PendingInvocation(payload, timeout_s)
        request_id = inv.request_id
        if self._stopped.is_set():
            raise LambdaRuntimeException("execution environment stopped")

        # A previous invocation timed out or crashed the process: start a fresh one (cold start).
        if self.proc is None or self.proc.poll() is not None:
            try:
                self._spawn_and_wait(init_timeout=config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
            except LambdaRuntimeException as e:
                lines = self._drain_output()
                return InvocationResult(
                    request_id, _error_body("Runtime.InitError", str(e)), True, "\n".join(lines)
                )

        self._log_file.write([f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}"])
        started = time.monotonic()
        self.api.submit(inv)
        try:
            body, is_error = inv.future.result(timeout=timeout_s)
        except FutureTimeout:
            message = f"{_utc_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"
            body, is_error = _error_body("Sandbox.Timedout", message), True
            inv.finish(body, True)
            self._kill(graceful=False)
            self.api.fail_current(body)
            self._log_file.write([message])
        duration_ms = (time.monotonic() - started) * 1000
        lines = self._drain_output()
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\t"
            f"Memory Size: {self.function_version.config.memory_size} MB"
        )
        init_ms, self._init_ms = self._init_ms, None
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        max_used = self._max_memory_used_mb(self.proc)
        if max_used is not None:
            report += f"\tMax Memory Used: {max_used} MB"
        if is_error and b'"Runtime.OutOfMemory"' in body:
            report += "\tStatus: error\tError Type: Runtime.OutOfMemory"
        tail = [f"END RequestId: {request_id}", report]
        self._log_file.write(tail)
        logs = "\n".join([f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}", *lines, *tail])
        return InvocationResult(request_id, body, is_error, logs)
