"""The device inventory (declared, detected) and allocation: accelerators are allocated, never shared. Pure."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from spacehub.flavors import Accelerator
from spacehub.runtime.devices import (
    Device,
    DeviceAllocator,
    InventoryError,
    choose,
    inventory_from_settings,
    load_devices_file,
    matches,
    parse_devices,
    parse_nvidia_smi,
)

T4 = Accelerator("gpu", "T4", 1, 16)
T4X2 = Accelerator("gpu", "T4", 2, 32)
L4 = Accelerator("gpu", "L4", 1, 24)
A100 = Accelerator("gpu", "A100", 1, 80)
INV = (Device("0", "Tesla T4", 16), Device("1", "Tesla T4", 16), Device("2", "NVIDIA L40S", 48))


def test_models_match_by_words() -> None:
    assert matches(Device("0", "Tesla T4"), T4)
    assert matches(Device("0", "NVIDIA A100-SXM4-80GB"), A100)
    assert not matches(Device("0", "NVIDIA L40S"), L4)  # "L4" is not a word of "L40S"
    assert matches(Device("0", "NVIDIA L4"), L4)
    assert not matches(Device("0", "Tesla T4", kind="tpu"), T4)


CASES = [
    # (name, accelerator, own, taken, devices, reason contains)
    ("free device", T4, (), {}, ("0",), None),
    ("the next free one", T4, (), {"0": "bob/a"}, ("1",), None),
    ("own device first (restart, switch)", T4, ("1",), {"0": "bob/a"}, ("1",), None),
    ("two of them", T4X2, (), {}, ("0", "1"), None),
    ("own plus a free one", T4X2, ("1",), {}, ("0", "1"), None),
    ("all taken", T4, (), {"0": "bob/a", "1": "carol/b"}, None, "GPU 0 (Tesla T4) is used by bob/a"),
    ("not enough free", T4X2, (), {"0": "bob/a"}, None, "2 Nvidia T4 GPUs and 1 is free"),
    ("none of that model here", A100, (), {}, None, "this machine has 0"),
    ("too few on the machine", Accelerator("gpu", "T4", 4, 64), (), {}, None, "this machine has 2"),
]


@pytest.mark.parametrize(("name", "acc", "own", "taken", "devices", "reason"), CASES, ids=[c[0] for c in CASES])
def test_choose(name, acc, own, taken, devices, reason) -> None:
    got, why = choose(INV, acc, own, taken)
    assert got == devices
    if reason is None:
        assert why is None
    else:
        assert reason in why


def test_allocator_never_shares_and_frees() -> None:
    alloc = DeviceAllocator(INV[:1])
    assert alloc.claim("a", "alice/a", T4) == (("0",), None)
    assert alloc.claim("a", "alice/a", T4) == (("0",), None)  # its own again: a restart keeps the GPU
    devices, why = alloc.claim("b", "bob/b", T4)
    assert devices is None and "used by alice/a" in why
    assert alloc.hold("a", ["0"]) is False  # still in use
    assert alloc.hold("a", []) is True  # freed: waiters may try again
    assert alloc.claim("b", "bob/b", T4) == (("0",), None)
    assert alloc.holders() == {"b": ("0",)}


def test_an_offer_takes_nothing_and_a_take_fails_once_another_space_has_it() -> None:
    """Reading a Space's desired state offers devices; the plan's Claim takes them. Two Spaces read at once: both are
    offered GPU 0, the first to take it has it, the other is told who does (its next read falls back)."""
    alloc = DeviceAllocator(INV[:1])
    assert alloc.offer("a", T4) == (("0",), None)
    assert alloc.offer("b", T4) == (("0",), None)
    assert alloc.holders() == {}  # offering took nothing
    assert alloc.take("a", "alice/a", ["0"]) is None
    assert alloc.take("a", "alice/a", ["0"]) is None  # its own again
    why = alloc.take("b", "bob/b", ["0"])
    assert why is not None and "GPU 0 (Tesla T4) is used by alice/a" in why
    assert alloc.holders() == {"a": ("0",)} and alloc.held("b") == frozenset()
    devices, why = alloc.offer("b", T4)
    assert devices is None and "used by alice/a" in why


def test_allocator_claims_are_atomic() -> None:
    alloc = DeviceAllocator(INV)
    got: list[tuple[str, ...] | None] = []
    threads = [threading.Thread(target=lambda i=i: got.append(alloc.claim(f"s{i}", f"u/s{i}", T4)[0]))
               for i in range(8)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [g for g in got if g is not None]
    assert sorted(winners) == [("0",), ("1",)]


def test_nvidia_smi_output() -> None:
    text = "0, Tesla T4, 15360 MiB, GPU-aaa\n1, NVIDIA A10G, 23028 MiB, GPU-bbb\n"
    assert parse_nvidia_smi(text) == (
        Device("0", "Tesla T4", 15.0, "gpu", "GPU-aaa"),
        Device("1", "NVIDIA A10G", 22.5, "gpu", "GPU-bbb"),
    )
    assert parse_nvidia_smi("No devices were found\n") == ()


def test_inventory_file_and_inline(tmp_path: Path) -> None:
    f = tmp_path / "devices.toml"
    f.write_text('[[gpu]]\nid = "0"\nmodel = "Tesla T4"\nmemory_gb = 16\n\n[[gpu]]\nindex = 1\nmodel = "NVIDIA L4"\n')
    assert load_devices_file(f) == (Device("0", "Tesla T4", 16), Device("1", "NVIDIA L4", 0))

    class RT:
        devices_file = None
        devices = [{"id": "3", "model": "A100"}]
        detect_gpus = False

    assert inventory_from_settings(RT) == (Device("3", "A100"),)
    RT.devices = None
    assert inventory_from_settings(RT) == ()
    RT.devices_file = f
    assert len(inventory_from_settings(RT)) == 2


@pytest.mark.parametrize(
    "entries",
    [[{"model": "T4"}], [{"id": "0"}], [{"id": "0", "model": "T4"}, {"id": "0", "model": "T4"}],
     [{"id": "a b", "model": "T4"}], [{"id": "0", "model": "T4", "memory_gb": "lots"}], ["T4"]],
)  # fmt: skip
def test_bad_inventories_are_refused(entries) -> None:
    with pytest.raises(InventoryError):
        parse_devices(entries)
