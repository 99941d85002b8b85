"""Space settings that the runtime acts on (restart, pause) and the runtime document clients read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from spacehub.errors import BadRequest
from spacehub.services.accounts import Principal
from spacehub.services.formats import iso, subdomain
from spacehub.storage.db import utcnow
from spacehub.storage.models import Repo, Space, SpaceStatus, SpaceStorage

DEFAULT_HARDWARE = "cpu-basic"
DEFAULT_SLEEP_SECONDS = 48 * 3600


def space_row(s: Session, repo: Repo) -> Space:
    """The Space's settings row, created with the defaults on first use."""
    row = s.get(Space, repo.id)
    if row is None:
        row = Space(repo_id=repo.id, hardware=DEFAULT_HARDWARE, paused=False, restart_generation=0,
                    factory_generation=0)  # fmt: skip
        s.add(row)
        s.flush()
    return row


def runtime(s: Session, repo: Repo, domain_host: str | None = None, viewer: Principal | None = None) -> dict[str, Any]:
    """The ``SpaceRuntime`` JSON: stage, hardware (always an object), errorMessage when something failed. Volume
    sources ``viewer`` may not read are masked (anonymous when not given)."""
    from spacehub.services import storage  # it builds on this module

    space, st, stored = _rows(s, repo)
    requested = space.hardware if space is not None else DEFAULT_HARDWARE
    sleep = space.sleep_time if space is not None and space.sleep_time is not None else DEFAULT_SLEEP_SECONDS
    stage = st.stage if st is not None else ("PAUSED" if space is not None and space.paused else "BUILDING")
    accepted = accepted_stage(repo, space, st)
    if accepted is not None:
        stage = accepted
    out: dict[str, Any] = {
        "stage": stage,
        "hardware": {"current": st.current_hardware if st else None, "requested": requested},
        "storage": space.storage_tier if space is not None else None,
        "gcTimeout": None if sleep < 0 else sleep,
        "replicas": {"requested": 1, "current": 1 if stage == "RUNNING" else 0},
        "devMode": False,
        "sdk": repo.sdk,
        "domains": [{"domain": domain_host or subdomain(repo.full_name), "stage": "READY"}],
    }
    out.update(storage.fields_of(s, repo, stored, viewer))  # volumes, storageUsage
    if st is not None:
        if st.error_message and accepted is None:
            out["errorMessage"] = st.error_message
        if st.detail and accepted is None:
            out["sleepMode"] = st.detail
        if st.limits:
            out["resources"] = {"limits": st.limits}  # how CPU/memory limits are enforced here, or why not
            capped = st.limits.find("capped: ")
            if capped >= 0:  # the flavor asks for more than this machine has (runtime.resource_policy = "cap")
                out["resourcesNote"] = st.limits[capped:]
        out["updatedAt"] = iso(st.updated_at)
    return out


_PREFETCHED = "spacehub.space_rows"  # Session.info key: rows read ahead for a listing, by repo id


def _rows_query(*where: Any) -> Any:
    return (
        select(Repo.id, Space, SpaceStatus, SpaceStorage)
        .select_from(Repo)
        .outerjoin(Space, Space.repo_id == Repo.id)
        .outerjoin(SpaceStatus, SpaceStatus.repo_id == Repo.id)
        .outerjoin(SpaceStorage, SpaceStorage.repo_id == Repo.id)
        .where(*where)
    )


def prefetch_rows(s: Session, repo_ids: list[str]) -> None:
    """Read the settings, status and storage rows of many Spaces in one statement, for the `runtime` documents
    that ``s`` answers next (a listing); each is used once, so a later read in the session sees fresh rows."""
    if repo_ids:
        found = {r[0]: (r[1], r[2], r[3]) for r in s.execute(_rows_query(Repo.id.in_(repo_ids)))}
        s.info.setdefault(_PREFETCHED, {}).update(found)


_ROWS_OF = _rows_query(Repo.id == bindparam("repo_id"))  # built once (see repos._BY_NAME)


def _rows(s: Session, repo: Repo) -> tuple[Space | None, SpaceStatus | None, SpaceStorage | None]:
    """The Space's settings, status and storage rows (None where it has none), in one statement (or read ahead by
    `prefetch_rows`)."""
    ahead = s.info.get(_PREFETCHED)
    if ahead and repo.id in ahead:
        return ahead.pop(repo.id)  # type: ignore[no-any-return]
    row = s.execute(_ROWS_OF, {"repo_id": repo.id}).one()
    return row[1], row[2], row[3]


def under_way(s: Session, repo: Repo, building: bool, wake: bool = False) -> None:
    """A commit, restart or setting the runtime acts on was just accepted: note it on the Space's row (the status
    row is the runtime's alone), so that the runtime document answers the stage it leads to at once
    (`accepted_stage`), and `wait_for_space` right after `upload_folder` or `restart_space` does not return the
    stage of what came before. A change that needs a build stays one until the runtime has seen it."""
    row = space_row(s, repo)
    st = s.get(SpaceStatus, repo.id)
    pending = st is not None and row.change_seq > st.seen_change
    row.change = "build" if building or (pending and row.change == "build") else "start"
    row.change_wakes = wake or (pending and row.change_wakes)
    row.change_seq += 1


def accepted_stage(repo: Repo, space: Space | None, st: SpaceStatus | None) -> str | None:
    """The stage an accepted change leads to while the runtime has not seen it yet (None once it has): PAUSED for a
    pause, else BUILDING or APP_STARTING (the RUNNING_ form while an older version serves). Static and sleeping
    Spaces keep their stage (no build starts for them), except that a sleeping Space woken by the change (a
    restart, new hardware) says so too."""
    if space is None or st is None or space.change_seq <= st.seen_change:
        return None
    if space.paused:
        return "PAUSED"
    if repo.sdk == "static" or (st.stage == "SLEEPING" and not space.change_wakes):
        return None
    stage = "BUILDING" if space.change == "build" else "APP_STARTING"
    return f"RUNNING_{stage}" if st.serving_release is not None else stage


def restart(s: Session, repo: Repo, factory: bool) -> None:
    """Restart (a new release of the same build) or factory-reboot (rebuild without caches); unpauses."""
    row = space_row(s, repo)
    st = s.get(SpaceStatus, repo.id)
    rebuild = factory or (st is not None and st.stage == "BUILD_ERROR")  # a restart retries a failed build
    row.paused = False
    if factory:
        row.factory_generation += 1
    else:
        row.restart_generation += 1
    row.updated_at = utcnow()
    under_way(s, repo, building=rebuild, wake=True)


def pause(s: Session, repo: Repo) -> None:
    """Raises: BadRequest for static Spaces (they cannot be paused, as on HF)."""
    if repo.sdk == "static":
        raise BadRequest("Static Spaces cannot be paused")
    row = space_row(s, repo)
    row.paused = True
    row.updated_at = utcnow()
    under_way(s, repo, building=False)  # PAUSED at once; the runtime stops the app right after
