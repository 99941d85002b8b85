"""A check run in a worker thread at start, every ``interval`` seconds, and at once when asked (``check_soon``, from
any thread): the loop of the storage monitor (local disks) and of the storage sweep (a cluster's claims)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("spacehub.runtime")


class PeriodicCheck:
    """Subclasses set ``interval`` and define ``check()`` (blocking: it runs in a worker thread); a failed check is
    reported by ``failed`` and tried again at the next round."""

    interval: float

    def __init__(self) -> None:
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check_soon(self) -> None:
        """Run a check now (from any thread): after a deletion, the data goes at once."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                await asyncio.to_thread(self.check)
            except Exception as e:
                self.failed(e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    def check(self) -> object:
        raise NotImplementedError

    def failed(self, e: Exception) -> None:
        log.exception("%s failed", type(self).__name__)
