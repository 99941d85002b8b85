"""The API's most polled reads, answered again from the Hub's last answer while nothing it was made from has changed.

`wait_for_space` polls ``GET /api/spaces/{id}/runtime`` every second, Gradio clients and scripts call ``space_info``
(``GET /api/spaces/{id}``) and ``whoami`` (``GET /api/whoami-v2``) before anything else. Each is made by the app
(routing, the caller's token, three or four statements, git for the files and card, the response model): about a
millisecond of CPU. `AnswerCache` keeps the app's own answer (status, headers, the same body bytes: there is no second
way of making them) per path, ``Authorization`` and ``Host``, with the *mark* read just before the app made it, and
serves it again while a fresh read of the mark is equal:

- who the caller is: the credential generation and the principal `accounts.known_principal` answers from memory
  (moved by any change to a token, an account or a membership, in any process: storage/credentials.py); a token
  `authenticate` would read again (new, expired) is not served from here. A token whose ``last_used_at`` is due
  (once a minute) is still served: its write goes to a thread once (`accounts.write_last_used`), never 64 requests
  to the app at once;
- for a Space: its generation (moved by every transaction that changes its repo row or a row of it, in any process:
  storage/repo_generation.py), read by its exact name; and for ``space_info``, the commit ``main`` points at (the
  files, card and ``lastModified`` come from it; a push moves the branch before its transaction commits).

The mark is read *before* the app makes the answer, so a change that commits in between leaves an answer kept under
the older mark: served never, not stale. Only ``200`` answers to a ``GET`` without a query string are kept; every other
request goes to the app untouched. A mark is one statement outside any transaction (`Database.peek`), read on the
event loop: a thread hop costs more than the read, and with 64 connections the threads' turns at the interpreter made
the slowest answers seconds long (PostgreSQL, p99 1.7 s in a thread against 28 ms on the loop). A database over a
network answers it within `storage.db.PEEK_TIMEOUT_MS` or the read fails, and the app answers. Each process keeps
its own answers (at most `LIMIT`, the oldest going first).

Requests that the event loop starts in one turn share each mark read in that turn (`_fresh`, emptied by a callback
scheduled at its first read, so before any request the loop starts after it). A request is started only once its
bytes were received, and its start was scheduled before that read began: whatever a client saw acknowledged before
it sent the request committed before the read, exactly as with a read of its own. At 64 connections one turn starts
many requests for the same few reads; on PostgreSQL each read is a round trip that holds the loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spacehub.services import accounts, answer_marks
from spacehub.services.context import HubContext
from spacehub.web.deps import token_of

log = logging.getLogger("spacehub.answers")
_SPACE = re.compile(r"/api/spaces/([^/]+)/([^/]+?)(/runtime)?")
WHOAMI = "/api/whoami-v2"
LIMIT = 4096  # answers kept per process (each ~0.3-2 KB)
MAX_BODY = 64 * 1024  # a larger answer is not kept


@dataclass(frozen=True, slots=True)
class Kept:
    mark: tuple[Any, ...]
    start: Message
    body: bytes


class AnswerCache:
    """ASGI middleware in front of the Hub app (inside `app.RequestIds`, which names each answer)."""

    def __init__(self, app: ASGIApp, ctx: HubContext) -> None:
        self.app, self.ctx = app, ctx
        self.kept: dict[tuple[Any, ...], Kept] = {}
        self.served = self.made = 0  # answers served from here, answers the app made and were kept
        self._writing: asyncio.Task[int] | None = None  # the write of tokens' last_used_at, in a thread
        self._fresh: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}  # marks read in this turn of the loop
        self.reads = 0  # marks read from the database (the others were shared within a turn)

    def _written(self, task: asyncio.Task[int]) -> None:
        self._writing = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("writing tokens' last_used_at failed", exc_info=task.exception())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = _read_of(scope) if scope["type"] == "http" else None
        if read is None:
            return await self.app(scope, receive, send)
        auth = host = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"host":
                host = value
        token = token_of(auth.decode("latin-1"))
        try:
            mark = self._fresh_mark(read, token)  # on the event loop: one small read, shorter than a hop to a thread
        except (SQLAlchemyError, OSError):  # the database is slow or away: the app answers (or says why not)
            log.warning("reading the mark of a kept answer failed: the app answers", exc_info=True)
            mark = None
        if mark is None:
            return await self.app(scope, receive, send)
        key = (scope["path"], auth, host, scope.get("scheme"))
        kept = self.kept.get(key)
        if kept is not None and kept.mark == mark:
            self.served += 1
            await send(kept.start)
            await send({"type": "http.response.body", "body": kept.body})
            if self._writing is None and accounts.last_used_due(self.ctx.db.engine):
                self._writing = asyncio.create_task(asyncio.to_thread(accounts.write_last_used, self.ctx.db))
                self._writing.add_done_callback(self._written)
            return
        await self.app(scope, receive, self._keeping(key, mark, send))

    def _fresh_mark(self, read: tuple[str, ...], token: str | None) -> tuple[Any, ...] | None:
        """The mark of ``read`` as read in this turn of the loop, or read now (module docstring)."""
        key = (read, token)
        if key in self._fresh:
            return self._fresh[key]
        mark = self._mark(read, token)
        self.reads += 1
        if not self._fresh:  # the first read of this turn: forgotten before the loop starts another request
            asyncio.get_running_loop().call_soon(self._fresh.clear)
        self._fresh[key] = mark
        return mark

    def _mark(self, read: tuple[str, ...], token: str | None) -> tuple[Any, ...] | None:
        """What the answer to ``read`` for ``token`` is made from, now; None: not to be answered from here."""
        if read[0] == "whoami":
            return answer_marks.of_caller(self.ctx.db, token)
        space = answer_marks.of_space(self.ctx.db, token, read[1], read[2])
        if space is None or read[0] == "runtime":
            return space
        return *space, self.ctx.git.branch_head(space[1], "main")

    def _keeping(self, key: tuple[Any, ...], mark: tuple[Any, ...], send: Send) -> Callable[[Message], Any]:
        start: Message | None = None
        parts: list[bytes] = []
        size = 0

        async def keeping(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and start is not None and start["status"] == 200:
                body = message.get("body", b"")
                size += len(body)
                parts.append(body)
                if not message.get("more_body", False) and size <= MAX_BODY:
                    self.kept.pop(key, None)  # a new answer goes last
                    while len(self.kept) >= LIMIT:  # the oldest kept goes: the others stay (a poller of more
                        del self.kept[next(iter(self.kept))]  # Spaces than LIMIT once emptied the whole store)
                    self.kept[key] = Kept(mark, start, b"".join(parts))
                    self.made += 1
            await send(message)

        return keeping


def _read_of(scope: Scope) -> tuple[str, ...] | None:
    """Which kept read a request is: ("whoami",), ("runtime", ns, name), ("info", ns, name); None for any other."""
    if scope["method"] != "GET" or scope["query_string"]:
        return None
    path = scope["path"]
    if path == WHOAMI:
        return ("whoami",)
    m = _SPACE.fullmatch(path)
    if m is None:
        return None
    return ("runtime" if m[3] else "info", m[1], m[2])
