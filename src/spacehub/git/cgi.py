"""Run a CGI program (``git http-backend``) from the async server: the request body streams to its stdin while its
stdout streams back, after the CGI header block (``Status:`` and headers, then an empty line) is parsed.

The response is a plain ASGI response that never calls ``receive`` itself: the body feeder is the only reader, and
once the body is read it keeps listening for the client's disconnect so that a clone nobody reads any more is
stopped. Whatever runs after the program exits (``after``, e.g. push bookkeeping) runs in its own task, so it
completes even if the client goes away, and before the last byte when the client stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from spacehub.errors import HubError, PayloadTooLarge

log = logging.getLogger("spacehub.git")
CHUNK = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
STDERR_KEEP = 16 * 1024
_tasks: set[asyncio.Task[None]] = set()  # strong references to the bookkeeping tasks (asyncio keeps weak ones)


@dataclass
class _Run:
    proc: asyncio.subprocess.Process
    limit: int
    too_large: bool = False
    stderr: bytearray = field(default_factory=bytearray)

    def kill(self) -> None:
        """Kill the program and its children (``http-backend`` runs ``upload-pack``/``receive-pack``, which hold the
        pipes: killing the parent alone would leave them writing to a pipe nobody reads)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


async def run_cgi(
    request: Request,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    limit: int,
    after: Callable[[int], Awaitable[None]] | None = None,
    buffered: bool = False,
) -> Response:
    """Start ``argv`` as a CGI program for ``request`` and answer with its output.

    ``after(returncode)`` runs once the program has exited, whatever happened to the client. ``buffered`` collects
    the whole (small) output and answers once the program has exited: then a body over ``limit`` is a clean 413 even
    though the program wrote its headers first, and ``after`` is done before the answer.

    Raises: PayloadTooLarge (the body passed ``limit`` bytes before any answer), HubError (no valid CGI answer).
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, killed as a whole
    )
    run = _Run(proc, limit)
    feeder = asyncio.create_task(_feed(request, run))
    finisher = asyncio.create_task(_finish(run, argv, after))
    _tasks.add(finisher)
    finisher.add_done_callback(_tasks.discard)
    if buffered:
        return await _buffered(run, feeder, finisher)
    try:
        status, headers = await _read_header_block(run)
    except HubError:
        run.kill()
        feeder.cancel()
        await asyncio.shield(finisher)
        if run.too_large:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes") from None
        raise
    return CgiResponse(run, status, headers, feeder, finisher)


async def _buffered(run: _Run, feeder: asyncio.Task[None], finisher: asyncio.Task[None]) -> Response:
    stdout = run.proc.stdout
    assert stdout is not None
    try:
        output = await stdout.read()  # always drained while the body streams in: no pipe can fill up
        await asyncio.shield(finisher)
    finally:
        feeder.cancel()
        if run.proc.returncode is None:
            run.kill()
    if run.too_large:
        raise PayloadTooLarge(f"Request body is larger than the limit of {run.limit} bytes")
    reader = asyncio.StreamReader()
    reader.feed_data(output)
    reader.feed_eof()
    status, headers = await _parse_header_block(reader)
    response = Response(await reader.read(), status_code=status)
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    response.headers["content-length"] = str(len(response.body))
    return response


async def _feed(request: Request, run: _Run) -> None:
    """Copy the request body to stdin, then wait for the client's disconnect and stop the program if it happens."""
    stdin = run.proc.stdin
    assert stdin is not None
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > run.limit:
                run.too_large = True
                run.kill()
                return
            stdin.write(chunk)
            await stdin.drain()
    except ClientDisconnect:
        run.kill()
        return
    except (BrokenPipeError, ConnectionResetError):
        pass  # the program stopped reading: it has answered already (or failed, which its output says)
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            run.kill()
            return


async def _finish(run: _Run, argv: list[str], after: Callable[[int], Awaitable[None]] | None) -> None:
    assert run.proc.stderr is not None
    while chunk := await run.proc.stderr.read(CHUNK):
        run.stderr += chunk
        del run.stderr[: max(0, len(run.stderr) - STDERR_KEEP)]
    code = await run.proc.wait()
    if code != 0 and not run.too_large:
        log.warning("%s exited with %s: %s", " ".join(argv), code, run.stderr.decode("utf-8", "replace").strip())
    if after is not None:
        try:
            await after(code)
        except Exception:
            log.exception("after %s", " ".join(argv))


async def _read_header_block(run: _Run) -> tuple[int, list[tuple[str, str]]]:
    assert run.proc.stdout is not None
    return await _parse_header_block(run.proc.stdout)


async def _parse_header_block(stdout: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    """The CGI header block: ``Status: 404 Not Found`` and other headers, up to an empty line."""
    status, headers, total = 200, [], 0
    while True:
        line = await stdout.readline()
        total += len(line)
        if not line or total > MAX_HEADER_BYTES:
            raise HubError("The git backend gave no valid answer")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return status, headers
        name, sep, value = text.partition(":")
        if not sep:
            raise HubError("The git backend gave no valid answer")
        if name.strip().lower() == "status":
            code = value.strip().split(" ", 1)[0]
            status = int(code) if code.isdigit() else 500
        else:
            headers.append((name.strip(), value.strip()))


class CgiResponse(Response):
    """Streams the program's stdout after its header block; ends after ``finisher`` (exit + bookkeeping) is done."""

    def __init__(
        self,
        run: _Run,
        status: int,
        headers: list[tuple[str, str]],
        feeder: asyncio.Task[None],
        finisher: asyncio.Task[None],
    ) -> None:
        self.run = run
        self.feeder = feeder
        self.finisher = finisher
        self.status_code = status
        self.background = None
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stdout = self.run.proc.stdout
        assert stdout is not None
        complete = False
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            while chunk := await stdout.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.shield(self.finisher)
            complete = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.feeder.cancel()  # the body is read by now; it was only waiting for a disconnect
            if not complete:
                self.run.kill()
