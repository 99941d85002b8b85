"""A Space app for the storage tests (standard library only): reads and writes files where it is told.

GET /write?path=P&size=N[&text=T]  writes T (or N bytes) to P, answers "ok" or "error <errno name>: <message>"
GET /read?path=P                   the file's text, or "<missing>"
GET /ls?path=P                     JSON list of the folder's entries, or "<missing>"
GET /env?name=N                    the variable's value, or "<unset>"
GET /                              "storage-app <boot>": a random id of this start (a sandboxed pid is always the same)
"""

import errno
import json
import os
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOOT = os.urandom(8).hex()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            body = self.answer(url.path, q)
        except OSError as e:
            body = f"error {errno.errorcode.get(e.errno or 0, '?')}: {e}"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer(self, path: str, q: dict[str, str]) -> str:
        if path == "/write":
            os.makedirs(os.path.dirname(q["path"]), exist_ok=True)
            with open(q["path"], "wb") as f:
                if "text" in q:
                    f.write(q["text"].encode())
                else:
                    chunk = b"x" * 2**20
                    left = int(q["size"])
                    while left > 0:
                        left -= f.write(chunk[: min(left, len(chunk))])
                f.flush()
                os.fsync(f.fileno())
            return "ok"
        if path == "/read":
            return open(q["path"]).read() if os.path.exists(q["path"]) else "<missing>"
        if path == "/ls":
            return json.dumps(sorted(os.listdir(q["path"]))) if os.path.isdir(q["path"]) else "<missing>"
        if path == "/env":
            return os.environ.get(q["name"], "<unset>")
        return f"storage-app {BOOT}"

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print("storage-app starting", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
