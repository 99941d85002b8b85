"""Fixtures for the reconciler's tests: reconcilers on a ManualClock over the test's HubContext, stopped after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.clock import Clock, ManualClock
from spacehub.runtime.reconciler import Reconciler, RuntimeDeps
from spacehub.services.context import HubContext

StartReconciler = Callable[..., Awaitable[Reconciler]]


@pytest.fixture
async def start_reconciler(ctx: HubContext) -> AsyncIterator[StartReconciler]:
    """``await start_reconciler(backend, clock=None, **deps)``: a started Reconciler over ``ctx`` and ``backend``
    (other `RuntimeDeps` by keyword), on ``clock`` or a new ManualClock (``rec.clock``: time passes when the test
    says so). Every one is stopped after the test; a test may stop one itself (a restart of SpaceHub)."""
    started: list[Reconciler] = []

    async def start(backend: FakeBackend, clock: Clock | None = None, **deps: Any) -> Reconciler:
        rec = Reconciler(RuntimeDeps(settings=ctx.settings, db=ctx.db, git=ctx.git, backend=backend,
                                     clock=clock or ManualClock(), **deps))  # fmt: skip
        started.append(rec)
        await rec.start()
        return rec

    yield start
    for rec in started:
        if not rec._closing:
            await rec.stop()
