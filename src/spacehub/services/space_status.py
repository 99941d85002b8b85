"""Use cases: a Space's status as streams, for whoever may read the Space. ``GET /api/spaces/{id}/events`` sends its
status each time it changes (stage, hardware, replicas, error), read from the same runtime document as
`get_space_runtime` (the runtime's observations, written by the reconciler, through `spaces.runtime`);
``GET /api/spaces/{id}/metrics`` samples what its running instance uses, in the client's Jobs metrics format
(``cpu_usage_pct``, ``cpu_millicores``, ``memory_used_bytes``, ``memory_total_bytes``, ``rx_bps``, ``tx_bps``,
``gpus``: ``{device id: {utilization, memory_used_bytes, memory_total_bytes}}`` of the GPUs the instance holds), from
the runtime's front door (``ctx.runtime.usage``): the services never import the runtime.

The capacity (millicores, memory total) is the flavor the Space runs on. Rates are counters' differences between two
samples of one stream, so the first sample of a stream says 0 for them. A Space that runs nowhere says 0 used."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from spacehub.services import accounts, repos, spaces
from spacehub.services.context import HubContext
from spacehub.services.formats import iso
from spacehub.services.runtime import Usage
from spacehub.services.space_changes import Caller
from spacehub.storage.db import utcnow


def status(ctx: HubContext, caller: Caller, repo_id: str) -> dict[str, Any]:
    """One status event: ``stage``, ``hardware`` ({current, requested}), ``replicas``, ``errorMessage`` (null
    unless failed) and ``timestamp``. Raises: RepoNotFound (also once it is gone or private to the caller)."""
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, caller.token)
        rt = spaces.runtime(s, repos.get_repo(s, p, "space", repo_id), None, p)
    return {
        "stage": rt["stage"],
        "hardware": rt["hardware"],
        "replicas": rt.get("replicas"),
        "errorMessage": rt.get("errorMessage"),
        "timestamp": iso(utcnow()),
    }


def changed(before: dict[str, Any] | None, now: dict[str, Any]) -> bool:
    """Whether ``now`` says something ``before`` did not (the timestamp aside)."""
    return before is None or {k: v for k, v in before.items() if k != "timestamp"} != {
        k: v for k, v in now.items() if k != "timestamp"
    }


@dataclass
class MetricsStream:
    """Samples of one Space's usage; rates are taken between this stream's own samples."""

    ctx: HubContext
    caller: Caller
    repo_id: str
    space_id: str
    _last: tuple[float, Usage] | None = field(default=None, init=False)

    def sample(self) -> dict[str, Any]:
        """Raises: RepoNotFound (gone, or private to the caller now)."""
        with self.ctx.db.transaction() as s:
            p = accounts.authenticate(s, self.caller.token)
            repo = repos.get_repo(s, p, "space", self.repo_id)
            rt = spaces.runtime(s, repo, None, p)
        flavor = self.ctx.hardware.catalog.get(rt["hardware"]["current"] or rt["hardware"]["requested"])
        cores = flavor.cpu if flavor is not None else 0.0
        usage = self.ctx.runtime.usage(self.space_id)
        now = time.monotonic()
        cpu_pct = rx_bps = tx_bps = 0.0
        if usage is not None and self._last is not None:
            then, before = self._last
            elapsed = max(now - then, 1e-6)
            if cores:
                cpu_pct = max(usage.cpu_seconds - before.cpu_seconds, 0.0) / elapsed / cores * 100
            if usage.rx_bytes is not None and before.rx_bytes is not None:
                rx_bps = max(usage.rx_bytes - before.rx_bytes, 0) * 8 / elapsed
            if usage.tx_bytes is not None and before.tx_bytes is not None:
                tx_bps = max(usage.tx_bytes - before.tx_bytes, 0) * 8 / elapsed
        self._last = (now, usage) if usage is not None else None
        return {
            "cpu_usage_pct": round(cpu_pct, 1),
            "cpu_millicores": int(cores * 1000),
            "memory_used_bytes": usage.memory_bytes if usage is not None else 0,
            "memory_total_bytes": flavor.memory_bytes if flavor is not None else 0,
            "rx_bps": round(rx_bps),
            "tx_bps": round(tx_bps),
            "gpus": gpu_figures(usage),
        }


def gpu_figures(usage: Usage | None) -> dict[str, dict[str, int]]:
    """The ``gpus`` of a metric: for each GPU the instance holds, by its device id, ``utilization`` (percent),
    ``memory_used_bytes`` and ``memory_total_bytes`` (the keys the client's Jobs metrics have)."""
    if usage is None:
        return {}
    return {
        dev: {
            "utilization": g.utilization,
            "memory_used_bytes": g.memory_used_bytes,
            "memory_total_bytes": g.memory_total_bytes,
        }
        for dev, g in sorted(usage.gpus.items())
    }


def open_metrics(ctx: HubContext, caller: Caller, repo_id: str) -> MetricsStream:
    """Raises: Unauthorized (a bad token), RepoNotFound."""
    with ctx.db.transaction() as s:
        p = accounts.authenticate(s, caller.token)
        space_id = repos.get_repo(s, p, "space", repo_id).id
    return MetricsStream(ctx, caller, repo_id, space_id)
