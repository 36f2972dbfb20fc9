"""A loopback stub of Prometheus' `GET /api/v1/query` (Prometheus is a dependency of the scaler, not the system
under test). Answers come from `values`: query → number | None (empty result) | "nan" | list of
(labels, number) for vectors; `error=True` answers 503; `stop()` makes the port refuse connections."""
from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class PrometheusStub:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.default: Any = None
        self.error = False
        self.queries: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query).get("query", [""])[0]
                stub.queries.append(query)
                if parsed.path != "/api/v1/query":
                    self._reply(404, {"status": "error", "error": "not found"})
                elif stub.error:
                    self._reply(503, {"status": "error", "errorType": "unavailable", "error": "overloaded"})
                else:
                    self._reply(200, {"status": "success", "data": {"resultType": "vector",
                                                                    "result": stub.result(query)}})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server: ThreadingHTTPServer | None = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def result(self, query: str) -> list[dict[str, Any]]:
        value = self.values.get(query, self.default)
        if value is None:
            return []
        if isinstance(value, list):
            return [{"metric": labels, "value": [0, str(v)]} for labels, v in value]
        return [{"metric": {}, "value": [0, "NaN" if value == "nan" else str(value)]}]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def prometheus() -> Iterator[PrometheusStub]:
    stub = PrometheusStub()
    yield stub
    stub.stop()
