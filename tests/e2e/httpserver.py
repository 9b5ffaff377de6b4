"""A threaded HTTP server on its own thread: the lifecycle the test git origin and the
callback receiver share. A handler reaches its owner as `self.server.owner`."""

import threading
from http.server import ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # bursts of concurrent clients (the default backlog is 5)
    daemon_threads = True


class BackgroundServer:
    """Subclasses set `handler` (a BaseHTTPRequestHandler class), `thread_name`, and
    `host`/`port` before `start()`; port 0 picks a free one."""

    handler = None
    thread_name = "test-server"

    def start(self):
        self._server = _Server((self.host, self.port), self.handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if getattr(self, "_server", None):
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
