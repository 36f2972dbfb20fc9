"""One small HTTP server for the daemons' `/metrics` and `/healthz` (the exporters, the probe).

prometheus_client's own server has no health route; each daemon supplies its health check here instead of
carrying its own copy of a request handler.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

# A health check answers (healthy, one line for the body).
HealthCheck = Callable[[], tuple[bool, bytes]]


def _always_healthy() -> tuple[bool, bytes]:
    return True, b"ok\n"


def serve_metrics(registry: CollectorRegistry, address: str, port: int, *, name: str,
                  health: HealthCheck = _always_healthy) -> ThreadingHTTPServer:
    """Serve `registry` on /metrics and `health` on /healthz (503 when unhealthy) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - scrapes are not worth a log line
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/metrics":
                body, code, ctype = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif path == "/healthz":
                healthy, body = health()
                code, ctype = (200 if healthy else 503), "text/plain"
            else:
                body, code, ctype = b"not found\n", 404, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
