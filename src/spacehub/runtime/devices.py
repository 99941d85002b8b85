"""This machine's accelerators and who holds them: the device inventory and the allocator.

The inventory is declared by the admin (``runtime.devices_file``, a TOML file, or ``runtime.devices``, the same list
inline as JSON) or detected (NVIDIA GPUs via ``nvidia-smi``)::

    [[gpu]]
    id = "0"              # what CUDA_VISIBLE_DEVICES names: the index (or the GPU's UUID)
    model = "Tesla T4"    # matched against the flavor's accelerator model by words: "T4" ⊂ {"tesla", "t4"}
    memory_gb = 16

Accelerators are allocated, never shared between Spaces: `DeviceAllocator.offer` names devices nobody else holds
(its own first, so a restart or a switch between flavors of the same model keeps the same GPU) without taking them,
`DeviceAllocator.take` takes them (the reconciler applies the plan's ``Claim``; it fails if another Space took one
since the offer; `claim` is both in one step), and
`DeviceAllocator.hold` records, after each reconciler pass, what the Space's live instances and desired release
use: whatever else it held is free again. A Space's next release may reuse its own devices while the previous one
still runs (the zero-downtime switch); two Spaces never get the same device.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacehub.flavors import Accelerator

NVIDIA_QUERY = ["--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader"]


@dataclass(frozen=True)
class Device:
    id: str  # the name CUDA_VISIBLE_DEVICES uses for it (an index, or a UUID)
    model: str  # as the vendor names it, e.g. "Tesla T4", "NVIDIA A10G"
    memory_gb: float = 0.0
    kind: str = "gpu"
    uuid: str | None = None

    def label(self) -> str:
        return f"GPU {self.id} ({self.model})"


class InventoryError(ValueError):
    """The declared device inventory is malformed (the message says where)."""


def _device(entry: Mapping[str, Any], where: str) -> Device:
    if not isinstance(entry, Mapping):
        raise InventoryError(f"{where}: each device is a table with id and model")
    ident = entry.get("id", entry.get("index"))
    model = entry.get("model", entry.get("name"))
    if ident is None or not isinstance(model, str) or not model.strip():
        raise InventoryError(f"{where}: a device needs an id (or index) and a model")
    ident = str(ident).strip()
    if not re.fullmatch(r"[A-Za-z0-9:_.-]{1,64}", ident):
        raise InventoryError(f"{where}: invalid device id {ident!r}")
    try:
        memory = float(entry.get("memory_gb", 0) or 0)
    except (TypeError, ValueError):
        raise InventoryError(f"{where}: memory_gb must be a number") from None
    uuid = entry.get("uuid")
    return Device(ident, model.strip(), memory, str(entry.get("kind", "gpu")), str(uuid) if uuid else None)


def parse_devices(entries: Sequence[Mapping[str, Any]], where: str = "devices") -> tuple[Device, ...]:
    """Devices from a list of tables. Raises: InventoryError (malformed entry or duplicate id)."""
    devices = tuple(_device(e, f"{where}[{i}]") for i, e in enumerate(entries))
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        raise InventoryError(f"{where}: device ids must be unique, got {ids}")
    return devices


def load_devices_file(path: Path) -> tuple[Device, ...]:
    """The ``[[gpu]]`` tables of an inventory TOML file. Raises: InventoryError, OSError."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InventoryError(f"{path}: {e}") from None
    return parse_devices(data.get("gpu", []), str(path))


def parse_nvidia_smi(text: str) -> tuple[Device, ...]:
    """Devices from ``nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader`` output, e.g.
    ``0, Tesla T4, 15360 MiB, GPU-5c3e…``."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        mem = re.match(r"([\d.]+)\s*(MiB|GiB|MB|GB)?", parts[2])
        memory_gb = 0.0
        if mem:
            value = float(mem.group(1))
            memory_gb = value / 1024 if (mem.group(2) or "MiB") in ("MiB", "MB") else value
        found.append(Device(parts[0], parts[1], round(memory_gb, 1), "gpu", parts[3] if len(parts) > 3 else None))
    return tuple(found)


def detect_nvidia(binary: str = "nvidia-smi", timeout: float = 10.0) -> tuple[Device, ...]:
    """This machine's NVIDIA GPUs, or none when nvidia-smi is missing or fails."""
    exe = shutil.which(binary)
    if exe is None:
        return ()
    try:
        out = subprocess.run([exe, *NVIDIA_QUERY], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else ()


def inventory_from_settings(runtime: Any) -> tuple[Device, ...]:
    """The inventory the settings give: ``devices_file``, else ``devices``, else detection (``detect_gpus``).
    Raises: InventoryError."""
    if getattr(runtime, "devices_file", None) is not None:
        return load_devices_file(Path(runtime.devices_file))
    if getattr(runtime, "devices", None) is not None:
        return parse_devices(runtime.devices, "runtime.devices")
    return detect_nvidia() if getattr(runtime, "detect_gpus", True) else ()


# ---- matching and allocation (pure) -------------------------------------------------------------------------
def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.split(r"[^a-z0-9]+", text.lower()) if w)


