"""The hardware flavor catalog (HF's flavors: CPU, memory, accelerator, price) and what each means on this machine.

The catalog is data: an admin can replace it with a TOML file (setting ``runtime.flavors_file``), e.g.

    [[flavor]]
    name = "cpu-basic"          # the default flavor: every catalog has it
    pretty_name = "CPU basic"
    cpu = 2
    memory_gb = 16
    price_per_hour = 0.0        # free: no billing account needed, 48 h sleep time

    [[flavor]]
    name = "t4-medium"
    pretty_name = "Nvidia T4 - medium"
    cpu = 8
    memory_gb = 30
    disk_gb = 100
    price_per_hour = 0.60       # priced: the owner needs a billing account (spacehub billing grant)
    accelerator = { type = "gpu", model = "T4", quantity = 1, vram_gb = 16 }   # matched against runtime.devices

A flavor's accelerator is matched against this machine's device inventory (runtime/devices.py) by the words of its
model; what each flavor gets here is decided by runtime/scheduling.py.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

GB = 1024**3


@dataclass(frozen=True)
class Accelerator:
    type: str  # "gpu"
    model: str  # "T4"
    quantity: int
    vram_gb: int
    manufacturer: str = "Nvidia"


@dataclass(frozen=True)
class Flavor:
    name: str
    pretty_name: str
    cpu: float
    memory_gb: float
    price_per_hour: float = 0.0
    disk_gb: int = 50
    accelerator: Accelerator | None = None

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb * GB)

    @property
    def priced(self) -> bool:
        return self.price_per_hour > 0


def _gpu(model: str, quantity: int, vram: int) -> Accelerator:
    return Accelerator("gpu", model, quantity, vram)


# spaces-platform.md §2.1.5 (HF's table as of 2026)
DEFAULT_FLAVORS: tuple[Flavor, ...] = (
    Flavor("cpu-basic", "CPU basic", 2, 16, 0.0),
    Flavor("cpu-upgrade", "CPU upgrade", 8, 32, 0.03),
    Flavor("t4-small", "Nvidia T4 - small", 4, 15, 0.40, 50, _gpu("T4", 1, 16)),
    Flavor("t4-medium", "Nvidia T4 - medium", 8, 30, 0.60, 100, _gpu("T4", 1, 16)),
    Flavor("l4x1", "1x Nvidia L4", 8, 30, 0.80, 400, _gpu("L4", 1, 24)),
    Flavor("l4x4", "4x Nvidia L4", 48, 186, 3.80, 3200, _gpu("L4", 4, 96)),
    Flavor("l40sx1", "1x Nvidia L40S", 8, 62, 1.80, 380, _gpu("L40S", 1, 48)),
    Flavor("l40sx4", "4x Nvidia L40S", 48, 382, 8.30, 3200, _gpu("L40S", 4, 192)),
    Flavor("l40sx8", "8x Nvidia L40S", 192, 1534, 23.50, 6500, _gpu("L40S", 8, 384)),
    Flavor("a10g-small", "Nvidia A10G - small", 4, 15, 1.00, 110, _gpu("A10G", 1, 24)),
    Flavor("a10g-large", "Nvidia A10G - large", 12, 46, 1.50, 200, _gpu("A10G", 1, 24)),
    Flavor("a10g-largex2", "2x Nvidia A10G - large", 24, 92, 3.00, 1000, _gpu("A10G", 2, 48)),
    Flavor("a10g-largex4", "4x Nvidia A10G - large", 48, 184, 5.00, 2000, _gpu("A10G", 4, 96)),
    Flavor("a100-large", "Nvidia A100 - large", 12, 142, 2.50, 1000, _gpu("A100", 1, 80)),
    Flavor("a100x4", "4x Nvidia A100", 48, 568, 10.00, 4000, _gpu("A100", 4, 320)),
    Flavor("a100x8", "8x Nvidia A100", 96, 1136, 20.00, 8000, _gpu("A100", 8, 640)),
)
DEFAULT_FLAVOR = "cpu-basic"


class Catalog:
    def __init__(self, flavors: tuple[Flavor, ...] = DEFAULT_FLAVORS) -> None:
        self.flavors = {f.name: f for f in flavors}

    @classmethod
    def load(cls, path: Path | None) -> Catalog:
        """The default catalog, or the one in an admin's TOML file. Raises: ValueError (a malformed file, or one
        without the default flavor), naming the file and the flavor."""
        if path is None:
            return cls()
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: {e}") from None
        flavors = []
        for i, f in enumerate(data.get("flavor", [])):
            try:
                acc = f.get("accelerator")
                flavors.append(
                    Flavor(
                        name=str(f["name"]),
                        pretty_name=f.get("pretty_name", f["name"]),
                        cpu=float(f["cpu"]),
                        memory_gb=float(f["memory_gb"]),
                        price_per_hour=float(f.get("price_per_hour", 0.0)),
                        disk_gb=int(f.get("disk_gb", 50)),
                        accelerator=Accelerator(**acc) if acc else None,
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                name = f.get("name", "?") if isinstance(f, dict) else "?"
                raise ValueError(f"{path}: flavor #{i + 1} ({name}): {e!r}") from None
        if not any(f.name == DEFAULT_FLAVOR for f in flavors):
            raise ValueError(f"{path}: the catalog needs the default flavor {DEFAULT_FLAVOR!r}")
        return cls(tuple(flavors))

    def get(self, name: str | None) -> Flavor | None:
        return self.flavors.get(name or DEFAULT_FLAVOR)

    def names(self) -> list[str]:
        return list(self.flavors)


@dataclass(frozen=True)
class MachineInfo:
    cpus: int
    memory_bytes: int


def this_machine() -> MachineInfo:
    """CPUs this process may use and the machine's memory."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return MachineInfo(cpus, memory)


def memory_label(flavor: Flavor) -> str:
    """The MEMORY env var as HF sets it, e.g. ``16Gi``."""
    return f"{flavor.memory_gb:g}Gi"
