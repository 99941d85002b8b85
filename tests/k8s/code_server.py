"""The code a pod of the contract suite fetches: the two routes of the Hub's API that the fetch init container's
program calls (manifests.FETCH_SCRIPT: a revision's file list, then each file's resolve URL), over a test's bare git
repository, with the token checked. test_code_delivery.py proves the same program against the real Hub; this serves
the contract suite's `SpaceRepo` (a commit the test wrote into a git directory) to real pods, at an address they
reach (the node's)."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2


def _files(tree: pygit2.Tree, prefix: str = "") -> Iterator[tuple[str, pygit2.Blob]]:
    for entry in tree:
        if isinstance(entry, pygit2.Tree):
            yield from _files(entry, f"{prefix}{entry.name}/")
        elif isinstance(entry, pygit2.Blob):
            yield f"{prefix}{entry.name}", entry


@contextmanager
def code_server(git_dir: Path, repo_id: str, token: str, host: str) -> Iterator[str]:
    """Serve ``git_dir`` as the Space ``repo_id`` on ``host`` (a free port) to requests with ``token``; yields the
    URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self._send(401, b"no token")
            path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
            repo = pygit2.Repository(str(git_dir))
            for prefix, kind in ((f"/api/spaces/{repo_id}/revision/", "list"), (f"/spaces/{repo_id}/resolve/", "file")):
                if path.startswith(prefix):
                    sha, _, name = path[len(prefix) :].partition("/")
                    try:
                        files = dict(_files(repo.get(sha).peel(pygit2.Tree)))
                    except (ValueError, AttributeError, KeyError):
                        return self._send(404, b"no such revision")
                    if kind == "list":
                        body = {"siblings": [{"rfilename": f} for f in sorted(files)]}
                        return self._send(200, json.dumps(body).encode())
                    if name in files:
                        return self._send(200, files[name].data)
            return self._send(404, b"not found")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
