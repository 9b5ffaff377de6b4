"""A chart repository the tests control on 127.0.0.1:18421 (in the local stack's
OutboundAllowList): each path prefix serves the index.yaml a test puts there, behind
Basic credentials if the test asks for them, and the server counts requests."""

import base64
import threading
from http.server import BaseHTTPRequestHandler

from httpserver import BackgroundServer

HOST, PORT = "127.0.0.1", 18421


def index_yaml(versions) -> str:
    """An index.yaml listing `versions` [(chart, version)], as helm repo index writes it."""
    charts = {}
    for chart, version in versions:
        charts.setdefault(chart, []).append(version)
    out = ["apiVersion: v1", "entries:"]
    for chart, vs in sorted(charts.items()):
        out.append(f"  {chart}:")
        for v in vs:
            out += [f"  - apiVersion: v2", f"    name: {chart}", f"    version: {v}",
                    f"    appVersion: \"{v}\"", f"    description: The {chart} chart",
                    f"    digest: {'0' * 64}", "    created: \"2026-12-01T00:00:00Z\"",
                    f"    urls:", f"    - {chart}-{v}.tgz"]
    out.append("generated: \"2026-12-01T00:00:00Z\"")
    return "\n".join(out) + "\n"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        owner = self.server.owner
        prefix, _, name = self.path.rpartition("/")
        with owner.lock:
            owner.hits[prefix] = owner.hits.get(prefix, 0) + 1
            served = owner.repos.get(prefix)
        if served is None or name != "index.yaml":
            self.send_error(404)
            return
        body, credentials = served
        if credentials:
            expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            if self.headers.get("authorization") != expected:
                self.send_response(401)
                self.send_header("www-authenticate", 'Basic realm="charts"')
                self.send_header("content-length", "0")
                self.end_headers()
                return
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-yaml")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ChartServer(BackgroundServer):
    handler = _Handler
    thread_name = "chart-server"

    def __init__(self, host=HOST, port=PORT):
        self.host, self.port = host, port
        self.lock = threading.Lock()
        self.repos = {}
        self.hits = {}

    def serve(self, prefix: str, body, credentials=None) -> str:
        """Serves `body` at <prefix>/index.yaml; returns the repository URL."""
        with self.lock:
            self.repos[prefix] = (body, credentials)
        return f"http://{self.host}:{self.port}{prefix}"

    def requests(self, prefix: str) -> int:
        with self.lock:
            return self.hits.get(prefix, 0)
