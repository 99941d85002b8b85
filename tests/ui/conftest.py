"""Web UI fixtures: users with passwords (made by the CLI, as an admin would), and a browser-like HTTP client that
signs in, carries its cookies, posts forms with their CSRF token, and keeps every page it was served (the secret
scan reads them all)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def create_web_user(server: Server, name: str, password: str = PASSWORD) -> None:
    """``spacehub users create NAME --password-stdin`` (the password never on a command line); a user that other
    tests on the same server made already gets the password with ``users set-password``."""
    env = {**os.environ, "SPACEHUB_RUNTIME__BACKEND": "none", **server.env}
    for command in ("create", "set-password"):
        r = subprocess.run(
            [sys.executable, "-m", "spacehub", "users", command, name, "--password-stdin", "--data-dir",
             str(server.data_dir)],
            input=password + "\n", capture_output=True, text=True, env=env,
        )  # fmt: skip
        if r.returncode == 0:
            return
        assert command == "create" and "already taken" in r.stdout + r.stderr, r.stdout + r.stderr
    raise AssertionError(f"could not give {name} a password")


class Web(httpx.Client):
    """A browser's view of the Hub: cookies kept, HTML asked for, every page body kept in ``pages``."""

    def __init__(self, server: Server) -> None:
        super().__init__(base_url=server.url, headers={"accept": "text/html"}, timeout=30, follow_redirects=False)
        self.pages: list[str] = []
        self.event_hooks["response"] = [self._keep]

    def _keep(self, r: httpx.Response) -> None:
        if r.headers.get("content-type", "").startswith("text/html"):
            r.read()
            self.pages.append(r.text)

    def csrf(self, path: str = "/spaces") -> str:
        r = self.get(path)
        m = CSRF_RE.search(r.text)
        assert m, f"no CSRF token on {path}: {r.status_code} {r.text[:300]}"
        return m.group(1)

    def form(self, path: str, data: dict[str, str], page: str = "/spaces") -> httpx.Response:
        """POST ``data`` as a form, with the CSRF token of ``page``."""
        return self.post(path, data={"csrf_token": self.csrf(page), **data})

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        r = self.form("/login", {"username": name, "password": password, "next": "/spaces"}, page="/login")
        assert r.status_code == 303, r.text
        return r


@pytest.fixture
def web(server: Server) -> Web:
    return Web(server)


@pytest.fixture(scope="session")
def carol(server: Server) -> str:
    """A user with a password (and a CLI token in ``server.tokens``)."""
    create_web_user(server, "carol")
    server.tokens["carol"] = server.cli("tokens", "create", "carol").strip().splitlines()[-1]
    return "carol"


@pytest.fixture(scope="session")
def dave(server: Server) -> str:
    create_web_user(server, "dave")
    return "dave"


def scan(pages: list[str], *secrets: str) -> None:
    """No page the browser was served holds any of ``secrets``."""
    for secret in secrets:
        leaked = [p[:200] for p in pages if secret in p]
        assert not leaked, f"a secret value is in {len(leaked)} rendered page(s)"


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
