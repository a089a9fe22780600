"""A webhook receiver for tests: a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A real HTTP server on loopback that records deliveries. It can fail the first N of them, or hold
    every request open until `release()` (a slow receiver)."""

    def __init__(self, fail_first: int = 0, hold: bool = False):
        self.received: list[tuple[bytes, dict]] = []
        self.arrivals: list[float] = []
        self.started = 0
        self.fail_left = fail_first
        self.released = threading.Event()
        if not hold:
            self.released.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.started += 1
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.released.wait(30)
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                    self.send_response(500)
                else:
                    outer.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                    outer.arrivals.append(time.monotonic())
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(b) for b, _ in self.received]

    def release(self):
        self.released.set()

    def close(self):
        self.release()
        self.httpd.shutdown()
