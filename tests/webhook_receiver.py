"""A webhook receiver for the tests: a real HTTP server on loopback that records every POST (path, headers, JSON
body) and answers each path as told (``fail[path] = n``: the next n posts to it get a 500; ``delay[path]``: seconds
before it answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def scope(self) -> str:
        return str(self.body["event"]["scope"])

    @property
    def action(self) -> str:
        return str(self.body["event"]["action"])


@dataclass
class Receiver:
    url: str
    got: list[Delivery] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # path → how many more posts to it get a 500
    always_fail: set[str] = field(default_factory=set)
    delay: dict[str, float] = field(default_factory=dict)  # path → seconds to wait before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.got if d.path == path]

    def wait_for(
        self, path: str, check: Callable[[list[Delivery]], bool], timeout: float = 20.0, what: str = ""
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.at(path)
            if check(got):
                return got
            if time.monotonic() > deadline:
                summary = [(d.scope, d.action, d.body.get("runtime", {}).get("event")) for d in got]
                raise AssertionError(f"{what or path}: not received in {timeout:.0f}s; got {summary}")
            time.sleep(0.05)


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            with rec.lock:
                rec.got.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
                failing = self.path in rec.always_fail or rec.fail.get(self.path, 0) > 0
                if self.path in rec.fail and rec.fail[self.path] > 0:
                    rec.fail[self.path] -= 1
            time.sleep(rec.delay.get(self.path, 0.0))
            self.send_response(500 if failing else 200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"no" if failing else b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
