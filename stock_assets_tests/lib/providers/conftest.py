"""A real local HTTP server replaying recorded provider payloads, and a fake clock.

Routes map a path to a queue of canned responses (the last one repeats); every request is recorded
with its query and headers, so tests can assert what the adapter sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"
API_KEY = "TESTKEY-7f3a9c"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class Canned:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def canned(name: str, status: int = 200, **headers: str) -> Canned:
    """A recorded fixture payload as a response."""
    return Canned(status, fixture_text(name), headers)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FixtureServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port> answering from per-path queues."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Canned]] = {}
        self.requests: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                outer.requests.append(Seen(parts.path, query, dict(self.headers.items())))
                queue = outer.routes.get(parts.path)
                if not queue:
                    reply = Canned(404, json.dumps({"error": f"no route {parts.path}"}))
                else:
                    reply = queue.pop(0) if len(queue) > 1 else queue[0]
                if reply.delay_s:
                    threading.Event().wait(reply.delay_s)
                body = reply.body.replace("__APIKEY__", query.get("apikey", "")).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(self, path: str, *replies: Canned) -> None:
        self.routes[path] = list(replies)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    srv = FixtureServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


class FakeTime:
    """Monotonic clock + sleep that only advance a number; sleeps are recorded."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
