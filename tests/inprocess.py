"""An in-process Hub for API behaviour tests: the app `spacehub serve` runs (`wiring.assemble`, ``runtime.backend =
"none"``) over a fresh data dir, with no server process and no socket.

Two ways in, both the real thing above the socket:
- the real `huggingface_hub` client: 2.x makes every request through one shared `httpx2.Client`, built by a factory
  that `huggingface_hub.utils.set_client_factory` replaces. The factory installed here is the client's own (same
  event hooks, redirects, no timeout) plus a transport mounted for ``*.hub.test`` that hands each request to the app
  of that host. Every other host goes out as before, so live-server tests in the same worker are unaffected.
- raw HTTP: ``hub.http``, Starlette's `TestClient` (an `httpx.Client`) on the app, for what the client cannot send.

The transport goes through that same `TestClient`, so one event loop (its portal) serves both, and an exception
inside the app is raised in the test rather than turned into a 500 the test might not look at.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from fastapi.testclient import TestClient
from huggingface_hub import HfApi
from huggingface_hub.utils import set_client_factory
from huggingface_hub.utils._http import hf_request_event_hook
from typer.testing import CliRunner

from spacehub import cli as spacehub_cli
from spacehub.config import Settings
from spacehub.services import accounts
from spacehub.services.context import HubContext
from spacehub.wiring import assemble

DOMAIN = "hub.test"
_hubs: dict[str, TestClient] = {}  # host → the test client of its app
_hosts = itertools.count(1)
_install_lock = threading.Lock()
_installed = False


class InProcessTransport(httpx2.BaseTransport):
    """huggingface_hub's requests to ``*.hub.test``, answered by the app of that host."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        client = _hubs.get(request.url.host)
        if client is None:
            raise httpx2.ConnectError(f"no in-process hub at {request.url.host}", request=request)
        answer = client.request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=request.read(),
            follow_redirects=False,  # the huggingface_hub client decides, as it would over a network
        )
        headers = [(k, v) for k, v in answer.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx2.Response(answer.status_code, headers=headers, content=answer.content, request=request)


def _client_factory() -> httpx2.Client:
    """`huggingface_hub.utils._http.default_client_factory`, plus the in-process transport for ``*.hub.test``."""
    return httpx2.Client(
        event_hooks={"request": [hf_request_event_hook]},
        follow_redirects=True,
        timeout=None,
        mounts={f"all://*.{DOMAIN}": InProcessTransport()},
    )


def install() -> None:
    """Route huggingface_hub's ``*.hub.test`` requests in-process (once per process; other hosts are untouched)."""
    global _installed
    with _install_lock:
        if not _installed:
            set_client_factory(_client_factory)
            _installed = True


@dataclass
class InProcessHub:
    """One Hub app: ``url`` is what clients are pointed at (``HfApi(endpoint=hub.url)``), ``http`` raw HTTP on it.

    Same shape as the live `tests.conftest.Server` where tests use it (``url``, ``data_dir``, ``user``, ``cli``,
    ``tokens``), so a test moves from one to the other by changing its fixture."""

    url: str
    data_dir: Path
    ctx: HubContext
    http: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, name: str, role: str = "write") -> str:
        """Create ``name`` (if new) and return a token of ``role`` (the same one each time for ``write``)."""
        if role == "write" and name in self.tokens:
            return self.tokens[name]
        with self.ctx.db.transaction() as s:
            if accounts.get_account(s, name) is None:
                accounts.create_user(s, name)
            token = accounts.create_token(s, name, role)
        if role == "write":
            self.tokens[name] = token
        return token

    def cli(self, *args: str) -> str:
        """The real ``spacehub`` command line on this hub's data dir, run in this process."""
        result = CliRunner().invoke(spacehub_cli.app, [*args, "--data-dir", str(self.data_dir)])
        if result.exit_code != 0:
            raise RuntimeError(f"spacehub {' '.join(args)}: exit {result.exit_code}: {result.output}")
        return result.output

    def api(self, token: str | None) -> HfApi:
        return HfApi(endpoint=self.url, token=token or False)


def start_inprocess_hub(data_dir: Path, settings: dict[str, object] | None = None) -> InProcessHub:
    """A new in-process hub over ``data_dir`` (stop it with `stop_inprocess_hub`). ``settings``: Settings overrides."""
    install()
    overrides = dict(settings or {})
    runtime = {"backend": "none", **overrides.pop("runtime", {})}  # type: ignore[dict-item]
    parts = assemble(Settings(data_dir=data_dir, runtime=runtime, **overrides))  # type: ignore[arg-type]
    host = f"h{next(_hosts)}.{DOMAIN}"
    url = f"http://{host}"
    http = TestClient(parts.app, base_url=url)
    http.__enter__()  # one portal (event loop thread) for every request, and the app's lifespan
    _hubs[host] = http
    return InProcessHub(url, data_dir, parts.ctx, http)


def stop_inprocess_hub(hub: InProcessHub) -> None:
    _hubs.pop(hub.url.removeprefix("http://"), None)
    hub.http.__exit__(None, None, None)
    if hub.ctx.webhook_sender is not None:
        hub.ctx.webhook_sender.close()
    hub.ctx.db.engine.dispose()
