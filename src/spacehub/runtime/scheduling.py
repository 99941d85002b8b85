"""Honest scheduling: what a hardware flavor gets on this machine (CPU and memory limits, accelerators).

A flavor's CPU and memory are limits. Where the machine is smaller than the flavor, the ``cap`` policy (default)
caps the limits to what the machine has and says so (the runtime's ``resources.limits``); the ``strict`` policy
refuses the flavor: requests for it get 400, and a Space already on it runs on its previous flavor instead.
Accelerators are allocated, never shared (`devices.DeviceAllocator`). A flavor that cannot run now (its devices are
taken) stays *requested*: the Space keeps running on its current flavor, and `errorMessage` says why
(`choose_placement`).

`Scheduler` is shared by the API (request-time checks: `unfit`) and the reconciler (`offer` when it reads a Space,
taking nothing; the plan's ``Claim`` then takes the devices, `claim`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from spacehub.flavors import GB, Catalog, Flavor, MachineInfo
from spacehub.runtime.backends.base import Resources
from spacehub.runtime.devices import Device, DeviceAllocator, matches, missing

Policy = Literal["cap", "strict"]


@dataclass(frozen=True)
class Placement:
    flavor: Flavor
    resources: Resources
    note: str | None = None  # e.g. "capped: cpu-upgrade asks 8 vCPU; this machine has 2"
    problem: str | None = None  # why the flavor cannot run now (then ``resources`` are not to be used)


def capped(flavor: Flavor, machine: MachineInfo) -> tuple[float, int, str | None]:
    """The flavor's CPU and memory limits, capped to the machine, and a note when capped."""
    cpus, memory = flavor.cpu, flavor.memory_bytes
    notes = []
    if cpus > machine.cpus:
        notes.append(f"{flavor.name} asks {flavor.cpu:g} vCPU; this machine has {machine.cpus}")
        cpus = float(machine.cpus)
    if memory > machine.memory_bytes:
        notes.append(f"{flavor.name} asks {flavor.memory_gb:g} GB of memory; this machine has "
                     f"{machine.memory_bytes / GB:.0f} GB")  # fmt: skip
        memory = machine.memory_bytes
    return cpus, memory, ("capped: " + "; ".join(notes)) if notes else None


class Scheduler:
    def __init__(
        self, catalog: Catalog, machine: MachineInfo, devices: Sequence[Device] = (), policy: Policy = "cap"
    ) -> None:
        self.catalog, self.machine, self.policy = catalog, machine, policy
        self.allocator = DeviceAllocator(devices)

    @property
    def devices(self) -> tuple[Device, ...]:
        return self.allocator.inventory

    def unfit(self, flavor: Flavor) -> str | None:
        """Why ``flavor`` can never run on this machine (strict policy, or no such accelerator), or None."""
        if flavor.accelerator is not None:
            why = missing(self.devices, flavor.accelerator)
            if why is not None:
                return f"{flavor.name} cannot run on this machine: {why}"
        _, _, note = capped(flavor, self.machine)
        if note is not None and self.policy == "strict":
            return (f"{flavor.name} does not fit this machine ({note.removeprefix('capped: ')}) and the resource "
                    f"policy is strict")  # fmt: skip
        return None

    def offer(self, space_id: str, flavor: Flavor, devices: bool = True) -> Placement:
        """Limits and devices for the Space's next release on ``flavor``, taking nothing (the reconciler's read: the
        plan's ``Claim`` takes the devices). With ``devices=False`` (paused or deeply asleep: nothing will start) it
        gets none."""
        cpus, memory, note = capped(flavor, self.machine)
        why = self.unfit(flavor)
        if why is not None:
            return Placement(flavor, Resources(cpus=cpus, memory_bytes=memory), note, why)
        ids: tuple[str, ...] = ()
        if flavor.accelerator is not None and devices:
            offered, reason = self.allocator.offer(space_id, flavor.accelerator)
            if offered is None:
                return Placement(flavor, Resources(cpus=cpus, memory_bytes=memory), note, reason)
            ids = offered
        return Placement(flavor, Resources(cpus=cpus, memory_bytes=memory, devices=ids), note)

    def place(self, space_id: str, name: str, flavor: Flavor, claim: bool = True) -> Placement:
        """``offer``, then take its devices at once (for a caller that places and starts in one step). With
        ``claim=False`` (paused or deeply asleep: nothing will start) no device is taken."""
        placement = self.offer(space_id, flavor, devices=claim)
        if placement.resources.devices:
            why = self.allocator.take(space_id, name, placement.resources.devices)
            if why is not None:
                return replace(placement, resources=replace(placement.resources, devices=()), problem=why)
        return placement

    def claim(self, space_id: str, name: str, devices: tuple[str, ...]) -> str | None:
        """Take the devices an offer named (the plan's ``Claim``); why not, if another Space took one since."""
        return self.allocator.take(space_id, name, devices)

    def wanted(self, flavor_name: str) -> frozenset[str]:
        """The devices of this machine that could serve ``flavor_name``'s accelerator (none without one)."""
        flavor = self.catalog.get(flavor_name)
        acc = flavor.accelerator if flavor is not None else None
        return frozenset(d.id for d in self.devices if acc is not None and matches(d, acc))


def choose_placement(
    requested: Flavor, fallbacks: Sequence[Flavor | None], place: Callable[[Flavor], Placement]
) -> tuple[Placement, str | None]:
    """The requested flavor if it can run now; else the first fallback that can (the flavor the Space runs on now,
    then the default), with a message saying why the request waits. Pure given ``place``."""
    first = last = place(requested)
    if first.problem is None:
        return first, None
    why = f"Requested hardware {requested.name} is not available: {first.problem}."
    tried = {requested.name}
    for alt in fallbacks:
        if alt is None or alt.name in tried:
            continue
        tried.add(alt.name)
        last = place(alt)
        if last.problem is None:
            return last, f"{why} The Space runs on {alt.name} until it is."
    # Nothing fits (a strict policy on a machine smaller than every flavor): the last one tried runs capped, without
    # accelerators, and the message says so.
    return Placement(last.flavor, last.resources, last.note), f"{why} The Space runs on {last.flavor.name}, capped."