def matches(device: Device, acc: Accelerator) -> bool:
    """A device serves a flavor when every word of the flavor's model is a word of the device's model: "T4" matches
    "Tesla T4", "A100" matches "NVIDIA A100-SXM4-80GB", "L4" does not match "NVIDIA L40S"."""
    want = _words(acc.model)
    return device.kind == acc.type and bool(want) and want <= _words(device.model)


def accelerator_label(acc: Accelerator) -> str:
    kind = acc.type.upper() if acc.type == "gpu" else acc.type
    return f"{acc.quantity} {acc.manufacturer} {acc.model} {kind}{'s' if acc.quantity > 1 else ''}"


def missing(inventory: Sequence[Device], acc: Accelerator) -> str | None:
    """Why this machine can never give ``acc`` (too few such devices at all), or None."""
    have = [d for d in inventory if matches(d, acc)]
    if len(have) >= acc.quantity:
        return None
    others = ", ".join(d.model for d in inventory) or "none"
    return (f"it needs {accelerator_label(acc)}; this machine has {len(have)} (its accelerators: {others}; an admin "
            f"declares them in runtime.devices_file)")  # fmt: skip


def choose(
    inventory: Sequence[Device], acc: Accelerator, own: Iterable[str], taken: Mapping[str, str]
) -> tuple[tuple[str, ...] | None, str | None]:
    """Pick ``acc.quantity`` matching devices: the Space's ``own`` first, then free ones (not in ``taken``, which maps
    a device id to the Space holding it). Answers (device ids, None) or (None, why not)."""
    why = missing(inventory, acc)
    if why is not None:
        return None, why
    candidates = [d for d in inventory if matches(d, acc)]
    mine = set(own)
    ordered = [d for d in candidates if d.id in mine] + [d for d in candidates if d.id not in mine]
    picked = [d.id for d in ordered if d.id in mine or d.id not in taken][: acc.quantity]
    if len(picked) == acc.quantity:
        return tuple(sorted(picked, key=_order(inventory))), None
    busy = ", ".join(f"{d.label()} is used by {taken[d.id]}" for d in candidates if d.id in taken and d.id not in mine)
    free = len(picked)
    return None, f"it needs {accelerator_label(acc)} and {free} {'is' if free == 1 else 'are'} free ({busy})"


def _order(inventory: Sequence[Device]) -> Any:
    index = {d.id: i for i, d in enumerate(inventory)}
    return lambda ident: index.get(ident, len(index))


class DeviceAllocator:
    """Who holds which device (thread-safe: claims come from the reconciler's worker threads)."""

    def __init__(self, inventory: Sequence[Device]) -> None:
        self.inventory = tuple(inventory)
        self._held: dict[str, frozenset[str]] = {}  # space id → device ids
        self._names: dict[str, str] = {}  # space id → its name, for messages
        self._lock = threading.Lock()

    def _taken(self, space_id: str) -> dict[str, str]:
        """Device id → the name of the Space holding it, for the devices other Spaces hold (under the lock)."""
        return {d: self._names.get(sid, sid) for sid, ids in self._held.items() if sid != space_id for d in ids}

    def offer(self, space_id: str, acc: Accelerator) -> tuple[tuple[str, ...] | None, str | None]:
        """The devices ``space_id``'s next release would get now (its own first, then free ones), recorded nowhere:
        reading a Space's desired state takes nothing. Answers (ids, None) or (None, why not)."""
        with self._lock:
            return choose(self.inventory, acc, self._held.get(space_id, frozenset()), self._taken(space_id))

    def take(self, space_id: str, name: str, ids: Iterable[str]) -> str | None:
        """Record ``ids`` as held by ``space_id`` (with what it holds already), unless another Space holds one of
        them now (an offer is not a promise): then nothing changes and the answer says who has it."""
        want = frozenset(ids)
        with self._lock:
            taken = self._taken(space_id)
            busy = [d for d in self.inventory if d.id in want and d.id in taken]
            if busy:
                return ", ".join(f"{d.label()} is used by {taken[d.id]}" for d in busy)
            self._names[space_id] = name
            self._held[space_id] = self._held.get(space_id, frozenset()) | want
            return None

    def claim(self, space_id: str, name: str, acc: Accelerator) -> tuple[tuple[str, ...] | None, str | None]:
        """Offer and take in one step: devices for ``space_id``'s next release, recorded as held by it at once (a
        concurrent claim of another Space sees them taken). Answers (ids, None) or (None, why not)."""
        with self._lock:
            self._names[space_id] = name
            own = self._held.get(space_id, frozenset())
            ids, why = choose(self.inventory, acc, own, self._taken(space_id))
            if ids is not None:
                self._held[space_id] = own | set(ids)
            return ids, why

    def held(self, space_id: str) -> frozenset[str]:
        with self._lock:
            return self._held.get(space_id, frozenset())

    def hold(self, space_id: str, devices: Iterable[str]) -> bool:
        """``space_id`` now holds exactly ``devices`` (what its live instances and desired release use). True when
        this freed a device (Spaces waiting for one may try again)."""
        new = frozenset(devices)
        with self._lock:
            old = self._held.get(space_id, frozenset())
            if new:
                self._held[space_id] = new
            else:
                self._held.pop(space_id, None)
            return bool(old - new)

    def holders(self) -> dict[str, tuple[str, ...]]:
        with self._lock:
            return {sid: tuple(sorted(ids)) for sid, ids in self._held.items()}
