"""Sizes between SpaceHub's flavors and Kubernetes resource quantities ("2", "500m", "16Gi", "20000000000").

Parsing is the official client's (`kubernetes.utils.parse_quantity`); the writers pick the form a person reads.
"""

from __future__ import annotations

from decimal import Decimal

from kubernetes.utils import parse_quantity

_BINARY = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def parse(quantity: str | int | float) -> Decimal:
    """A Kubernetes quantity as a number (cores for CPU, bytes for memory). Raises: ValueError (not a quantity)."""
    try:
        return Decimal(parse_quantity(quantity))
    except (ValueError, TypeError, ArithmeticError):
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}") from None


def cpu(cores: float) -> str:
    """Cores as a quantity: whole cores plainly ("2"), else millicores ("500m")."""
    if cores <= 0:
        raise ValueError(f"cpu must be positive, got {cores}")
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory(size: int) -> str:
    """Bytes as a quantity in the largest binary unit that divides them ("16Gi", "512Mi"), else plain bytes."""
    if size <= 0:
        raise ValueError(f"memory must be positive, got {size}")
    for unit, factor in _BINARY:
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def human_bytes(size: int | Decimal) -> str:
    """Bytes for people ("15 GiB", "512 MiB"), in the messages a user reads."""
    value = Decimal(size)
    for unit, factor in _BINARY:
        if value >= factor:
            return f"{value / factor:.3g} {unit}B"
    return f"{value} B"
