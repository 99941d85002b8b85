"""KubernetesBackend: the engine-neutral Backend contract (runtime/backends/base.py) on a cluster.

What each call becomes (every object labelled with the Space, commit and release; see manifests.py):

- ``build(spec)``: a Job ``build-<build id>`` whose init containers fetch the Space's code at the commit from the Hub
  (a token scoped to the Space, in a Secret mounted by the fetch container only) and install its requirements; the
  build waits for it. Succeeded: the build exists (the Job is the record, with the commit in its annotations; so it
  survives a SpaceHub restart). Failed: `BuildFailed` with the failing container's exit code and message. The API
  server unreachable or answering 5xx: `TemporaryBackendError`.
- ``start(spec)`` of a service: the Space's NetworkPolicy, Secret (the Space's env beyond the platform's own: the
  spec does not say which keys are secret, so none is put in a ConfigMap), ConfigMap, claim, Services and
  Deployment, applied idempotently. The Deployment's pods fetch the code the same way. A new release of a running
  Space replaces the Deployment's pod template: a rolling update (the old pod serves until the new one is Ready)
  or, with storage or a GPU, a recreate. The endpoint is a Service of that release's pods only, so the reconciler's
  probe is answered by the new release, never the old one.
- ``start(spec)`` of a run-to-exit task: a Job ``task-<release id>``; its exit code is its result.
- ``status(release)``: read from the cluster each time (nothing is kept in memory: a restarted SpaceHub adopts what
  runs). The current release is running unless its pods cannot run (health.py: CrashLoopBackOff, OOMKilled, image
  pull errors, unschedulable for good: stage RUNTIME_ERROR), then it reports an exit and writes the reason to the
  Space's run log, which is where the reconciler's errorMessage comes from.
- ``stop(release)``: the current release scales to zero (the objects and the claim stay: waking is a scale to one);
  a new release that is stopped while the one it replaced is still live rolls the Deployment back to it; the
  replaced release is just forgotten (the Deployment controller has retired its pods). A task's Job is deleted.
- ``freeze``: False (a pod cannot be suspended: the reconciler then sleeps the Space by stopping it).
- every pod it makes (a build's, a task's, a Space's) starts with its own firewall (manifests.firewall_container,
  firewall.py): a build's reaches the package index, a task's and a Space's what the Space's NetworkPolicy allows.
- ``storage_size(name)``: the size of the claim ``data-<name>``; ``delete_space`` and ``delete_storage`` clean up.
- ``forget(space id)`` (a deleted Space): every object labelled with it; ``spaces()``: the Spaces any object is
  labelled with (a restarted SpaceHub forgets those the Hub no longer has); ``storage_names()``: the claims, whose
  storage no Space owns the runtime's sweep deletes (`runtime.storage_sweep`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from spacehub.flavors import Catalog, Flavor
from spacehub.runtime.backends.base import (
    BuildFailed,
    BuildSpec,
    Endpoint,
    InstanceStatus,
    PermanentBackendError,
    ReleaseSpec,
    TemporaryBackendError,
)
from spacehub.runtime.backends.kubernetes import envs, images, quantities
from spacehub.runtime.backends.kubernetes import manifests as m
from spacehub.runtime.backends.kubernetes.capacity import read_nodes
from spacehub.runtime.backends.kubernetes.health import space_health
from spacehub.runtime.backends.kubernetes.objects import Cluster
from spacehub.runtime.logs import stamp
from spacehub.runtime.types import Stage

log = logging.getLogger(__name__)

ANNOTATION_PREVIOUS = "spacehub.dev/previous-release"  # the release a rollout replaces, until it is stopped
ANNOTATION_PREVIOUS_BUILD = "spacehub.dev/previous-build"
ANNOTATION_BUILD = "spacehub.dev/build"
ANNOTATION_SDK = "spacehub.dev/sdk"
ANNOTATION_PACKAGES = "spacehub.dev/packages"  # the SDK's packages the build installed (JSON), which its pods install
ANNOTATION_IMAGE = "spacehub.dev/image"  # a docker build's image in the registry, which its pods run
ANNOTATION_ENV = "spacehub.dev/env"  # the key of the environment the build kept in the cache, which its pods mount
# The SDK's own package first (``sdk_version`` pins it), as the local backend installs them (local_build.py).
DEFAULT_SDK_PACKAGES: dict[str, tuple[str, ...]] = {"gradio": ("gradio", "spaces"), "streamlit": ("streamlit",)}
LABEL_BUILD = "spacehub.dev/build"
LABEL_KIND = m.LABEL_KIND  # build | task: the Jobs of a Space
LIMITS = "kubernetes: requests = limits (cpu, memory, nvidia.com/gpu), enforced by the node's kubelet and cgroups"
# Env a Space gets from the platform (desired.PLATFORM_ENV and the quiet flags): plain env in the Deployment. Every
# other key may be a secret (the spec does not say), so its value goes in the Secret.
PLATFORM_ENV = frozenset({
    "SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "SPACE_TITLE", "SPACE_CREATOR_USER_ID",
    "SYSTEM", "CPU_CORES", "MEMORY", "ACCELERATOR", "PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME",
    "HF_ENDPOINT", "CUDA_VISIBLE_DEVICES", "HF_HUB_DISABLE_TELEMETRY", "GRADIO_ANALYTICS_ENABLED",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS", "STREAMLIT_SERVER_HEADLESS",
})  # fmt: skip
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,50}[a-z0-9])?$")
_TEMPORARY = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
RELAY_IDLE = 60.0  # seconds a release's log relay waits for a pod of it before it ends

# space id → (the repo's "owner/name", a token that may read that Space's repo and nothing else)
# (space id, the token its fetch Secret holds now or None) → (its "owner/name", the token to use: that one while it
# is still valid, else a new one)
CodeAccess = Callable[[str, str | None], tuple[str, str]]


def _check_id(kind: str, value: str) -> None:
    if not _ID.match(value):
        raise PermanentBackendError(f"{kind} {value!r} cannot name Kubernetes objects")


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


@dataclass
class KubernetesBackend:
    """``cluster``: the API client and the Spaces' namespace; ``options``: the operator's choices (manifests);
    ``code_access``: who the Space is and a token scoped to it (the composition root mints it); ``hub_url``: the
    Hub as the pods reach it; ``image``: the image Python Spaces (and the fetch containers) run in;
    ``sdk_packages``: what the install init container adds for each SDK (the first pinned to the README's
    ``sdk_version``), as on HF where a gradio Space need not list gradio."""

    cluster: Cluster
    options: m.ClusterOptions
    code_access: CodeAccess
    hub_url: str
    image: str = "python:3.11-slim"
    catalog: Catalog = field(default_factory=Catalog)
    run_log: Callable[[str], Path] | None = None
    build_timeout: float = 1800.0
    poll_interval: float = 0.2
    endpoints: str = "service"  # "service": the release's Service by name; "pod": its pod's IP and the app port
    address_timeout: float = 60.0  # "pod": how long start waits for the pod's IP before it says try again
    sdk_packages: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_SDK_PACKAGES))
    registry: str | None = None  # docker Spaces: where their images are pushed and pulled (host[:port]/path)
    registry_tls_verify: bool = True
    registry_auth_file: Path | None = None  # the registry's credentials (config.json / auth.json): push and pull
    registry_pull_secret: str | None = None  # an existing pull secret the nodes pull docker Spaces' images with
    build_user: str = "spacehub-builder"  # who runs a Dockerfile's RUN steps when SpaceHub is root
    env_keep_days: float = 7.0  # an environment of the cache unused this long, and mounted by nothing, is removed
    env_gc_every: float = 3600.0  # seconds: the cache is collected after a build at most this often
    name: str = "kubernetes"
    _relayed: dict[str, str] = field(default_factory=dict)  # release → the last reason written to its run log
    _relays: dict[str, threading.Event] = field(default_factory=dict)  # release → set when it is stopped
    _relays_lock: threading.Lock = field(default_factory=threading.Lock)
    _last: dict[str, InstanceStatus] = field(default_factory=dict)  # release → its last status read
    _gone: set[str] = field(default_factory=set)  # Spaces forgotten: their relays end and write nothing more
    _gc_last: float = field(default_factory=time.monotonic)  # the last collection of the cache (or the start)
    _gc_lock: threading.Lock = field(default_factory=threading.Lock)
    _log_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.options.hub_url is None:  # the pods' firewall resolves it when the Hub is given by pod labels
            self.options = dataclasses.replace(self.options, hub_url=self.hub_url)

    # ---- errors ------------------------------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """An API call, its failures sorted: the server unreachable or failing (5xx, 429) is temporary."""
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status is None or e.status >= 500 or e.status == 429:
                raise TemporaryBackendError(f"the Kubernetes API server answered {e.status} {e.reason}", 5) from e
            raise
        except _TEMPORARY as e:
            raise TemporaryBackendError(f"the Kubernetes API server cannot be reached: {e}", 5) from e

    def _json(self, obj: Any) -> dict[str, Any]:
        return self.cluster.api.sanitize_for_serialization(obj)  # type: ignore[no-any-return]

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    # ---- the release as Kubernetes sees it ---------------------------------------------------------------------
    def _flavor(self, spec: ReleaseSpec) -> Flavor:
        """The flavor the release runs on: the catalog's for a GPU flavor (its model picks the nodes), else the
        CPU and memory the spec was given."""
        named = self.catalog.get(spec.env.get("ACCELERATOR")) if spec.env.get("ACCELERATOR") != "none" else None
        if named is not None and named.accelerator is not None:
            return named
        cpus = spec.resources.cpus or 1.0
        memory = spec.resources.memory_bytes or 2 * 1024**3
        return Flavor("custom", "custom", cpus, memory / 1024**3)

    def _code(self, space_id: str, repo: str, revision: str, install: bool, packages: Sequence[str] = (),
              **env: Any) -> m.CodeFetch:  # fmt: skip
        return m.CodeFetch(repo, revision, self.hub_url, m.fetch_secret_name(space_id), self.image, install,
                           tuple(packages), **env)  # fmt: skip

    def _packages(self, sdk: str, sdk_version: str | None) -> list[str]:
        packages = list(self.sdk_packages.get(sdk, ()))
        if packages and sdk_version:
            packages[0] = f"{packages[0]}=={sdk_version}"
        return packages

    def _release(self, spec: ReleaseSpec, revision: str, repo: str, packages: Sequence[str] = (),
                 env_key: str | None = None,
                 image: str | None = None) -> tuple[m.SpaceRelease, dict[str, str]]:  # fmt: skip
        """The manifests' view of ``spec`` and the values of its Secret."""
        env = {k: v for k, v in spec.env.items() if k in PLATFORM_ENV}
        env |= {"PORT": str(spec.app_port)}
        if "HF_ENDPOINT" in env:  # the Hub as the pods reach it (kubernetes.hub_url), not as its users do
            env["HF_ENDPOINT"] = self.hub_url.rstrip("/")
        if spec.sdk == "gradio":
            env |= {"GRADIO_SERVER_PORT": str(spec.app_port), "GRADIO_SERVER_NAME": "0.0.0.0"}
        secret = {k: v for k, v in spec.env.items() if k not in env}
        if spec.run_to_exit:
            command: tuple[str, ...] = spec.command
        elif spec.sdk == "docker":
            command = ()  # the image's own entrypoint and command
        elif spec.sdk == "streamlit":
            command = ("python3", "-m", "streamlit", "run", spec.app_file or "app.py", "--server.port",
                       str(spec.app_port), "--server.address", "0.0.0.0")  # fmt: skip
        else:
            command = ("python3", spec.app_file or "app.py")
        storage = spec.storage if spec.storage is not None else None
        release = m.SpaceRelease(
            space_id=spec.space_id,
            repo=repo,
            commit=revision,
            release_id=spec.release_id,
            flavor=self._flavor(spec),
            image=image or self.image,
            app_port=spec.app_port,
            command=command,
            env=env,
            secrets=tuple(sorted(secret)),
            storage_bytes=spec.data_limit_bytes if storage else None,
            storage_name=storage,
            readiness_path="/_stcore/health" if spec.sdk == "streamlit" else None,
            code=None
            if image
            else self._code(
                spec.space_id, repo, revision, install=spec.sdk != "static", packages=packages, env_key=env_key
            ),
            working_dir=None if image else m.CODE_PATH,
        )
        return release, secret

    # ---- builds ------------------------------------------------------------------------------------------------
    def _build_job(self, build_id: str) -> dict[str, Any] | None:
        try:
            return self._json(self._call(self.cluster.batch.read_namespaced_job, f"build-{build_id}", self.namespace))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        _check_id("build id", spec.build_id)
        _check_id("space id", spec.space_id)
        self._gone.discard(spec.space_id)  # a runtime id in use again (a preview asked for again)
        job = self._build_job(spec.build_id)
        if job is not None and _get(job, "status", "succeeded"):
            log("build exists")
            return
        if spec.sdk == "docker" and not self.registry:
            raise BuildFailed(
                "docker Spaces on Kubernetes need a registry the cluster pulls from: the operator sets "
                "kubernetes.registry (podman builds the Dockerfile here and pushes the image there)"
            )
        if job is not None:  # an earlier attempt failed or was cut off: this one starts afresh
            self._delete_job(f"build-{spec.build_id}", wait=True)
        repo, token = self.code_access(spec.space_id, self._fetch_token(spec.space_id))
        if spec.sdk == "docker":
            return self._build_docker(spec, repo, token, log)
        packages = self._packages(spec.sdk, spec.sdk_version)
        try:
            code = self._code(spec.space_id, repo, spec.revision, install=spec.sdk != "static", packages=packages,
                              env_build=True, env_salt="" if spec.use_cache else spec.build_id)  # fmt: skip
        except ValueError as e:
            raise BuildFailed(str(e)) from e
        release = m.SpaceRelease(
            space_id=spec.space_id, repo=repo, commit=spec.revision, release_id=spec.build_id,
            flavor=Flavor("build", "build", 1.0, 2.0), image=self.image, app_port=8080,
            command=("python3", "-c", "print('the code is in /code and its requirements are installed')"),
            code=code, working_dir=m.CODE_PATH,
        )  # fmt: skip
        self._call(self.cluster.apply_one, m.fetch_secret(release, token, self.options))
        self._call(self.cluster.apply_one, m.build_network_policy(release, self.options))
        manifest = m.job(release, self.options, f"build-{spec.build_id}", int(self.build_timeout), role="build")
        for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
            meta["labels"] |= {LABEL_KIND: "build", LABEL_BUILD: spec.build_id}
            meta["annotations"][ANNOTATION_SDK] = spec.sdk
            meta["annotations"][ANNOTATION_PACKAGES] = json.dumps(packages)
        log(f"a build Job fetches {repo} at {spec.revision[:7]} from the Hub and installs its requirements"
            + (f" and {' '.join(packages)}" if packages else ""))  # fmt: skip
        self._call(self.cluster.batch.create_namespaced_job, self.namespace, manifest)
        self._wait_build(spec, log)

    def _build_docker(self, spec: BuildSpec, repo: str, token: str, log: Callable[[str], None]) -> None:
        """podman builds the Dockerfile here and pushes the image to the registry; a Job that succeeds at once is
        the build's record on the cluster (with the image), as a Python Space's build Job is."""
        assert self.registry is not None
        tag = images.image_name(self.registry, spec.space_id, spec.build_id)
        if self.registry_auth_file is not None:
            images.read_auth_file(self.registry_auth_file)  # a bad file is said before the build, not after it
        log(f"podman builds {repo} at {spec.revision[:7]} and pushes it to {tag}")
        images.build_and_push(spec, repo, token, self.hub_url, tag, build_user=self.build_user,
                              tls_verify=self.registry_tls_verify, timeout=self.build_timeout, log=log,
                              authfile=self.registry_auth_file)  # fmt: skip
        release = m.SpaceRelease(
            space_id=spec.space_id, repo=repo, commit=spec.revision, release_id=spec.build_id,
            flavor=Flavor("build", "build", 0.1, 0.25), image=self.image, app_port=8080,
            command=("python3", "-c", f"print('the image is ' + {tag!r})"),
        )  # fmt: skip
        manifest = m.job(release, self.options, f"build-{spec.build_id}", int(self.build_timeout), role="build")
        for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
            meta["labels"] |= {LABEL_KIND: "build", LABEL_BUILD: spec.build_id}
            meta["annotations"] |= {ANNOTATION_SDK: "docker", ANNOTATION_IMAGE: tag}
        self._call(self.cluster.batch.create_namespaced_job, self.namespace, manifest)
        self._wait_build(spec, log)

    def _wait_build(self, spec: BuildSpec, log: Callable[[str], None]) -> None:
        deadline = time.monotonic() + self.build_timeout + 60
        while True:
            job = self._build_job(spec.build_id)
            if job is None:
                raise TemporaryBackendError("the build Job was deleted while it ran", 1)
            if _get(job, "status", "succeeded"):
                self._relay_pod_logs(f"build-{spec.build_id}", log)
                self._record_env(spec.build_id)
                log("build done")
                self._collect_soon()
                return
            if _get(job, "status", "failed") or _job_failed(job):
                self._relay_pod_logs(f"build-{spec.build_id}", log)
                raise BuildFailed(self._job_failure(f"build-{spec.build_id}", job))
            if time.monotonic() > deadline:
                raise BuildFailed(f"the build did not finish within {self.build_timeout:g} s")
            time.sleep(self.poll_interval)

    def _record_env(self, build_id: str) -> None:
        """The key of the environment the build kept in the cache (its publish container's termination message),
        recorded on the Job, the build's record, for the pods of its releases."""
        for pod in self._job_pods(f"build-{build_id}"):
            for cs in _get(pod, "status", "initContainerStatuses") or []:
                key = (_get(cs, "state", "terminated", "message") or "").strip()
                if cs.get("name") == "publish" and re.fullmatch(r"[0-9a-f]{32}", key):
                    patch = {"metadata": {"annotations": {ANNOTATION_ENV: key}}}
                    self._call(self.cluster.batch.patch_namespaced_job, f"build-{build_id}", self.namespace, patch)
                    return

    # ---- the environment cache's garbage collection (envs.py) --------------------------------------------------
    def _collect_soon(self) -> None:
        """After a build: a collection of the environment cache in the background, at most every env_gc_every."""
        if self.options.env_cache is None or time.monotonic() - self._gc_last < self.env_gc_every:
            return
        self._gc_last = time.monotonic()

        def collect() -> None:
            try:
                self.collect_envs()
            except Exception as e:  # the next build tries again, env_gc_every later
                log.warning("collecting the environment cache failed: %s", e)

        threading.Thread(target=collect, daemon=True, name="k8s-envs-gc").start()

    def collect_envs(self, timeout: float = 660.0) -> dict[str, dict[str, Any]]:
        """Remove the environments of the cache that nothing mounts and nothing used for ``env_keep_days`` (one Job
        on each Ready node's hostPath folder, or one on the claim), and wait for it: answers, by node ("" for a
        claim), what each removed (``removed``: keys, ``removed_count``, ``kept``: unused ones still within the
        days, ``scratch``: scratch entries cleared) or ``error``. Nothing when there is no cache or a collection is
        under way."""
        if self.options.env_cache is None or not self._gc_lock.acquire(blocking=False):
            return {}
        try:
            self._gc_last = time.monotonic()
            return self._collect_envs(timeout)
        finally:
            self._gc_lock.release()

    def _collect_envs(self, timeout: float) -> dict[str, dict[str, Any]]:
        self._delete_collections()  # an earlier run's, cut off
        # whatever mounts an environment now, whoever made it: every pod template and pod of the namespace
        specs: list[dict[str, Any]] = []
        for list_all in (self.cluster.apps.list_namespaced_deployment, self.cluster.apps.list_namespaced_replica_set,
                         self.cluster.batch.list_namespaced_job, self.cluster.core.list_namespaced_pod):  # fmt: skip
            specs += [self._json(o) for o in self._call(list_all, self.namespace).items]
        in_use = envs.keys_in_use(specs)
        stamp = f"{envs.KIND}-{int(time.time() * 1000)}"
        nodes: list[str] = [""]
        if "persistentVolumeClaim" not in self.options.env_cache:  # a hostPath: each node's own folder
            nodes = sorted(
                n.metadata.name
                for n in self._call(self.cluster.core.list_node).items
                if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            )
        self._call(self.cluster.core.create_namespaced_config_map, self.namespace,
                   envs.gc_config_map(stamp, in_use, self.options))  # fmt: skip
        jobs: dict[str, str] = {}
        for i, node in enumerate(nodes):
            manifest = envs.gc_job(f"{stamp}-{i}", stamp, node or None, self.image, self.options,
                                   self.env_keep_days * 86400, self.build_timeout + 3600)  # fmt: skip
            self._call(self.cluster.batch.create_namespaced_job, self.namespace, manifest)
            jobs[f"{stamp}-{i}"] = node
        results: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        try:
            while len(results) < len(jobs) and time.monotonic() < deadline:
                for name, node in jobs.items():
                    job = self._read_job(name)
                    if node in results or job is None:
                        continue
                    if _get(job, "status", "succeeded"):
                        results[node] = self._collected(name)
                    elif _get(job, "status", "failed") or _job_failed(job):
                        results[node] = {"error": self._job_failure(name, job)}
                time.sleep(self.poll_interval)
        finally:
            self._delete_collections()
        for node, result in sorted(results.items()):
            where = f"node {node}" if node else "the cache claim"
            if "error" in result:
                log.warning("collecting the environment cache on %s failed: %s", where, result["error"])
            elif result.get("removed_count") or result.get("scratch"):
                log.info("environment cache on %s: removed %s (%s unused ones kept, %s scratch entries cleared)",
                         where, ", ".join(result.get("removed", [])) or "none", result.get("kept"),
                         result.get("scratch"))  # fmt: skip
        return results

    def _collected(self, job_name: str) -> dict[str, Any]:
        for pod in self._job_pods(job_name):
            for cs in _get(pod, "status", "containerStatuses") or []:
                message = _get(cs, "state", "terminated", "message")
                if message:
                    try:
                        return dict(json.loads(message))
                    except (ValueError, TypeError):
                        return {"error": f"an unreadable report: {message[:200]!r}"}
        return {"error": "no report"}

    def _delete_collections(self) -> None:
        label = f"{envs.LABEL_KIND}={envs.KIND}"
        for job in self._call(self.cluster.batch.list_namespaced_job, self.namespace, label_selector=label).items:
            self._delete_job(job.metadata.name)
        self._call(self.cluster.core.delete_collection_namespaced_config_map, self.namespace, label_selector=label)

    def _job_pods(self, job_name: str) -> list[dict[str, Any]]:
        pods = self._call(self.cluster.core.list_namespaced_pod, self.namespace, label_selector=f"job-name={job_name}")
        return [self._json(p) for p in pods.items]

    def _job_failure(self, job_name: str, job: Mapping[str, Any]) -> str:
        for pod in self._job_pods(job_name):
            for cs in [*(_get(pod, "status", "initContainerStatuses") or []),
                       *(_get(pod, "status", "containerStatuses") or [])]:  # fmt: skip
                term = _get(cs, "state", "terminated")
                if term and term.get("exitCode", 0) != 0:
                    message = (term.get("message") or "").strip()
                    return f"{cs.get('name')} exited with code {term.get('exitCode')}" + (
                        f": {message}" if message else ""
                    )
        cond = next((c for c in _get(job, "status", "conditions") or [] if c.get("type") == "Failed"), None)
        return f"the build failed: {(cond or {}).get('message') or (cond or {}).get('reason') or 'no reason given'}"

    def _relay_pod_logs(self, job_name: str, log: Callable[[str], None]) -> None:
        """The build's output, read from its pod (every container, init containers first)."""
        for pod in self._job_pods(job_name):
            names = [c["name"] for c in _get(pod, "spec", "initContainers") or []]
            names += [c["name"] for c in _get(pod, "spec", "containers") or []]
            for container in names:
                try:
                    text = self.cluster.core.read_namespaced_pod_log(
                        pod["metadata"]["name"], self.namespace, container=container
                    )
                except (ApiException, *_TEMPORARY) as e:
                    status = getattr(e, "status", None)
                    log(f"({container}: its log cannot be read from the node: {status or type(e).__name__})")
                    continue
                for line in str(text).splitlines():
                    log(line)

    def build_exists(self, build_id: str) -> bool:
        if not _ID.match(build_id):
            return False
        job = self._build_job(build_id)
        return job is not None and bool(_get(job, "status", "succeeded"))

    def drop_build(self, build_id: str) -> None:
        if _ID.match(build_id):
            self._delete_job(f"build-{build_id}")

    def _delete_job(self, name: str, wait: bool = False) -> None:
        try:
            self._call(self.cluster.batch.delete_namespaced_job, name, self.namespace,
                       propagation_policy="Background", _preload_content=False)  # fmt: skip
        except ApiException as e:
            if e.status != 404:
                raise
        if wait:
            deadline = time.monotonic() + 30
            while self._read_job(name) is not None and time.monotonic() < deadline:
                time.sleep(self.poll_interval)

    def _read_job(self, name: str) -> dict[str, Any] | None:
        try:
            return self._json(self._call(self.cluster.batch.read_namespaced_job, name, self.namespace))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def _revision(self, build_id: str) -> tuple[str, list[str], str | None, str | None]:
        """The commit the build fetched, the SDK's packages it installed (which the pods install too), the key of
        the environment it kept in the cache (None: none, the pods install their own) and a docker build's image."""
        job = self._build_job(build_id)
        if job is None or not _get(job, "status", "succeeded"):
            raise BuildFailed(f"build {build_id} does not exist on the cluster")
        annotations = job["metadata"]["annotations"]
        packages = list(json.loads(annotations.get(ANNOTATION_PACKAGES) or "[]"))
        env_key, image = annotations.get(ANNOTATION_ENV) or None, annotations.get(ANNOTATION_IMAGE) or None
        return str(annotations[m.LABEL_COMMIT]), packages, env_key, image

    # ---- start -------------------------------------------------------------------------------------------------
    def start(self, spec: ReleaseSpec) -> Endpoint | None:
        _check_id("space id", spec.space_id)
        _check_id("release id", spec.release_id)
        self._gone.discard(spec.space_id)
        if spec.volumes:
            raise BuildFailed("repo volumes are not yet mounted on the Kubernetes backend")
        revision, packages, env_key, image = self._revision(spec.build_id)
        if spec.sdk == "docker" and not image:
            raise BuildFailed(f"build {spec.build_id} has no image: rebuild the Space")
        repo, token = self.code_access(spec.space_id, self._fetch_token(spec.space_id))
        try:
            release, secret = self._release(spec, revision, repo, packages, env_key, image)
        except ValueError as e:
            raise BuildFailed(str(e)) from e
        unfit = self._call(read_nodes, self.cluster.core, self.options.accelerator_label).unfit(release.flavor)
        if unfit and release.flavor.accelerator is not None:
            raise BuildFailed(unfit)
        if spec.run_to_exit:
            return self._start_task(spec, release, secret, token)
        deployment = self._deployment(spec.space_id)
        current = _get(deployment, "spec", "template", "metadata", "labels", m.LABEL_RELEASE)
        if deployment is not None and current == spec.release_id and _get(deployment, "spec", "replicas"):
            if not self._running(deployment, spec.release_id, _Reads(self))[0]:
                self._restart_pods(spec.space_id, spec.release_id)
            self._relay(spec.space_id, spec.release_id)
            return self._reach(spec.space_id, spec.release_id)
        objects = m.space_objects(release, self.options, secret, {})
        if release.code is not None:
            objects.insert(0, m.fetch_secret(release, token, self.options))
        else:  # an image from the registry: pulled with its credentials, if it needs them
            objects[:0] = self._pull_secrets(objects[-1]["spec"]["template"]["spec"])
        objects.insert(-1, m.release_service(release, self.options))
        live = bool(current and current != spec.release_id and _get(deployment, "spec", "replicas"))
        # a rollout: the old release serves until this one is Ready, and stays known until it is stopped
        annotations = objects[-1]["metadata"]["annotations"]
        annotations[ANNOTATION_BUILD] = spec.build_id
        annotations[ANNOTATION_PREVIOUS] = str(current) if live else ""
        annotations[ANNOTATION_PREVIOUS_BUILD] = (
            str(_get(deployment, "metadata", "annotations", ANNOTATION_BUILD) or "") if live else ""
        )
        self._call(self.cluster.apply, objects)
        self._relayed.pop(spec.release_id, None)
        self._relay(spec.space_id, spec.release_id)
        return self._reach(spec.space_id, spec.release_id)

    def _start_task(self, spec: ReleaseSpec, release: m.SpaceRelease, secret: Mapping[str, str], token: str) -> None:
        name = f"task-{spec.release_id}"
        if self._read_job(name) is not None:
            return None
        # the task's own Secret (a Space's service may be running with other values)
        code = release.code and dataclasses.replace(release.code, token_secret=f"{name}-fetch")
        task = dataclasses.replace(release, code=code)
        secret_manifest = m.secret(task, secret, self.options)
        secret_manifest["metadata"]["name"] = f"{name}-secrets"
        manifest = m.job(task, self.options, name)
        for c in manifest["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if "secretKeyRef" in e.get("valueFrom", {}):
                    e["valueFrom"]["secretKeyRef"]["name"] = f"{name}-secrets"
        for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
            meta["labels"][LABEL_KIND] = "task"
            meta["annotations"][ANNOTATION_BUILD] = spec.build_id
        pull = [] if code else self._pull_secrets(manifest["spec"]["template"]["spec"])
        self._call(self.cluster.apply, [*pull, m.fetch_secret(task, token, self.options), secret_manifest] if code
                   else [*pull, secret_manifest])  # fmt: skip
        self._call(self.cluster.batch.create_namespaced_job, self.namespace, manifest)
        self._log(spec.space_id, f"a Job runs the task {spec.release_id}: {' '.join(spec.command)}")
        return None

    def _pull_secrets(self, pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
        """A pod spec of a docker Space's image gets the registry's pull secret (``imagePullSecrets``): the one the
        operator names, or the one made from the auth file, which is answered, to be applied first (read again at
        each start: a new login is taken up). Raises: BuildFailed (the file cannot be read or is not one)."""
        if self.registry_pull_secret:
            pod_spec["imagePullSecrets"] = [{"name": self.registry_pull_secret}]
            return []
        if self.registry_auth_file is None:
            return []
        pod_spec["imagePullSecrets"] = [{"name": images.PULL_SECRET}]
        return [images.pull_secret(images.read_auth_file(self.registry_auth_file), self.namespace)]

    def _endpoint(self, space_id: str, release_id: str, reads: _Reads | None = None) -> Endpoint | None:
        """Where the Hub reaches the release: its Service by its cluster DNS name (``endpoints = "service"``: the
        Hub runs in the cluster), or its newest pod's IP and the app port (``"pod"``: the Hub routes to the pod
        network, as on a node; None until the pod has an address)."""
        if self.endpoints != "pod":
            return Endpoint(f"{m.release_service_name(space_id, release_id)}.{self.namespace}.svc", m.SERVICE_PORT)
        pods = [p for p in (reads or _Reads(self)).pods(space_id)
                if _get(p, "metadata", "labels", m.LABEL_RELEASE) == release_id and _get(p, "status", "podIP")
                and not _get(p, "metadata", "deletionTimestamp")]  # fmt: skip
        if not pods:
            return None
        pod = max(pods, key=lambda p: _get(p, "metadata", "creationTimestamp") or "")
        ports = [port for c in _get(pod, "spec", "containers") or [] for port in c.get("ports") or []
                 if port.get("name") == "http"]  # fmt: skip
        return Endpoint(pod["status"]["podIP"], int(ports[0]["containerPort"])) if ports else None

    def _reach(self, space_id: str, release_id: str) -> Endpoint:
        """The endpoint ``start`` answers: with pod endpoints, once the new pod has its IP (a sandbox is made in a
        second or two); a pod that waits longer (no node for it yet) is a temporary error: start is tried again."""
        deadline = time.monotonic() + (self.address_timeout if self.endpoints == "pod" else 0)
        while (ep := self._endpoint(space_id, release_id)) is None:
            if time.monotonic() >= deadline:
                raise TemporaryBackendError(f"the pod of release {release_id} has no address yet", 2)
            time.sleep(self.poll_interval)
        return ep

    def _fetch_token(self, space_id: str) -> str | None:
        """The token the Space's fetch Secret holds now (None: no Secret yet). It is kept while valid: a new token at
        every start would revoke the one a starting pod may still be given (the kubelet refreshes a mounted Secret
        on its own sync, a minute or more later), and its fetch would get 401 until then."""
        try:
            secret = self._call(self.cluster.core.read_namespaced_secret, m.fetch_secret_name(space_id), self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        value = (secret.data or {}).get("token")
        try:
            return base64.b64decode(value).decode() if value else None
        except (ValueError, UnicodeDecodeError):
            return None

    def _deployment(self, space_id: str) -> dict[str, Any] | None:
        try:
            return self._json(self._call(self.cluster.apps.read_namespaced_deployment, m.name(space_id),
                                         self.namespace))  # fmt: skip
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def _restart_pods(self, space_id: str, release_id: str) -> None:
        """A start of a release whose pods cannot run: new pods (the ReplicaSet makes them)."""
        label = f"{m.LABEL_SPACE}={space_id},{m.LABEL_RELEASE}={release_id}"
        self._call(self.cluster.core.delete_collection_namespaced_pod, self.namespace, label_selector=label)

    # ---- observe -----------------------------------------------------------------------------------------------
    def _running(self, deployment: Mapping[str, Any], release_id: str, reads: _Reads) -> tuple[bool, int | None]:
        """Whether the Deployment's current release can run, and the exit code of its pod when it cannot. The
        reason (health.py) goes to the Space's run log once per reason."""
        space_id = deployment["metadata"]["labels"][m.LABEL_SPACE]
        capacity = reads.capacity()
        pods = [p for p in reads.pods(space_id) if _get(p, "metadata", "labels", m.LABEL_RELEASE) == release_id]
        events = [e for pod in pods for e in reads.pod_events(pod["metadata"]["name"])]
        health = space_health(deployment, pods, events, (), capacity)
        if health.error and self._relayed.get(release_id) != health.error:
            self._relayed[release_id] = health.error
            self._log(space_id, f"===== {health.error} =====")
        if health.stage is not Stage.RUNTIME_ERROR:
            return True, None
        return False, _exit_code(pods)

    def status(self, release_id: str) -> InstanceStatus | None:
        """The release as the cluster has it now. While the API server cannot be reached, the last status read (the
        reconciler's monitor must not take a blip for an exit)."""
        if not _ID.match(release_id):
            return None
        try:
            return self._kept_status(release_id, _Reads(self))
        except TemporaryBackendError as e:
            log.warning("status of %s: %s; answering the last one read", release_id, e)
            return self._last.get(release_id)

    def statuses(self, release_ids: Sequence[str]) -> list[InstanceStatus | None]:
        """`status` of each release, from one read of each kind of object (`_RoundReads`): the crash monitor's round
        over every running release (one by one, each cost a Job read, a Deployment list, a node list, a pod list
        and an event list per pod). Once the API server cannot be reached, the last status read of each left."""
        reads = _RoundReads(self)
        found: list[InstanceStatus | None] = []
        for i, rid in enumerate(release_ids):
            try:
                found.append(self._kept_status(rid, reads) if _ID.match(rid) else None)
            except TemporaryBackendError as e:
                log.warning(
                    "status of %s and %d more: %s; answering the last ones read", rid, len(release_ids) - i - 1, e
                )
                return found + [self._last.get(r) for r in release_ids[i:]]
        return found

    def _kept_status(self, release_id: str, reads: _Reads) -> InstanceStatus | None:
        st = self._status(release_id, reads)
        if st is None:
            self._last.pop(release_id, None)
        else:
            self._last[release_id] = st
        return st

    def _status(self, release_id: str, reads: _Reads | None = None) -> InstanceStatus | None:
        reads = reads or _Reads(self)
        task = reads.task_job(release_id)
        if task is not None:
            return None if _get(task, "metadata", "deletionTimestamp") else self._task_status(release_id, task, reads)
        for d in reads.deployments():
            st = self._release_status(d, release_id, reads)
            if st is not None:
                return st
        return None

    def _deployments(self) -> list[dict[str, Any]]:
        items = self._call(self.cluster.apps.list_namespaced_deployment, self.namespace,
                           label_selector="app.kubernetes.io/managed-by=spacehub").items  # fmt: skip
        return [self._json(d) for d in items]

    def _release_status(
        self, d: Mapping[str, Any], release_id: str, reads: _Reads | None = None
    ) -> InstanceStatus | None:
        if not _get(d, "spec", "replicas") or _get(d, "metadata", "deletionTimestamp"):
            return None
        reads = reads or _Reads(self)
        space_id = d["metadata"]["labels"][m.LABEL_SPACE]
        template = _get(d, "spec", "template", "metadata") or {}
        build_of = _get(d, "metadata", "annotations", ANNOTATION_BUILD) or ""
        if template.get("labels", {}).get(m.LABEL_RELEASE) == release_id:
            self._relay(space_id, release_id, adopted=True)
            running, code = self._running(d, release_id, reads)
            endpoint = self._endpoint(space_id, release_id, reads) if running else None
            return InstanceStatus(release_id, build_of, running, False, endpoint, code, LIMITS)
        if (d["metadata"].get("annotations") or {}).get(ANNOTATION_PREVIOUS) == release_id:
            self._relay(space_id, release_id, adopted=True)
            previous_build = (d["metadata"].get("annotations") or {}).get(ANNOTATION_PREVIOUS_BUILD) or ""
            return InstanceStatus(release_id, previous_build, True, False,
                                  self._endpoint(space_id, release_id, reads), None, LIMITS)  # fmt: skip
        return None

    def _task_status(self, release_id: str, job: Mapping[str, Any], reads: _Reads | None = None) -> InstanceStatus:
        done = bool(_get(job, "status", "succeeded") or _get(job, "status", "failed") or _job_failed(job))
        space_id = job["metadata"]["labels"][m.LABEL_SPACE]
        code = _exit_code((reads or _Reads(self)).job_pods(f"task-{release_id}", space_id)) if done else None
        if done and self._relayed.get(release_id) != "done":
            self._relayed[release_id] = "done"
            self._relay_pod_logs(f"task-{release_id}", lambda line: self._log(space_id, line))
            self._log(space_id, f"===== task {release_id} exited with code {code} =====")
        build_id = (job["metadata"].get("annotations") or {}).get(ANNOTATION_BUILD) or ""
        return InstanceStatus(release_id, build_id, not done, False, None, code if done else None, LIMITS)

    def list_instances(self) -> list[InstanceStatus]:
        found: list[InstanceStatus] = []
        reads = _RoundReads(self)
        for d in reads.deployments():
            annotations = d["metadata"].get("annotations") or {}
            for rid in (_get(d, "spec", "template", "metadata", "labels", m.LABEL_RELEASE),
                        annotations.get(ANNOTATION_PREVIOUS)):  # fmt: skip
                if rid and (st := self._release_status(d, rid, reads)) is not None:
                    found.append(st)
        jobs = self._call(self.cluster.batch.list_namespaced_job, self.namespace,
                          label_selector=f"{LABEL_KIND}=task").items  # fmt: skip
        for j in jobs:
            job = self._json(j)
            if not _get(job, "metadata", "deletionTimestamp"):
                found.append(self._task_status(job["metadata"]["labels"][m.LABEL_RELEASE], job, reads))
        return found

    # ---- stop --------------------------------------------------------------------------------------------------
    def stop(self, release_id: str) -> None:
        if not _ID.match(release_id):
            return
        if self._read_job(f"task-{release_id}") is not None:
            self._delete_job(f"task-{release_id}")
            for suffix in ("fetch", "secrets"):
                self._delete(self.cluster.core.delete_namespaced_secret, f"task-{release_id}-{suffix}")
            self._relayed.pop(release_id, None)
            return
        for d in self._deployments():
            space_id = d["metadata"]["labels"][m.LABEL_SPACE]
            annotations = d["metadata"].get("annotations") or {}
            current = _get(d, "spec", "template", "metadata", "labels", m.LABEL_RELEASE)
            previous = annotations.get(ANNOTATION_PREVIOUS)
            if current == release_id and previous:
                self._roll_back(d, previous)
            elif current == release_id:
                self._call(self.cluster.scale, space_id, "sleeping")
            elif previous == release_id:
                self._patch_annotations(space_id, {ANNOTATION_PREVIOUS: None, ANNOTATION_PREVIOUS_BUILD: None})
            else:
                continue
            self._delete(self.cluster.core.delete_namespaced_service, m.release_service_name(space_id, release_id))
            self._relayed.pop(release_id, None)
            self._end_relay(release_id)

    def _delete(self, fn: Callable[..., Any], name: str) -> None:
        try:
            self._call(fn, name, self.namespace, _preload_content=False)
        except ApiException as e:
            if e.status != 404:
                raise

    def _patch_annotations(self, space_id: str, annotations: Mapping[str, str | None]) -> None:
        self._call(self.cluster.apps.patch_namespaced_deployment, m.name(space_id), self.namespace,
                   {"metadata": {"annotations": dict(annotations)}})  # fmt: skip

    def _roll_back(self, d: Mapping[str, Any], previous: str) -> None:
        """A new release stopped before it replaced ``previous``: the Deployment goes back to the pod template of
        ``previous`` (its ReplicaSet keeps it), which the old pods still run."""
        space_id = d["metadata"]["labels"][m.LABEL_SPACE]
        label = f"{m.LABEL_SPACE}={space_id},{m.LABEL_RELEASE}={previous}"
        sets = self._call(self.cluster.apps.list_namespaced_replica_set, self.namespace, label_selector=label).items
        if not sets:  # nothing of it left to go back to
            self._call(self.cluster.scale, space_id, "sleeping")
            return
        template = self._json(sets[0].spec.template)
        template["metadata"]["labels"].pop("pod-template-hash", None)
        body = {
            "metadata": {"annotations": {ANNOTATION_PREVIOUS: None, ANNOTATION_PREVIOUS_BUILD: None,
                                         m.LABEL_RELEASE: previous}, "labels": {m.LABEL_RELEASE: previous}},
            "spec": {"template": template},
        }  # fmt: skip
        self._call(self.cluster.apps.patch_namespaced_deployment, m.name(space_id), self.namespace, body)

    def freeze(self, release_id: str) -> bool:
        return False  # a pod cannot be suspended: a sleeping Space is scaled to zero

    def thaw(self, release_id: str) -> None:
        return None

    # ---- storage and cleanup -----------------------------------------------------------------------------------
    def storage_size(self, name: str) -> int | None:
        if not _ID.match(name):
            return None
        try:
            pvc = self._call(self.cluster.core.read_namespaced_persistent_volume_claim, m.claim_name("", name),
                             self.namespace)  # fmt: skip
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        if pvc.metadata.deletion_timestamp is not None:  # deleted, waiting for its last pod to let go
            return None
        size = (pvc.spec.resources.requests or {}).get("storage")
        return int(quantities.parse(size)) if size else None

    def delete_storage(self, name: str) -> None:
        if _ID.match(name):
            self._delete(self.cluster.core.delete_namespaced_persistent_volume_claim, m.claim_name("", name))

    def spaces(self) -> set[str]:
        return set(self._call(self.cluster.space_ids))

    def storage_names(self) -> set[str]:
        """The storage this backend holds: the names of SpaceHub's claims ``data-<name>`` (but those being
        deleted), for the runtime's sweep of storage no Space owns (`runtime.storage_sweep`)."""
        claims = self._call(self.cluster.managed, "PersistentVolumeClaim")
        return {n.removeprefix("data-") for c in claims if (n := c["metadata"]["name"]).startswith("data-")}

    def delete_space(self, space_id: str, keep_storage: bool = False) -> None:
        """Every object of the Space: its Deployment, Services, Secrets, ConfigMap, NetworkPolicy, Jobs and (unless
        ``keep_storage``) its claims. The garbage collector removes the pods."""
        _check_id("space id", space_id)
        self._call(self.cluster.delete, space_id, keep_storage)

    def forget(self, space_id: str) -> None:
        """The Space is gone: every object labelled with it (`delete_space`: its Secrets, the fetch token's
        included, ConfigMap, Services, NetworkPolicy, Deployment, Jobs and claims), and its log relays end without
        writing another line. A preview's objects carry its own runtime id: they are not the Space's."""
        if not _ID.match(space_id):
            return  # no object is named by it
        with self._log_lock:  # from now on nothing is written to its run log (which the reconciler deletes next)
            self._gone.add(space_id)
        self.delete_space(space_id)

    # ---- logs --------------------------------------------------------------------------------------------------
    def _relay(self, space_id: str, release_id: str, adopted: bool = False) -> None:
        """Copy the output of the release's app containers into the Space's run log as they write it, so it is kept
        after the pods are gone (as the local backend's supervisor does): one thread per release, following each
        pod's log through the API server (the kubelet), across container restarts, to the end of the last pod
        after `stop`. A release found running (``adopted``: SpaceHub restarted) skips what is older than the run
        log's last write, which it already holds."""
        if self.run_log is None:
            return
        with self._relays_lock:
            if release_id in self._relays:
                return
            stopped = self._relays[release_id] = threading.Event()
        since = None
        if adopted and (path := self.run_log(space_id)).exists():
            since = _log_time(dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        threading.Thread(target=self._follow, args=(space_id, release_id, stopped, since), daemon=True,
                         name=f"k8s-logs-{release_id}").start()  # fmt: skip

    def _end_relay(self, release_id: str) -> None:
        with self._relays_lock:
            stopped = self._relays.pop(release_id, None)
        if stopped is not None:
            stopped.set()  # the thread copies what the last pods write until they are gone

    def _follow(self, space_id: str, release_id: str, stopped: threading.Event, since: str | None) -> None:
        try:
            self._follow_pods(space_id, f"{m.LABEL_SPACE}={space_id},{m.LABEL_RELEASE}={release_id}", stopped, since)
        finally:  # a release that comes back (start, or status of one found running) is relayed again
            with self._relays_lock:
                if self._relays.get(release_id) is stopped:
                    del self._relays[release_id]

    def _follow_pods(self, space_id: str, label: str, stopped: threading.Event, since: str | None) -> None:
        """Until the release is stopped and its pods are gone, or it has had no pod for RELAY_IDLE seconds."""
        last: dict[str, str] = {}  # pod uid → the time of the last line copied (the container runtime's clock)
        done: set[tuple[str, ...]] = set()  # (pod uid, restart count): every line of that container is copied
        seen = time.monotonic()
        while True:
            if space_id in self._gone:
                return
            try:
                pods = self.cluster.core.list_namespaced_pod(self.namespace, label_selector=label).items
                if pods:
                    seen = time.monotonic()
                elif stopped.is_set() or time.monotonic() - seen > RELAY_IDLE:
                    return
                for pod in sorted(pods, key=lambda p: p.metadata.creation_timestamp):
                    self._copy_init(space_id, pod, last, done, since)
                    app = next((c for c in pod.status.container_statuses or [] if c.name == "app"), None)
                    if app is None:
                        continue
                    if app.state.waiting and app.last_state and app.last_state.terminated:
                        # waiting to restart after an exit (CrashLoopBackOff): the ended container's lines, in
                        # case it started and ended between two looks
                        instance = (pod.metadata.uid, str(-app.restart_count))
                        if instance not in done:
                            done.add(instance)
                            self._copy(space_id, pod.metadata.name, pod.metadata.uid, last, since, previous=True)
                        continue
                    if not (app.state.running or app.state.terminated):
                        continue
                    instance = (pod.metadata.uid, str(app.restart_count))
                    if instance in done:
                        continue
                    if app.state.terminated:  # it wrote its last line: this read takes all of them
                        done.add(instance)
                    self._copy(space_id, pod.metadata.name, pod.metadata.uid, last, since)
            except Exception as e:  # the API server away, the pod gone: look again
                log.debug("relaying the logs of %s: %s", label, e)
            time.sleep(0.5)

    def _copy_init(self, space_id: str, pod: Any, last: dict[str, str], done: set[tuple[str, ...]],
                   since: str | None) -> None:  # fmt: skip
        """The output of the pod's init containers (fetch: the code; install: pip), each run once it has ended
        (one that failed and waits to run again: the run that failed), so that the run log says how the pod got
        its code and packages, and why it did not when it could not."""
        for ic in pod.status.init_container_statuses or []:
            if ic.state.terminated:
                previous = False
            elif ic.state.waiting and ic.last_state and ic.last_state.terminated:
                previous = True
            else:
                continue
            instance = (pod.metadata.uid, ic.name, str(ic.restart_count), str(previous))
            if instance in done:
                continue
            done.add(instance)
            self._copy(space_id, pod.metadata.name, pod.metadata.uid, last, since, previous=previous,
                       container=ic.name, follow=False)  # fmt: skip

    def _copy(self, space_id: str, pod: str, uid: str, last: dict[str, str], since: str | None,
              previous: bool = False, container: str = "app", follow: bool = True) -> None:  # fmt: skip
        """Follow one pod's container (the app's, unless told) until it ends (``previous``: read the one that ended
        before it; not ``follow``: what it wrote so far), copying the lines newer than those copied before."""
        resp = self.cluster.core.read_namespaced_pod_log(pod, self.namespace, container=container,
                                                         follow=follow and not previous, previous=previous,
                                                         timestamps=True, _preload_content=False)  # fmt: skip
        key = uid if container == "app" else f"{uid}/{container}"
        try:
            # copied before: up to this time (within one read every line is new; stdout's and stderr's lines are
            # timed apart, so their times are not always in the order the log has them)
            copied, rest = last.get(key, since or ""), b""
            for chunk in resp.stream(65536):
                *lines, rest = (rest + chunk).split(b"\n")
                for raw in lines:
                    stamp_, _, text = raw.decode(errors="replace").partition(" ")
                    at = _log_time(stamp_)
                    if at <= copied:
                        continue
                    last[key] = max(at, last.get(key, ""))
                    self._log(space_id, text)
        finally:
            resp.release_conn()

    def _log(self, space_id: str, line: str) -> None:
        if self.run_log is None:
            return
        with self._log_lock:
            if space_id in self._gone:
                return
            path = self.run_log(space_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(f"{stamp()} {line}\n")


def _log_time(stamp_: str) -> str:
    """An RFC 3339 time as the kubelet writes it (the fraction's trailing zeros dropped) made comparable as text."""
    head, _, frac = stamp_.rstrip("Z").partition(".")
    return f"{head}.{frac.ljust(9, '0')}"


def _job_failed(job: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Failed" and c.get("status") == "True" for c in _get(job, "status", "conditions") or [])


def _exit_code(pods: list[dict[str, Any]]) -> int | None:
    """The exit code of the (newest) pod's app container: its terminated state, else its last one; when the app
    never ran, that of the init container that failed (the firewall that could not install its rules, a fetch the
    Hub refused)."""
    pods = sorted(pods, key=lambda p: _get(p, "metadata", "creationTimestamp") or "")
    for pod in reversed(pods):
        for kind in ("containerStatuses", "initContainerStatuses"):
            for cs in _get(pod, "status", kind) or []:
                term = _get(cs, "state", "terminated") or _get(cs, "lastState", "terminated")
                if term and term.get("exitCode") is not None and (kind == "containerStatuses" or term["exitCode"]):
                    return int(term["exitCode"])
    return None


class _Reads:
    """What a status reads of the cluster, as it needs it: each call an API request (one `status`)."""

    def __init__(self, backend: KubernetesBackend) -> None:
        self.b = backend

    def task_job(self, release_id: str) -> dict[str, Any] | None:
        return self.b._read_job(f"task-{release_id}")

    def deployments(self) -> list[dict[str, Any]]:
        return self.b._deployments()

    def capacity(self) -> Any:
        return self.b._call(read_nodes, self.b.cluster.core, self.b.options.accelerator_label)

    def pods(self, space_id: str) -> list[dict[str, Any]]:
        return self.b._call(self.b.cluster.pods, space_id)  # type: ignore[no-any-return]

    def job_pods(self, job_name: str, space_id: str) -> list[dict[str, Any]]:
        return self.b._job_pods(job_name)

    def pod_events(self, pod: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind=Pod,involvedObject.name={pod}"
        items = self.b._call(self.b.cluster.core.list_namespaced_event, self.b.namespace, field_selector=selector)
        return [self.b._json(e) for e in items.items]


class _RoundReads(_Reads):
    """The same reads for many releases at once (`statuses`, `list_instances`): each kind of object is listed once,
    when first needed, and looked up after (a round of the crash monitor over N running releases makes at most five
    requests, not ~5 N)."""

    def __init__(self, backend: KubernetesBackend) -> None:
        super().__init__(backend)
        self._jobs: dict[str, dict[str, Any]] | None = None
        self._deployments: list[dict[str, Any]] | None = None
        self._capacity: Any = None
        self._pods: dict[str, list[dict[str, Any]]] | None = None
        self._events: dict[str, list[dict[str, Any]]] | None = None

    def task_job(self, release_id: str) -> dict[str, Any] | None:
        if self._jobs is None:
            b = self.b
            items = b._call(b.cluster.batch.list_namespaced_job, b.namespace, label_selector=f"{LABEL_KIND}=task")
            self._jobs = {j["metadata"]["name"]: j for j in map(b._json, items.items)}
        return self._jobs.get(f"task-{release_id}")

    def deployments(self) -> list[dict[str, Any]]:
        if self._deployments is None:
            self._deployments = self.b._deployments()
        return self._deployments

    def capacity(self) -> Any:
        if self._capacity is None:
            self._capacity = super().capacity()
        return self._capacity

    def pods(self, space_id: str) -> list[dict[str, Any]]:
        if self._pods is None:
            b, grouped = self.b, defaultdict(list)
            items = b._call(b.cluster.core.list_namespaced_pod, b.namespace, label_selector=m.LABEL_SPACE)
            for pod in map(b._json, items.items):
                grouped[pod["metadata"]["labels"][m.LABEL_SPACE]].append(pod)
            self._pods = dict(grouped)
        return self._pods.get(space_id, [])

    def job_pods(self, job_name: str, space_id: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(space_id) if _get(p, "metadata", "labels", "job-name") == job_name]

    def pod_events(self, pod: str) -> list[dict[str, Any]]:
        if self._events is None:
            b, grouped = self.b, defaultdict(list)
            items = b._call(b.cluster.core.list_namespaced_event, b.namespace, field_selector="involvedObject.kind=Pod")
            for event in map(b._json, items.items):
                grouped[_get(event, "involvedObject", "name")].append(event)
            self._events = dict(grouped)
        return self._events.get(pod, [])
