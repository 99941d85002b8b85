"""What a Space should be right now, read from the database and its git repository (the reconciler's input).

`read_space(...)` returns a `SpaceState`: the pure `Desired` for plan(), plus the build and release specs the
backend needs to carry out its actions. Ids are content hashes, so the same inputs always give the same build and
release, and a change of any input (commit, requirements, secret, hardware, restart) gives a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.flavors import Catalog, Flavor, MachineInfo, memory_label
from spacehub.runtime.backends.base import BuildSpec, ReleaseSpec, Resources
from spacehub.runtime.dockerfile import dockerfile_inputs
from spacehub.runtime.scheduling import Placement, capped, choose_placement
from spacehub.runtime.space_storage import StorageSpec
from spacehub.runtime.spaceconfig import ConfigProblem, SpaceConfig, parse_space_config
from spacehub.runtime.types import Desired, SleepMode, Stage
from spacehub.storage.git import GitStore
from spacehub.storage.models import Repo, Space, SpaceSecret, SpaceStatus, SpaceVariable

# Variables a Space may not set: the platform's own (secrets and variables must not shadow them).
PLATFORM_ENV = (
    "SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "SPACE_TITLE", "SPACE_CREATOR_USER_ID",
    "SYSTEM", "CPU_CORES", "MEMORY", "ACCELERATOR", "PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME",
    "HF_ENDPOINT", "CUDA_VISIBLE_DEVICES",
)  # fmt: skip


@dataclass(frozen=True)
class SpaceState:
    desired: Desired
    full_name: str
    hardware: str
    build: BuildSpec | None
    release: ReleaseSpec | None
    config: SpaceConfig | None
    limits_note: str | None = None  # e.g. "cpu-upgrade asks 8 vCPU; capped to this machine's 2"
    requested: str | None = None  # the flavor asked for, when it is not ``hardware`` (see ``Desired.unmet``)
    change_seq: int = 0  # the newest change the Hub accepted (spaces.change_seq) as of this read


@dataclass(frozen=True)
class PreviewOf:
    """What makes a read the desired state of a pull request's preview rather than of the Space itself: its runtime
    id (`storage.previews.preview_id`), the head of ``refs/pr/{num}`` and when it was asked for (asking again
    starts it again). A preview is a stranger's code: it gets the Space's variables but never its secrets (nor a
    docker build's secret mounts), no persistent storage and no volumes, the default flavor with no accelerator, and
    no pause or restart of the Space applies to it. It sleeps after the Space's sleep time (the reconciler's part)."""

    runtime_id: str
    revision: str | None
    generation: str = ""


def variables_only(s: Session, repo: Repo) -> dict[str, str]:
    """A Space's variables, without its secrets: what a preview's app gets (nothing is decrypted)."""
    rows = s.execute(select(SpaceVariable.key, SpaceVariable.value).where(SpaceVariable.repo_id == repo.id))
    return {key: value for key, value in rows}


def _digest(*parts: object, key: bytes = b"") -> str:
    """A content id. Keyed (HMAC) where the parts hold secret values, so an id cannot be used to test guesses."""
    data = json.dumps(parts, sort_keys=True, default=str).encode()
    if key:
        return hmac.new(key, data, hashlib.sha256).hexdigest()[:20]
    return hashlib.sha256(data).hexdigest()[:20]


def _read_text(git: GitStore, repo_id: str, sha: str, path: str) -> str | None:
    e = git.entry(repo_id, sha, path)
    if e is None or e.type != "file" or e.size > 1024 * 1024:
        return None
    return git.read_blob(repo_id, e.oid).decode("utf-8", "replace")


def _factory_done(s: Session, repo_id: str) -> int:
    st = s.get(SpaceStatus, repo_id)
    return st.factory_done if st is not None else 0


def docker_build_inputs(
    s: Session, git: GitStore, repo: Repo, revision: str, user: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """What a docker build gets of the Space's settings, as on HF: its variables as build args and its secrets as
    build secrets, limited to what the Dockerfile uses (the rest cannot change the image)."""
    args, mounts = dockerfile_inputs(_read_text(git, repo.id, revision, "Dockerfile"))
    secret_keys = set(s.scalars(select(SpaceSecret.key).where(SpaceSecret.repo_id == repo.id)))
    build_args = {k: v for k, v in user.items() if k in args and k not in secret_keys}
    build_secrets = {k: v for k, v in user.items() if k in mounts and k in secret_keys}
    return build_args, build_secrets


def resources_for(flavor: Flavor, machine: MachineInfo, strict: bool = False) -> tuple[Resources, str | None]:
    """The flavor's limits, capped to what this machine has (default policy) with a note saying so. No devices: the
    reconciler offers them with a `scheduling.Scheduler` (see ``place`` in `read_space`)."""
    cpus, memory, note = capped(flavor, machine)
    return Resources(cpus=cpus, memory_bytes=memory), note


def platform_env(
    repo: Repo, config: SpaceConfig | None, flavor: Flavor, resources: Resources, hub_url: str, host: str
) -> dict[str, str]:
    """The environment every Space gets, as on HF Spaces."""
    env = {
        "SPACE_ID": repo.full_name,
        "SPACE_AUTHOR_NAME": repo.owner.name,
        "SPACE_REPO_NAME": repo.name,
        "SPACE_TITLE": (config.title if config and config.title else repo.name),
        "SPACE_HOST": host,
        "SPACE_CREATOR_USER_ID": f"{repo.owner_id:024x}",
        "SYSTEM": "spaces",
        "CPU_CORES": f"{resources.cpus:g}" if resources.cpus else "1",
        "MEMORY": memory_label(flavor),
        "ACCELERATOR": "none" if flavor.accelerator is None else flavor.name,
        "HF_ENDPOINT": hub_url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "STREAMLIT_SERVER_HEADLESS": "true",
    }
    if resources.devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(resources.devices)
    return env


def read_space(
    s: Session,
    git: GitStore,
    repo: Repo,
    space: Space | None,
    *,
    catalog: Catalog,
    machine: MachineInfo,
    hub_url: str,
    host: str,
    user_env: Callable[[Session, Repo], Mapping[str, str]],
    sleep: SleepMode = SleepMode.AWAKE,
    deleting: bool = False,
    storage: Callable[[Session, Repo], StorageSpec | None] | None = None,
    place: Callable[[Flavor, bool], Placement] | None = None,
    fallback: str | None = None,
    id_key: bytes = b"",
    preview: PreviewOf | None = None,
) -> SpaceState:
    """The desired state of one Space. ``user_env`` gives its variables and (decrypted) secrets. ``place(flavor,
    devices)`` gives a flavor's limits and the devices it would get on this machine (default: capped limits, no
    devices), taking nothing: reading claims no device (the plan's ``Claim`` does, ``Desired.devices``). When the
    requested flavor cannot run now, the release stays on ``fallback`` (the flavor the Space runs on now), else the
    default flavor, and ``Desired.unmet`` says why. With ``preview``, the desired state of that pull request's
    preview (see `PreviewOf`: what it does not get of the Space). ``space`` is its `Space` row (None: it has none,
    and has the defaults)."""
    space = space or Space(repo_id=repo.id, hardware="cpu-basic", paused=False, restart_generation=0,
                           factory_generation=0)  # fmt: skip
    runtime_id, generation = repo.id, space.restart_generation
    if preview is not None:
        default = catalog.get(None)
        assert default is not None
        space = Space(repo_id=repo.id, hardware=default.name, paused=False, factory_generation=0)
        runtime_id, generation, storage, fallback = preview.runtime_id, preview.generation, None, None
        user_env = variables_only
    requested = catalog.get(space.hardware) or catalog.get(None)
    assert requested is not None
    flavor = requested
    revision = git.branches(repo.id).get("main") if preview is None else preview.revision
    base = dict(space_id=runtime_id, paused=bool(space.paused), deleting=deleting, sleep=sleep)
    if revision is None:
        return SpaceState(Desired(revision=None, build_id=None, release_id=None, **base), repo.full_name,
                          flavor.name, None, None, None)  # fmt: skip
    paths = set(git.files(repo.id, revision))
    parsed = parse_space_config(_read_text(git, repo.id, revision, "README.md"), paths)
    if isinstance(parsed, ConfigProblem):
        desired = Desired(revision=revision, build_id=None, release_id=None, problem=parsed.stage,
                          problem_message=parsed.message, **base)  # fmt: skip
        return SpaceState(desired, repo.full_name, flavor.name, None, None, None)
    cfg = parsed
    st = storage(s, repo) if storage is not None and cfg.sdk != "static" else None  # persistent storage, volumes
    if st is not None and st.problem:
        desired = Desired(revision=revision, build_id=None, release_id=None, problem=Stage.CONFIG_ERROR,
                          problem_message=st.problem, **base)  # fmt: skip
        return SpaceState(desired, repo.full_name, flavor.name, None, None, None)
    # Nothing will start for a paused, deeply asleep or static Space: it is offered no device.
    devices = not (space.paused or deleting or sleep is SleepMode.STOPPED or cfg.sdk == "static" or preview)

    def placer(f: Flavor) -> Placement:
        if place is not None:
            return place(f, devices)
        resources, note = resources_for(f, machine)
        return Placement(f, resources, note, "this runtime has no accelerators" if f.accelerator else None)

    placement, unmet = choose_placement(requested, [catalog.get(fallback) if fallback else None,
                                                    catalog.get(None)], placer)  # fmt: skip
    flavor = placement.flavor
    if cfg.sdk == "static":  # SpaceHub serves its files from git: nothing is built or started, no environment
        desired = Desired(revision=revision, build_id=None, release_id=None, static=True, unmet=unmet, **base)
        return SpaceState(desired, repo.full_name, flavor.name, None, None, cfg, placement.note, requested.name)
    deps = [_read_text(git, repo.id, revision, p) for p in ("requirements.txt", "pre-requirements.txt")]
    user = {k: v for k, v in user_env(s, repo).items() if k not in PLATFORM_ENV}
    build_args, build_secrets = docker_build_inputs(s, git, repo, revision, user) if cfg.sdk == "docker" else ({}, {})
    # A docker build's args and secrets are inputs of the image: a new value rebuilds it (keyed: secret values).
    inputs = [sorted(build_args.items()), sorted(build_secrets.items())] if build_args or build_secrets else []
    # A preview's builds are its own (its environment and checkout are a stranger's work, never the Space's).
    build_id = "b" + _digest(runtime_id, revision, cfg.sdk, cfg.sdk_version, cfg.python_version, deps,
                             space.factory_generation, *inputs, key=id_key if build_secrets else b"")  # fmt: skip
    resources, note = placement.resources, placement.note
    env = platform_env(repo, cfg, flavor, resources, hub_url, host)
    env.update(st.env if st is not None else {})  # HF_HOME under /data: before the user's, who may change it
    env.update(user)
    mounted = [st.identity] if st is not None else []  # nothing added without storage: release ids stay as they were
    release_id = "r" + _digest(build_id, env, flavor.name, generation, *mounted, key=id_key)
    build = BuildSpec(
        space_id=runtime_id,
        build_id=build_id,
        revision=revision,
        sdk=cfg.sdk,
        sdk_version=cfg.sdk_version,
        python_version=cfg.python_version,
        use_cache=space.factory_generation <= _factory_done(s, repo.id),
        build_args=build_args,
        build_secrets=build_secrets,
        repo_id=repo.id,
    )
    release = ReleaseSpec(
        space_id=runtime_id,
        release_id=release_id,
        build_id=build_id,
        sdk=cfg.sdk,
        app_file=cfg.app_file,
        app_port=cfg.app_port,
        env=env,
        resources=resources,
        storage=st.name if st is not None else None,
        data_limit_bytes=st.limit_bytes if st is not None else None,
        volumes=st.volumes if st is not None else (),
    )
    desired = Desired(
        revision=revision,
        build_id=build_id,
        release_id=release_id,
        static=cfg.sdk == "static",
        start_timeout=cfg.startup_timeout,
        cold_start=st is not None and st.cold_start,
        unmet=unmet,
        devices=tuple(resources.devices),
        **base,
    )
    return SpaceState(desired, repo.full_name, flavor.name, build, release, cfg, note, requested.name)
