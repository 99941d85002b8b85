"""What the cluster can hold: its nodes' allocatable CPU, memory and GPUs, and their accelerator labels, read into the
capacity the hardware catalog needs (which flavors can run at all, and if not, why: "no node has an A10G").

Parsing is pure (`node_capacity` takes a Node as the API serves it, a JSON dict), so it is tested on both literal
nodes and the nodes of a real API server (`read_nodes`). Only nodes that take pods count: Ready, not cordoned.
A node's accelerator model is its ``accelerator_label`` (the label the Deployment's node selector names, set by the
operator), else NVIDIA's GPU feature discovery label ``nvidia.com/gpu.product``; models are matched by words, as
on the local backend (`runtime.devices.matches`: "A10G" matches "NVIDIA-A10G").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacehub.flavors import GB, Catalog, Flavor
from spacehub.runtime.backends.kubernetes import quantities
from spacehub.runtime.backends.kubernetes.manifests import ACCELERATOR_LABEL, GPU_RESOURCE
from spacehub.runtime.devices import Device, accelerator_label, matches

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by NVIDIA's gpu-feature-discovery


@dataclass(frozen=True)
class NodeCapacity:
    name: str
    cpu: float  # allocatable cores
    memory_bytes: int  # allocatable memory
    gpus: int  # allocatable nvidia.com/gpu
    accelerator: str | None  # the GPU model, from the node's labels
    schedulable: bool  # Ready and not cordoned
    labels: Mapping[str, str] = field(default_factory=dict)

    def holds(self, flavor: Flavor, accelerator_key: str = ACCELERATOR_LABEL) -> bool:
        """The node could run the flavor when empty: enough CPU, memory and GPUs of its model."""
        if self.cpu < flavor.cpu or self.memory_bytes < flavor.memory_bytes:
            return False
        acc = flavor.accelerator
        if acc is None:
            return True
        if self.labels.get(accelerator_key) != acc.model:  # the Deployment's node selector is an exact match
            return False
        return self.gpus >= acc.quantity


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_capacity(node: Mapping[str, Any], accelerator_key: str = ACCELERATOR_LABEL) -> NodeCapacity:
    """One Node (a JSON dict as the API serves it) as capacity. Missing quantities count as zero."""
    meta, spec, status = node.get("metadata", {}), node.get("spec", {}), node.get("status", {})
    alloc = status.get("allocatable") or status.get("capacity") or {}
    node_labels = dict(meta.get("labels") or {})
    return NodeCapacity(
        name=meta.get("name", "?"),
        cpu=float(quantities.parse(alloc.get("cpu", "0"))),
        memory_bytes=int(quantities.parse(alloc.get("memory", "0"))),
        gpus=int(quantities.parse(alloc.get(GPU_RESOURCE, "0"))),
        accelerator=node_labels.get(accelerator_key) or node_labels.get(GPU_PRODUCT_LABEL),
        schedulable=_ready(node) and not spec.get("unschedulable", False),
        labels=node_labels,
    )


@dataclass(frozen=True)
class ClusterCapacity:
    """The nodes that take pods, and what they say about each flavor."""

    nodes: tuple[NodeCapacity, ...]
    accelerator_key: str = ACCELERATOR_LABEL

    @classmethod
    def of(cls, nodes: Iterable[Mapping[str, Any]], accelerator_key: str = ACCELERATOR_LABEL) -> ClusterCapacity:
        parsed = (node_capacity(n, accelerator_key) for n in nodes)
        return cls(tuple(n for n in parsed if n.schedulable), accelerator_key)

    def devices(self) -> tuple[Device, ...]:
        """Every GPU of the cluster as a device of the inventory (id ``<node>/<n>``), for the catalog's listing."""
        return tuple(Device(f"{n.name}/{i}", n.accelerator or "unknown GPU") for n in self.nodes for i in range(n.gpus))

    def unfit(self, flavor: Flavor) -> str | None:
        """Why no node of the cluster can ever hold ``flavor`` (even with nothing else running), or None."""
        if any(n.holds(flavor, self.accelerator_key) for n in self.nodes):
            return None
        if not self.nodes:
            return "the cluster has no node that takes pods"
        acc = flavor.accelerator
        if acc is not None:
            models = [n for n in self.nodes if n.labels.get(self.accelerator_key) == acc.model]
            if not models:
                seen = sorted({n.accelerator for n in self.nodes if n.accelerator and n.gpus})
                near = [
                    n.name
                    for n in self.nodes
                    if n.accelerator and n.gpus and matches(Device(n.name, n.accelerator), acc)
                ]
                hint = (
                    f"; {', '.join(near)} look like it but lack the label {self.accelerator_key}={acc.model}"
                    if near
                    else ""
                )
                return f"no node has an {acc.model} (the cluster's GPUs: {', '.join(seen) or 'none'}){hint}"
            if max(n.gpus for n in models) < acc.quantity:
                return (
                    f"it needs {accelerator_label(acc)}; no {acc.model} node has more than "
                    f"{max(n.gpus for n in models)}"
                )
            pool: Sequence[NodeCapacity] = [n for n in models if n.gpus >= acc.quantity]
        else:
            pool = self.nodes
        biggest_cpu = max(n.cpu for n in pool)
        biggest_memory = max(n.memory_bytes for n in pool)
        where = f"{acc.model} nodes" if acc is not None else "nodes"
        return (
            f"{flavor.name} needs {flavor.cpu:g} CPU and {flavor.memory_gb:g} GB of memory on one node; the "
            f"{where} have at most {biggest_cpu:g} CPU and {biggest_memory / GB:.1f} GB allocatable"
        )

    def catalog(self, catalog: Catalog) -> dict[str, str | None]:
        """Every flavor of the catalog → why it cannot run on this cluster, or None when it can."""
        return {name: self.unfit(flavor) for name, flavor in catalog.flavors.items()}


def read_nodes(core: Any, accelerator_key: str = ACCELERATOR_LABEL) -> ClusterCapacity:
    """The cluster's capacity now, read with a `kubernetes.client.CoreV1Api`."""
    nodes = core.list_node()
    serialize = core.api_client.sanitize_for_serialization
    return ClusterCapacity.of((serialize(n) for n in nodes.items), accelerator_key)
