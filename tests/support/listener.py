"""A small HTTP server on a loopback port that records every request it receives: the hostile API, the
attacker's host a link points to, the interceptor of the attack tests. What it answers is up to the test
(`answer`); what it received (`received`) is what the tests assert on, so "no credential reached it" is
observed, not assumed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


@dataclass
class Answer:
    """A response: `body` is sent as JSON unless it is `bytes` (sent as it is)."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


Answerer = Callable[[Received], Answer]


class Listener:
    """`with Listener(answer) as server:` serves on `server.url` (127.0.0.1, a free port) until the block
    ends. `answer` may be replaced between requests (`server.answer = ...`)."""

    def __init__(self, answer: Answerer | None = None):
        self.answer: Answerer = answer or (lambda request: Answer())
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def headers_seen(self, name: str) -> list[str]:
        """Every value of header `name` this server received."""
        return [r.headers[name.lower()] for r in self.received if name.lower() in r.headers]


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            listener.record(request)
            answer = listener.answer(request)
            body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            headers = {"Content-Type": "application/json", **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args) -> None:  # quiet: the tests read `received`
            pass

    return Handler
