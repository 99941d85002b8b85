"""A Space's hardware and sleep time: the flavor catalog as clients read it, hardware requests, sleep times, and the
create/duplicate settings ``hardware`` and ``sleepTimeSeconds``.

Rules (spaces-platform.md §2.1.5 and §2.1.6, the guide): a flavor is requested by name; an unknown one is refused (400,
naming the valid ones), one this machine can never run (no such accelerator; or too big under the strict resource
policy) too, and a priced one needs the owner's billing account (402, `billing.check_can_use`). Free hardware has no
custom sleep time unless the admin allows it (``runtime.custom_sleep_on_free_hardware``): as on the Hub, the call is
accepted and the 48 h rule kept (the answer's ``gcTimeout`` says 172800; the client itself warns its user);
upgraded hardware never sleeps unless given a sleep time. The stored
``spaces.sleep_time`` is always the value in force: None (the 48 h default of free hardware), -1 (never) or seconds.
Changing to free hardware without a sleep time resets it to the default; changing to paid hardware keeps a sleep time
set before, else never. Every check happens before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from spacehub.errors import BadRequest
from spacehub.flavors import Catalog, Flavor
from spacehub.services import billing, spaces
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.db import utcnow
from spacehub.storage.models import Repo, SpaceStatus

DEFAULT_SLEEP = spaces.DEFAULT_SLEEP_SECONDS  # 48 h: free hardware
MAX_SLEEP = 30 * 24 * 3600


def _runs_anything(flavor: Flavor) -> str | None:
    return None


@dataclass(frozen=True)
class HardwarePolicy:
    """What the hardware API needs: the catalog, what the runtime's machines make of each flavor (``unfit``: why
    a flavor cannot run there, None when it can; ``note``: how it is capped there, if it is), and the sleep rule.
    The composition root fills it from the runtime's scheduler (`wiring.hardware_policy`): services ask, never
    import the runtime."""

    catalog: Catalog
    unfit: Callable[[Flavor], str | None] = _runs_anything
    note: Callable[[Flavor], str | None] = _runs_anything
    custom_sleep_on_free: bool = False


# ---- the catalog as `JobHardwareInfo` --------------------------------------------------------------------------
def hardware_info(flavor: Flavor, policy: HardwarePolicy) -> dict[str, Any]:
    """One flavor in the shape of `GET /api/spaces/hardware` (``JobHardwareInfo``), plus whether it runs here."""
    out: dict[str, Any] = {
        "name": flavor.name,
        "prettyName": flavor.pretty_name,
        "cpu": f"{flavor.cpu:g} vCPU",
        "ram": f"{flavor.memory_gb:g} GB",
        "ephemeralStorage": f"{flavor.disk_gb} GB",
        "accelerator": None,
        "unitCostMicroUSD": billing.unit_cost_micro_usd(flavor.price_per_hour),
        "unitCostUSD": round(flavor.price_per_hour / 60, 9),
        "unitLabel": "minute",
    }
    acc = flavor.accelerator
    if acc is not None:
        out["accelerator"] = {"type": acc.type, "model": acc.model, "quantity": str(acc.quantity),
                              "vram": f"{acc.vram_gb} GB", "manufacturer": acc.manufacturer}  # fmt: skip
    why = policy.unfit(flavor)
    out["available"] = why is None
    note = why or policy.note(flavor)
    if note:
        out["note"] = note
    return out


def list_hardware(policy: HardwarePolicy) -> list[dict[str, Any]]:
    return [hardware_info(f, policy) for f in policy.catalog.flavors.values()]


# ---- parsing -------------------------------------------------------------------------------------------------
def parse_flavor(policy: HardwarePolicy, value: object) -> Flavor:
    """Raises: BadRequest (not a string, or not a flavor of the catalog: the message names the valid ones)."""
    if not isinstance(value, str) or not value:
        raise BadRequest("'flavor' must be a hardware flavor name, e.g. 'cpu-basic'")
    flavor = policy.catalog.flavors.get(value)
    if flavor is None:
        raise BadRequest(f"Unknown hardware flavor {value[:64]!r}. Valid flavors: {', '.join(policy.catalog.names())}")
    return flavor


def parse_sleep(value: object, key: str = "seconds") -> int:
    """A sleep time in seconds: a positive integer up to 30 days, or -1 (never). Integer strings ("7200", as the
    guide's ``space_sleep_time="7200"`` sends) are accepted. Raises: BadRequest."""
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        seconds = int(value.strip())
    if seconds is None:
        raise BadRequest(f"'{key}' must be a whole number of seconds, or -1 for never")
    if seconds == -1 or 0 < seconds <= MAX_SLEEP:
        return seconds
    raise BadRequest(f"'{key}' must be between 1 and {MAX_SLEEP} seconds (30 days), or -1 for never; got {seconds}")


def _sleep_for(policy: HardwarePolicy, flavor: Flavor, current: int | None, seconds: int | None) -> int | None:
    """The sleep time in force after moving to ``flavor`` with ``seconds`` (None: not given). Raises: BadRequest."""
    free = not flavor.priced
    if seconds is None:
        if free:
            return None
        return -1 if current is None else current
    if free and (seconds == DEFAULT_SLEEP or not policy.custom_sleep_on_free):
        return None  # the 48 h rule of free hardware, kept (the Hub accepts the call too)
    return seconds


# ---- changes -------------------------------------------------------------------------------------------------
def request_hardware(s: Session, repo: Repo, policy: HardwarePolicy, flavor_value: object,
                     sleep_value: object = None) -> bool:  # fmt: skip
    """Request ``flavor`` (and optionally a sleep time) for a Space: checked whole before anything changes. Answers
    whether the hardware changed (the app then restarts on it). Raises: BadRequest, PaymentRequired."""
    flavor = parse_flavor(policy, flavor_value)
    seconds = None if sleep_value is None else parse_sleep(sleep_value, "sleepTimeSeconds")
    why = policy.unfit(flavor)
    if why is not None:
        raise BadRequest(why)
    billing.check_can_use(s, repo.owner, flavor)
    row = spaces.space_row(s, repo)
    sleep = _sleep_for(policy, flavor, row.sleep_time, seconds)
    changed = row.hardware != flavor.name
    row.hardware, row.sleep_time, row.updated_at = flavor.name, sleep, utcnow()
    st = s.get(SpaceStatus, repo.id)
    if changed and st is not None and (st.serving_release is not None or st.stage == "SLEEPING"):
        spaces.under_way(s, repo, building=False, wake=True)  # a new release starts on it (or says why it cannot)
    return changed


def set_sleep_time(s: Session, repo: Repo, policy: HardwarePolicy, value: object) -> None:
    """Raises: BadRequest (bad value, or a custom sleep time on free hardware)."""
    seconds = parse_sleep(value)
    row = spaces.space_row(s, repo)
    flavor = policy.catalog.get(row.hardware) or policy.catalog.get(None)
    assert flavor is not None
    row.sleep_time, row.updated_at = _sleep_for(policy, flavor, row.sleep_time, seconds), utcnow()


# ---- create and duplicate ------------------------------------------------------------------------------------
def create_check(policy: HardwarePolicy) -> Any:
    """A ``create_checks`` callable: refuses bad ``hardware``/``sleepTimeSeconds`` before anything is written."""

    def check(ctx: HubContext, repo_type: str, body: dict[str, Any]) -> None:
        if repo_type != "space":
            return
        if body.get("hardware") is not None:
            flavor = parse_flavor(policy, body["hardware"])
            why = policy.unfit(flavor)
            if why is not None:
                raise BadRequest(why)
        else:
            flavor = policy.catalog.get(None)
            assert flavor is not None
        if body.get("sleepTimeSeconds") is not None:
            _sleep_for(policy, flavor, None, parse_sleep(body["sleepTimeSeconds"], "sleepTimeSeconds"))

    return check


def create_hook(policy: HardwarePolicy) -> Any:
    """A ``create_hooks`` callable: the new Space's hardware and sleep time (a priced flavor needs the owner's
    billing account: 402, and nothing is created)."""

    def hook(ctx: HubContext, s: Session, p: Principal, repo: Repo, body: dict[str, Any]) -> None:
        if repo.type != "space" or (body.get("hardware") is None and body.get("sleepTimeSeconds") is None):
            return
        request_hardware(s, repo, policy, body.get("hardware") or spaces.space_row(s, repo).hardware,
                         body.get("sleepTimeSeconds"))  # fmt: skip

    return hook
