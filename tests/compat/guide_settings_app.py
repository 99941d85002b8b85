"""A Space app for the secrets and variables tests (standard library only, starts at once).

``GET /env/NAME`` answers ``{"pid", "boot", "name", "set", "value"}`` for the app's environment variable NAME: a
test asks for the secret or variable it set itself. Any other path answers ``{"pid", "boot"}``. ``boot`` is a random
id of this start (in a sandbox the pid is the same small number every time). At start it prints the NAMES of its
environment variables, never their values (the run log is scanned for secret values).
"""

import json
import os
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

PORT = int(os.environ.get("PORT", "7860"))
HOST = os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0")
BOOT = uuid.uuid4().hex


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        out: dict = {"pid": os.getpid(), "boot": BOOT}
        if self.path.startswith("/env/"):
            name = unquote(self.path[len("/env/") :])
            out.update(name=name, set=name in os.environ, value=os.environ.get(name))
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print("settings-app env names: " + " ".join(sorted(os.environ)), flush=True)
    ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
