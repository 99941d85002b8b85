"""FakeBackend: an in-memory backend for unit tests of the reconciler. Each "instance" is a real HTTP server on a
thread (so probes and the proxy talk real HTTP), but no process is spawned and nothing is installed.

Scriptable: ``fail_builds`` (build id or "*" → message), ``fail_starts``, ``busy_builds`` and ``busy_starts``
(how many builds and starts fail with a `TemporaryBackendError` first), ``crash(release_id, code)``, ``slow_builds``
(seconds), ``build_gate`` (builds wait while it is clear: a test holds a build under way as long as it needs). A
run-to-exit task "runs" its command by exiting at once with ``task_exit`` (code). ``busy_forgets``: how many
``forget`` calls fail with a `TemporaryBackendError` first; ``forgotten`` lists the ids it was asked to forget.
Never enough on its own: the local backend is tested with real processes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from spacehub.runtime.backends.base import (
    BuildFailed,
    BuildSpec,
    Endpoint,
    InstanceStatus,
    ReleaseSpec,
    ResourceUsage,
    TemporaryBackendError,
)
from spacehub.runtime.logs import stamp

POLL = 0.02  # how often an instance's server looks for a shutdown (a stop, crash or freeze waits for it; default 0.5 s)
FAKE_MEMORY = 64 * 1024**2


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.release_id}".encode()  # type: ignore[attr-defined]
        counters = self.server.counters  # type: ignore[attr-defined]
        counters["rx"] += len(self.requestline) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + 4
        counters["tx"] += len(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class _Instance:
    spec: ReleaseSpec
    server: ThreadingHTTPServer | None
    endpoint: Endpoint | None
    exit_code: int | None = None
    frozen: bool = False
    started_at: float = field(default_factory=time.monotonic)


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass
class FakeBackend:
    name: str = "fake"
    fail_builds: dict[str, str] = field(default_factory=dict)
    fail_starts: dict[str, str] = field(default_factory=dict)
    slow_builds: float = 0.0
    busy_builds: int = 0
    busy_starts: int = 0
    task_exit: int = 0
    build_gate: threading.Event = field(default_factory=_open_gate)  # clear: builds wait (at most a minute)
    freezer: bool = True  # False: freeze answers False, as on a machine without a cgroup freezer
    run_log: Callable[[str], Path] | None = None  # space id → its run log (the runtime's log store)
    builds: set[str] = field(default_factory=set)
    instances: dict[str, _Instance] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)  # release ids in start order
    build_count: int = 0
    built_for: dict[str, str] = field(default_factory=dict)  # build id → the Space (runtime id) it was built for
    kept: set[str] = field(default_factory=set)  # Spaces built or started: as a real engine keeps their storage,
    # secrets or objects after their instances stop and builds go, until they are forgotten
    busy_forgets: int = 0  # how many forgets fail with a TemporaryBackendError first
    forgotten: list[str] = field(default_factory=list)  # runtime ids forgotten, in order (each call)
    exit_notices: bool = True  # False: exit_notice answers None, as a backend without notices (asked every second)
    asked: Counter[str] = field(default_factory=Counter)  # release id → how often `status` was asked of it
    lock: threading.Lock = field(default_factory=threading.Lock)
    _notify: dict[str, list[int]] = field(default_factory=dict)  # release id → write ends of its exit notices

    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        if spec.build_id in self.builds:
            log("build exists")
            return
        if self.busy_builds > 0:
            self.busy_builds -= 1
            raise TemporaryBackendError("the fake engine has no builder free", delay=0.2)
        self.build_count += 1
        log(f"fake build of {spec.revision}")
        time.sleep(self.slow_builds)
        self.build_gate.wait(timeout=60)
        reason = self.fail_builds.get(spec.build_id) or self.fail_builds.get("*")
        if reason:
            log(reason)
            raise BuildFailed(reason)
        self.builds.add(spec.build_id)
        self.built_for[spec.build_id] = spec.space_id
        self.kept.add(spec.space_id)

    def build_exists(self, build_id: str) -> bool:
        return build_id in self.builds

    def drop_build(self, build_id: str) -> None:
        self.builds.discard(build_id)
        self.built_for.pop(build_id, None)

    def forget(self, space_id: str) -> None:
        """Whatever of the Space is left: its instances stopped, its builds dropped, what it kept of it gone."""
        if self.busy_forgets > 0:
            self.busy_forgets -= 1
            raise TemporaryBackendError("the fake engine cannot delete now", delay=0.2)
        self.forgotten.append(space_id)
        for rid, inst in list(self.instances.items()):
            if inst.spec.space_id == space_id:
                self.stop(rid)
        for build_id, owner in list(self.built_for.items()):
            if owner == space_id:
                self.drop_build(build_id)
        self.kept.discard(space_id)

    def spaces(self) -> set[str]:
        return set(self.kept)

    def start(self, spec: ReleaseSpec) -> Endpoint | None:
        reason = self.fail_starts.get(spec.release_id) or self.fail_starts.get("*")
        if reason:
            raise BuildFailed(reason)
        if self.busy_starts > 0:
            self.busy_starts -= 1
            raise TemporaryBackendError("the fake engine is busy", delay=0.2)
        self.kept.add(spec.space_id)
        current = self.instances.get(spec.release_id)
        if current is not None and current.exit_code is None:
            return None if spec.run_to_exit else current.endpoint
        if spec.run_to_exit:
            with self.lock:
                self.instances[spec.release_id] = _Instance(spec, None, None, exit_code=self.task_exit)
                self.started.append(spec.release_id)
            self._log(spec.space_id, f"ran {' '.join(spec.command)}: exit {self.task_exit}")
            return None
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        server.release_id = spec.release_id  # type: ignore[attr-defined]
        server.counters = {"rx": 0, "tx": 0}  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
        ep = Endpoint("127.0.0.1", server.server_address[1])
        with self.lock:
            self.instances[spec.release_id] = _Instance(spec, server, ep)
            self.started.append(spec.release_id)
        self._log(spec.space_id, f"started {spec.release_id}")
        return ep

    def _log(self, space_id: str, line: str) -> None:
        if self.run_log is not None:
            path = self.run_log(space_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(f"{stamp()} {line}\n")  # the log store's line format

    def storage_size(self, name: str) -> int | None:
        return None

    def usage(self, release_id: str) -> ResourceUsage | None:
        """A steady quarter of a core since it started (none while frozen is not modelled), FAKE_MEMORY of memory,
        and the bytes its hello server really received and sent."""
        inst = self.instances.get(release_id)
        if inst is None or inst.server is None or inst.exit_code is not None:
            return None
        counters = inst.server.counters  # type: ignore[attr-defined]
        cpu = 0.25 * (time.monotonic() - inst.started_at)
        return ResourceUsage(cpu, FAKE_MEMORY, counters["rx"], counters["tx"])

    def crash(self, release_id: str, code: int = 1, notify: bool = True) -> None:
        """The app ends with ``code``; its exit notices become readable unless ``notify`` is False (a notice lost)."""
        inst = self.instances[release_id]
        if inst.server is not None:
            inst.server.shutdown()
            inst.server.server_close()
            inst.server = None
        inst.exit_code = code
        if notify:
            self._notify_exit(release_id)

    def exit_notice(self, release_id: str) -> int | None:
        """The read end of a pipe that gets a byte when the instance ends (`crash`, `stop`)."""
        inst = self.instances.get(release_id)
        if not self.exit_notices or inst is None or inst.exit_code is not None:
            return None
        r, w = os.pipe()
        with self.lock:
            self._notify.setdefault(release_id, []).append(w)
        return r

    def notices(self, release_id: str) -> int:
        """How many exit notices of the instance are given out and not yet readable."""
        with self.lock:
            return len(self._notify.get(release_id, ()))

    def _notify_exit(self, release_id: str) -> None:
        with self.lock:
            ends = self._notify.pop(release_id, [])
        for w in ends:
            with contextlib.suppress(BrokenPipeError):  # its reader has stopped waiting
                os.write(w, b"x")
            os.close(w)

    def status(self, release_id: str) -> InstanceStatus | None:
        self.asked[release_id] += 1
        inst = self.instances.get(release_id)
        if inst is None:
            return None
        return InstanceStatus(release_id, inst.spec.build_id, inst.exit_code is None, inst.frozen, inst.endpoint,
                              inst.exit_code, "none: fake backend")  # fmt: skip

    def list_instances(self) -> list[InstanceStatus]:
        return [s for rid in list(self.instances) if (s := self.status(rid)) is not None]

    def stop(self, release_id: str) -> None:
        inst = self.instances.pop(release_id, None)
        if inst is not None and inst.server is not None:
            inst.server.shutdown()
            inst.server.server_close()
        self._notify_exit(release_id)

    def freeze(self, release_id: str) -> bool:
        """As a frozen process: the port stays open (connections wait in its backlog) but nothing answers."""
        if not self.freezer:
            return False
        inst = self.instances[release_id]
        if not inst.frozen and inst.server is not None:
            inst.server.shutdown()
        inst.frozen = True
        return True

    def thaw(self, release_id: str) -> None:
        inst = self.instances[release_id]
        if inst.frozen and inst.server is not None:
            threading.Thread(target=inst.server.serve_forever, args=(POLL,), daemon=True).start()
        inst.frozen = False
