"""A Space app with no dependency: the standard library's HTTP server on $PORT.

It answers every GET with a small page that names MARKER, its process id and a random id of this start (in a
sandbox every start is pid 2 or so: the boot id tells two starts apart), and prints one line per request (the
Space's run log shows them). STARTUP_DELAY seconds pass before it listens: raise it to watch a new commit replace
the running app without a gap (the old one serves until the new one answers).
"""

import html
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = "python-http-v1"
STARTUP_DELAY = 0.0
PORT = int(os.environ.get("PORT", "7860"))
HOST = os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0")
SPACE_ID = os.environ.get("SPACE_ID", "(not on a Space)")
BOOT = uuid.uuid4().hex


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = (
            "<!doctype html><html><head><title>Python HTTP example</title></head><body>"
            f"<h1 id='marker'>{MARKER}</h1><p id='pid'>{os.getpid()}</p><p id='boot'>{BOOT}</p>"
            f"<p id='space'>{html.escape(SPACE_ID)}</p><p id='path'>{html.escape(self.path)}</p>"
            "</body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"{MARKER} served GET {self.path}", flush=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request is printed by do_GET


if __name__ == "__main__":
    print(f"{MARKER} starting (pid {os.getpid()}, Python {sys.version.split()[0]})", flush=True)
    time.sleep(STARTUP_DELAY)
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    print(f"{MARKER} listening on {HOST}:{PORT}", flush=True)
    server.serve_forever()
