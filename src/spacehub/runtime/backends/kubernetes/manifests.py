"""A Space's release as Kubernetes objects: pure functions from typed inputs to manifests (plain dicts, as the API
server takes them), so that what a Space becomes on a cluster can be read, diffed and tested without one.

Per Space, in the operator's namespace, named after the Space's database id (stable across renames):

    Deployment     space-<id>            replicas 1, or 0 while sleeping or paused; the app container
    Service        space-<id>            ClusterIP, port 80 → the app port: what the Hub's proxy talks to
    Secret         space-<id>-secrets    the Space's secrets (env by name: values live only here, never a ConfigMap)
    ConfigMap      space-<id>-variables  the Space's variables (env by name)
    PVC            space-<id>-data       the storage tier (size = tier), mounted at /data
    NetworkPolicy  space-<id>            in: only the Hub; out: the Hub, DNS and, by setting, the internet; never
                                         another Space (the private ranges and the cluster's own are excluded);
                                         each pod's own firewall says the same in its network namespace

Every object carries the labels ``spacehub.dev/space`` (selects everything of a Space, e.g. to delete it),
``spacehub.dev/commit`` and ``spacehub.dev/release``, and annotations with the repo's name and the flavor. The
Deployment selects pods by the Space label only (a selector is immutable); the release label and annotation on the
pod template change with every release, which is what rolls the pods out: secret and variable values are not in the
Deployment, but the release id digests them (runtime/desired.py), so a changed value restarts the Space as on HF.

Pods are held in as on the local backend: uid/gid 1000, runAsNonRoot, no privilege escalation, every capability
dropped, the runtime's default seccomp profile (``securityContext.seccompProfile``, GA in 1.19), no service-account
token, no service links (other Services' addresses as env). With ``ClusterOptions.pod_firewall`` (the default) every
pod's first init container, ``firewall``, installs the NetworkPolicy's rules in the pod's own network namespace
(firewall.py), so that they hold whatever the CNI: SpaceHub's own program, as root with NET_ADMIN alone, before any
code of the Space is even fetched.

Only APIs already in Kubernetes 1.20: core/v1, apps/v1, networking.k8s.io/v1.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spacehub.flavors import Flavor
from spacehub.runtime.backends.kubernetes import firewall, quantities

Manifest = dict[str, Any]

MANAGED_BY = "spacehub"
LABEL_SPACE = "spacehub.dev/space"
LABEL_COMMIT = "spacehub.dev/commit"
LABEL_RELEASE = "spacehub.dev/release"
LABEL_KIND = "spacehub.dev/kind"  # build | task: the Jobs of a Space (its app's pods have none)
ANNOTATION_REPO = "spacehub.dev/repo"
ANNOTATION_FLAVOR = "spacehub.dev/flavor"
ANNOTATION_STATE = "spacehub.dev/state"  # running | sleeping | paused: why a Deployment has the replicas it has
ACCELERATOR_LABEL = "spacehub.dev/accelerator"  # the node label an operator sets to the GPU model, e.g. A10G
GPU_RESOURCE = "nvidia.com/gpu"
APP_UID = 1000
DATA_PATH = "/data"
CODE_PATH = "/code"
# Packages live in folders named site-packages, as in any Python install: some packages tell an install from a source
# checkout by that name (streamlit turns on its development mode, which refuses server.port, when its own file is not
# under a site-packages or dist-packages folder).
ENV_PATH = "/code/.spacehub/site-packages"
TOKEN_PATH = "/var/run/spacehub/fetch"
SERVICE_PORT = 80

# Where a Space may never go even when it may reach the internet: private and link-local ranges (the cloud's
# metadata service is 169.254.169.254), carrier-grade NAT, loopback; the cluster's own ranges come from the options.
PRIVATE_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8")
PRIVATE_V6 = ("fc00::/7", "fe80::/10", "::1/128")

# The fetch init container's program: the standard library only (any image with Python 3 runs it), the Hub's own
# API as huggingface_hub uses it (the revision's file list, then each file's resolve URL), refusing any path that
# would leave /code. The token is read from a file, never from the environment or the command line.
FETCH_SCRIPT = """\
import json, os, pathlib, shutil, urllib.parse, urllib.request
hub, repo, rev = os.environ["HF_ENDPOINT"], os.environ["SPACEHUB_REPO"], os.environ["SPACEHUB_REVISION"]
token = pathlib.Path(os.environ["SPACEHUB_TOKEN_FILE"]).read_text().strip()
root = pathlib.Path(os.environ.get("SPACEHUB_CODE", "/code")).resolve()
def get(url):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    return urllib.request.urlopen(req, timeout=120)
with get(f"{hub}/api/spaces/{repo}/revision/{rev}") as r:
    files = [f["rfilename"] for f in json.load(r).get("siblings", [])]
for name in files:
    dest = (root / name).resolve()
    if root not in dest.parents:
        raise SystemExit(f"refusing to write {name!r} outside {root}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with get(f"{hub}/spaces/{repo}/resolve/{rev}/{urllib.parse.quote(name)}") as r, open(dest, "wb") as out:
        shutil.copyfileobj(r, out)
print(f"fetched {len(files)} files of {repo} at {rev[:7]}", flush=True)
"""
# The install init container's program: pre-requirements.txt first (as on HF), then the SDK's packages (given as
# arguments: ``sh -c INSTALL_SCRIPT install gradio==5.1 spaces``, never spliced into the program) with
# requirements.txt, in one resolve, into /code/.spacehub/site-packages (on the app's PYTHONPATH).
INSTALL_SCRIPT = (
    "set -e; cd /code; pip() { python3 -m pip install --disable-pip-version-check --target "
    + ENV_PATH
    + ' "$@"; }; if [ -f pre-requirements.txt ]; then pip -r pre-requirements.txt; fi; '
    'if [ -f requirements.txt ]; then set -- "$@" -r requirements.txt; fi; if [ $# -gt 0 ]; then pip "$@"; fi'
)

# ---- the environment cache (``ClusterOptions.env_cache``): one environment per key, built once by a build Job ----
# The key digests the image, the SDK's packages, pre-requirements.txt and requirements.txt (and every file of the
# Space when a requirement names a local path: then the environment holds the Space's own files), and the build id
# on a factory rebuild. Layout of the volume: ``<key>/site-packages`` (the packages) and ``<key>/.complete``
# (written last, before the folder is renamed into place: a folder named by a key is complete or empty, never half
# written); ``.tmp/<pod>`` is a build's scratch folder, ``.tmp/<pod>.key`` its key.
ENV_CACHE_PATH = "/opt/spacehub/env"  # a pod's own environment, read-only (subPath <key>)
NEW_ENV_PATH = "/opt/spacehub/new"  # the build's scratch folder (subPath .tmp/<pod>), the only part it may write
ENVS_ROOT = "/envs"  # the whole volume: in the build's prepare and publish containers only (no Space code runs there)
# own (uid 0 with CAP_CHOWN only: no DAC override, so it can do nothing else there): a new hostPath folder is
# root's; it becomes the app user's.
OWN_SCRIPT = "import os; r = os.environ['SPACEHUB_ENVS']; os.stat(r).st_uid == 1000 or os.chown(r, 1000, 1000)"
# prepare (as the app, before any code of the Space runs: pip runs setup.py): computes the key from the fetched
# files and makes the scratch folder. The install container cannot change the key: it mounts neither the volume's
# root nor the key file.
PREPARE_SCRIPT = """import hashlib, os, pathlib, re, sys
code = pathlib.Path(os.environ.get("SPACEHUB_CODE", "/code"))
root, pod = pathlib.Path(os.environ["SPACEHUB_ENVS"]), os.environ["POD_NAME"]
h = hashlib.sha256(b"layout 2\\0")  # 2: packages in <key>/site-packages (was <key>/site)
for part in (os.environ.get("SPACEHUB_ENV_SALT", ""), os.environ["SPACEHUB_IMAGE"], *sys.argv[1:]):
    h.update(part.encode() + b"\\0")
local = False
for name in ("pre-requirements.txt", "requirements.txt"):
    text = (code / name).read_bytes() if (code / name).is_file() else b""
    h.update(name.encode() + b"\\0" + hashlib.sha256(text).digest())
    for line in text.decode(errors="replace").splitlines():
        s = line.strip()
        local |= bool(re.match(r"(-e|--editable|-r|--requirement|-c|--constraint|[./~]|file:)", s)) or "file:" in s
if local:  # the environment holds the Space's own files: the key digests them all
    for f in sorted(p for p in code.rglob("*") if p.is_file() and ".spacehub" not in p.relative_to(code).parts):
        h.update(str(f.relative_to(code)).encode() + b"\\0" + hashlib.sha256(f.read_bytes()).digest())
key = h.hexdigest()[:32]
tmp = root / ".tmp"
tmp.mkdir(exist_ok=True)
(tmp / pod).mkdir()
(tmp / (pod + ".key")).write_text(key)
flag = code / ".spacehub"
flag.mkdir(exist_ok=True)
(root / ".used").mkdir(exist_ok=True)
(root / ".used" / key).touch()  # used now (before it is looked for: see envs.py, the garbage collection)
if (root / key / ".complete").is_file():
    (flag / "env-cached").write_text(key)
    print(f"environment {key}: in the cache, nothing to install", flush=True)
else:
    print(f"environment {key}: not in the cache, the build installs it", flush=True)
"""
# install in a build Job: the SDK's packages and requirements into the scratch folder, unless prepare found the key
BUILD_INSTALL_SCRIPT = (
    "set -e; cd /code; if [ -f .spacehub/env-cached ]; then exit 0; fi; "
    "pip() { python3 -m pip install --disable-pip-version-check --target " + NEW_ENV_PATH + '/site-packages "$@"; }; '
    "if [ -f pre-requirements.txt ]; then pip -r pre-requirements.txt; fi; "
    'if [ -f requirements.txt ]; then set -- "$@" -r requirements.txt; fi; if [ $# -gt 0 ]; then pip "$@"; fi; '
    "mkdir -p " + NEW_ENV_PATH + "/site-packages"
)
# publish (uid 1000, no code of the Space): the marker last, then one rename into place; a build of the same key
# that got there first wins and this one's scratch folder goes. Its key is its termination message.
PUBLISH_SCRIPT = (
    'set -e; cd "$SPACEHUB_ENVS/.tmp"; key=$(cat "$POD_NAME.key"); rm -f "$POD_NAME.key"; d="../$key"; '
    'if [ -f "$d/.complete" ]; then rm -rf "$POD_NAME"; echo "environment $key: in the cache"; '
    'elif [ ! -d "$POD_NAME/site-packages" ]; then rm -rf "$POD_NAME"; '  # found by prepare, collected since (envs.py)
    'echo "environment $key: gone from the cache meanwhile: the pods install their own"; '
    'else date -u +%FT%TZ > "$POD_NAME/.complete"; '
    'if mv -T "$POD_NAME" "$d" 2>/dev/null; then echo "environment $key: built once, kept in the cache"; '
    'else rm -rf "$POD_NAME"; [ -f "$d/.complete" ] || { echo "environment $key: cannot be kept" >&2; exit 1; }; '
    'echo "environment $key: another build kept it first"; fi; fi; printf %s "$key" > /dev/termination-log'
)
# install in a pod of a release whose build kept its environment: nothing to do when this node's cache has it
# (read-only at ENV_CACHE_PATH); otherwise (another node, without a shared volume) the install as before.
POD_INSTALL_SCRIPT = (
    'if [ -f "' + ENV_CACHE_PATH + '/.complete" ]; then echo "environment $SPACEHUB_ENV_KEY: from the cache, '
    'nothing to install"; exit 0; fi; echo "environment $SPACEHUB_ENV_KEY: not in this node\'s cache, installing"; '
    + INSTALL_SCRIPT
)

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
_OBJECT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,40}[a-z0-9])?$")  # so that "space-<id>-variables" stays ≤ 63
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Peer:
    """Who the Hub is, as a NetworkPolicy peer: addresses (``cidrs``), or pods (``pod_labels``, in the Spaces'
    namespace or in the namespaces ``namespace_labels`` select) when the Hub runs in the cluster."""

    cidrs: tuple[str, ...] = ()
    pod_labels: Mapping[str, str] | None = None
    namespace_labels: Mapping[str, str] | None = None

    def manifests(self) -> list[Manifest]:
        peers: list[Manifest] = [{"ipBlock": {"cidr": c}} for c in self.cidrs]
        if self.pod_labels is not None or self.namespace_labels is not None:
            peer: Manifest = {}
            if self.pod_labels is not None:
                peer["podSelector"] = {"matchLabels": dict(self.pod_labels)}
            if self.namespace_labels is not None:
                peer["namespaceSelector"] = {"matchLabels": dict(self.namespace_labels)}
            peers.append(peer)
        return peers


@dataclass(frozen=True)
class ClusterOptions:
    """The operator's choices, the same for every Space (the ``kubernetes`` settings group)."""

    namespace: str = "spacehub-spaces"
    hub: Peer = field(default_factory=Peer)
    hub_ports: tuple[int, ...] = ()  # the Hub's ports a Space may reach (empty: any port of the Hub)
    allow_internet: bool = False  # a Space may reach public addresses (never private ones, never another Space)
    cluster_cidrs: tuple[str, ...] = ()  # the pod and service ranges, also excluded from "the internet"
    dns_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})  # who resolves names
    accelerator_label: str = ACCELERATOR_LABEL
    storage_class: str | None = None  # None: the cluster's default StorageClass
    image_pull_policy: str = "IfNotPresent"
    termination_grace_seconds: int = 10  # apps that ignore SIGTERM would otherwise hold a sleeping Space for 30 s
    progress_deadline_seconds: int = 1800  # a release not Ready by then is a runtime error (the start timeout)
    # the volume that keeps Python environments, one per key (a volume source: ``{"hostPath": {...}}`` or
    # ``{"persistentVolumeClaim": {"claimName": ...}}``); None: every pod installs its own
    env_cache: Mapping[str, Any] | None = None
    # every pod holds itself in: a first init container installs the NetworkPolicy's rules in the pod's own network
    # namespace (firewall.py), whatever the CNI; off: the NetworkPolicy alone, enforced by the CNI if it can
    pod_firewall: bool = True
    firewall_image: str = firewall.FIREWALL_IMAGE  # sh, getent and iptables-nft-restore
    # the Hub as the pods reach it: with the Hub given by pod labels, the firewall lets through what its host resolves
    # to in the pod (the backend fills it in from its own hub_url)
    hub_url: str | None = None


@dataclass(frozen=True)
class CodeFetch:
    """How a pod gets its Space's code without a registry: an init container (``image``: any with Python 3, the
    standard library is enough) downloads the snapshot of ``repo`` at ``revision`` from the Hub's API into /code,
    with a token scoped to that Space, read from the Secret ``token_secret`` (key ``token``), mounted in that
    init container only: the app never sees it. Then, for Python Spaces, ``pip install --target`` of its SDK's
    packages (``packages``, e.g. gradio at the README's sdk_version) and its requirements into
    /code/.spacehub/site-packages (on the app's PYTHONPATH)."""

    repo: str  # owner/name
    revision: str  # the commit sha
    hub_url: str  # the Hub's URL as the cluster reaches it
    token_secret: str  # the Secret holding the scoped token (key "token")
    image: str
    install: bool = True  # install requirements.txt (Python Spaces)
    packages: tuple[str, ...] = ()  # the SDK's packages (pip requirement specifiers), installed with them
    env_key: str | None = None  # a pod's: the environment its build kept in the cache (None: it installs its own)
    env_build: bool = False  # a build Job's: it computes the key and keeps the environment in the cache
    env_salt: str = ""  # a factory rebuild: a key of its own (an environment built from nothing)

    def __post_init__(self) -> None:
        if self.env_key is not None and not re.fullmatch(r"[0-9a-f]{32}", self.env_key):
            raise ValueError(f"environment key {self.env_key!r} is not a key")
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", self.revision):
            raise ValueError(f"revision {self.revision!r} is not a commit sha")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", self.repo):
            raise ValueError(f"repo {self.repo!r} is not owner/name")
        if not re.fullmatch(r"https?://[^\s]+", self.hub_url):
            raise ValueError(f"hub url {self.hub_url!r} is not an http(s) URL")
        for package in self.packages:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\[\],-]*(?:[=<>!~]=?[A-Za-z0-9.*+!,<>=~-]+)?", package):
                raise ValueError(f"{package!r} is not a package requirement")


@dataclass(frozen=True)
class SpaceRelease:
    """One release of one Space, as the manifests need it. Secret values are not here: only their names."""

    space_id: str  # the repo's database id: names every object
    repo: str  # "owner/name" (an annotation: a slash is not allowed in a label value)
    commit: str
    release_id: str
    flavor: Flavor
    image: str
    app_port: int
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # the platform's own, not secret (SPACE_ID, PORT…)
    variables: tuple[str, ...] = ()  # names of the keys of the ConfigMap
    secrets: tuple[str, ...] = ()  # names of the keys of the Secret
    storage_bytes: int | None = None  # the storage tier's size; None: no persistent storage
    state: str = "running"  # running | sleeping | paused
    readiness_path: str | None = None  # an HTTP path that answers 200 when ready; None: the port accepts
    storage_name: str | None = None  # the storage's name (``<space id>-<key>``): its claim is ``data-<name>``
    code: CodeFetch | None = None  # the Space's code, fetched from the Hub into /code by an init container
    working_dir: str | None = None

    def __post_init__(self) -> None:
        if not _OBJECT_ID.match(self.space_id):
            raise ValueError(f"space id {self.space_id!r} cannot name Kubernetes objects")
        for name, value in (("commit", self.commit), ("release", self.release_id)):
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"{name} {value!r} is not a valid label value")
        if self.state not in ("running", "sleeping", "paused"):
            raise ValueError(f"state must be running, sleeping or paused, not {self.state!r}")
        if not 0 < self.app_port < 65536:
            raise ValueError(f"app port {self.app_port} is out of range")
        for key in (*self.env, *self.variables, *self.secrets):
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        clash = set(self.env) & set(self.variables) | set(self.env) & set(self.secrets)
        clash |= set(self.variables) & set(self.secrets)
        if clash:
            raise ValueError(f"names given twice (env, variables, secrets): {sorted(clash)}")
        if self.storage_bytes is not None and self.storage_bytes <= 0:
            raise ValueError("storage size must be positive")
        if self.storage_name is not None and not _OBJECT_ID.match(self.storage_name):
            raise ValueError(f"storage name {self.storage_name!r} cannot name a claim")


# ---- names and metadata ----------------------------------------------------------------------------------------
def name(space_id: str) -> str:
    return f"space-{space_id}"


def secret_name(space_id: str) -> str:
    return f"space-{space_id}-secrets"


def variables_name(space_id: str) -> str:
    return f"space-{space_id}-variables"


def claim_name(space_id: str, storage_name: str | None = None) -> str:
    """The claim of a Space's storage: named after the storage (``data-<name>``) when it has a name, which outlives
    the Space's releases and hardware changes."""
    return f"data-{storage_name}" if storage_name else f"space-{space_id}-data"


def fetch_secret_name(space_id: str) -> str:
    return f"space-{space_id}-fetch"


def selector(space_id: str) -> dict[str, str]:
    """The labels that select every object of a Space (and its pods)."""
    return {LABEL_SPACE: space_id}


def labels(r: SpaceRelease) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_SPACE: r.space_id,
        LABEL_COMMIT: r.commit,
        LABEL_RELEASE: r.release_id,
    }


def annotations(r: SpaceRelease) -> dict[str, str]:
    return {
        ANNOTATION_REPO: r.repo,
        LABEL_COMMIT: r.commit,
        LABEL_RELEASE: r.release_id,
        ANNOTATION_FLAVOR: r.flavor.name,
    }


def _metadata(r: SpaceRelease, object_name: str, opts: ClusterOptions) -> Manifest:
    return {"name": object_name, "namespace": opts.namespace, "labels": labels(r), "annotations": annotations(r)}


# ---- the objects -----------------------------------------------------------------------------------------------
def resources(flavor: Flavor) -> Manifest:
    """Requests = limits = the flavor (Guaranteed QoS: what a Space is sold is what it gets); GPUs as
    ``nvidia.com/gpu``, which Kubernetes only allows as limits (requests follow them)."""
    amounts = {"cpu": quantities.cpu(flavor.cpu), "memory": quantities.memory(flavor.memory_bytes)}
    limits = dict(amounts)
    if flavor.accelerator is not None:
        limits[GPU_RESOURCE] = str(flavor.accelerator.quantity)
    return {"requests": amounts, "limits": limits}


def _env(r: SpaceRelease) -> list[Manifest]:
    env: list[Manifest] = [{"name": k, "value": v} for k, v in sorted(r.env.items())]
    env += [
        {"name": k, "valueFrom": {"configMapKeyRef": {"name": variables_name(r.space_id), "key": k}}}
        for k in sorted(r.variables)
    ]
    env += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name(r.space_id), "key": k}}}
        for k in sorted(r.secrets)
    ]
    return env


def _probe(r: SpaceRelease) -> Manifest:
    check: Manifest = (
        {"httpGet": {"path": r.readiness_path, "port": "http"}} if r.readiness_path else {"tcpSocket": {"port": "http"}}
    )
    return {**check, "periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3, "successThreshold": 1}


def container(r: SpaceRelease, opts: ClusterOptions) -> Manifest:
    c: Manifest = {
        "name": "app",
        "image": r.image,
        "imagePullPolicy": opts.image_pull_policy,
        "ports": [{"name": "http", "containerPort": r.app_port, "protocol": "TCP"}],
        "env": _env(r),
        "resources": resources(r.flavor),
        "readinessProbe": _probe(r),
        "securityContext": held_in(),
    }
    if r.command:
        c["command"] = list(r.command)
    if r.args:
        c["args"] = list(r.args)
    mounts: list[Manifest] = []
    if r.storage_bytes is not None:
        mounts.append({"name": "data", "mountPath": DATA_PATH})
    if r.code is not None:
        mounts.append({"name": "code", "mountPath": CODE_PATH})
        path = ENV_PATH
        if _cached_env(r.code, opts):
            mounts.append(_env_mount(r.code))
            path = f"{ENV_CACHE_PATH}/site-packages:{ENV_PATH}"
        c["env"] = [*c["env"], {"name": "PYTHONPATH", "value": path}]
    if mounts:
        c["volumeMounts"] = mounts
    if r.working_dir:
        c["workingDir"] = r.working_dir
    return c


def pod_security() -> Manifest:
    """A pod's own security context: the app user, never root, the container runtime's default seccomp profile."""
    return {
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "fsGroup": APP_UID,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def held_in() -> Manifest:
    """A container's security context, as the app user with no capability and no way to gain one."""
    return {
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _cached_env(code: CodeFetch, opts: ClusterOptions) -> bool:
    """The pods of this release read their environment from the cache."""
    return bool(opts.env_cache is not None and code.install and code.env_key and not code.env_build)


def _env_mount(code: CodeFetch) -> Manifest:
    """The release's own environment in the cache, read-only: never the volume's root, never another key."""
    return {"name": "envs", "mountPath": ENV_CACHE_PATH, "subPath": code.env_key, "readOnly": True}


def _pod_name_env() -> Manifest:
    return {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


def _build_env_containers(code: CodeFetch, amounts: Manifest) -> tuple[Manifest, ...]:
    """A build Job's own, prepare, install and publish containers (see PREPARE_SCRIPT): only install runs code of
    the Space (pip), and it mounts only its scratch folder of the volume."""
    env = [_pod_name_env(), {"name": "SPACEHUB_ENVS", "value": ENVS_ROOT}]
    own: Manifest = {
        "name": "own",
        "image": code.image,
        "command": ["python3", "-c", OWN_SCRIPT],
        "env": env[1:],
        "resources": amounts,
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
        },
        "volumeMounts": [{"name": "envs", "mountPath": ENVS_ROOT}],
    }
    prepare: Manifest = {
        "name": "prepare",
        "image": code.image,
        "command": ["python3", "-c", PREPARE_SCRIPT, *code.packages],
        "env": [
            *env,
            {"name": "SPACEHUB_IMAGE", "value": code.image},
            {"name": "SPACEHUB_ENV_SALT", "value": code.env_salt},
        ],
        "resources": amounts,
        "securityContext": held_in(),
        "volumeMounts": [{"name": "code", "mountPath": CODE_PATH}, {"name": "envs", "mountPath": ENVS_ROOT}],
    }
    install: Manifest = {
        "name": "install",
        "image": code.image,
        "command": ["sh", "-c", BUILD_INSTALL_SCRIPT, "install", *code.packages],
        "env": [_pod_name_env(), {"name": "HOME", "value": "/tmp"}, {"name": "PIP_NO_CACHE_DIR", "value": "1"}],
        "resources": amounts,
        "securityContext": held_in(),
        "volumeMounts": [
            {"name": "code", "mountPath": CODE_PATH},
            {"name": "envs", "mountPath": NEW_ENV_PATH, "subPathExpr": ".tmp/$(POD_NAME)"},
        ],
    }
    publish: Manifest = {
        "name": "publish",
        "image": code.image,
        "command": ["sh", "-c", PUBLISH_SCRIPT],
        "env": env,
        "resources": amounts,
        "securityContext": held_in(),
        "volumeMounts": [{"name": "envs", "mountPath": ENVS_ROOT}],
    }
    return own, prepare, install, publish


def fetch_containers(code: CodeFetch, flavor: Flavor, opts: ClusterOptions | None = None) -> list[Manifest]:
    """The init containers that put the Space's code in /code: ``fetch`` (the only container that mounts the
    token), then ``install`` (requirements, without any token). With the environment cache: a build Job's
    ``prepare``, ``install`` and ``publish`` keep the environment in it; a pod's ``install`` skips when its
    environment is there."""
    env = [
        {"name": "SPACEHUB_REPO", "value": code.repo},
        {"name": "SPACEHUB_REVISION", "value": code.revision},
        {"name": "HF_ENDPOINT", "value": code.hub_url.rstrip("/")},
        {"name": "SPACEHUB_TOKEN_FILE", "value": f"{TOKEN_PATH}/token"},
    ]
    amounts = resources(flavor)
    amounts["limits"].pop(GPU_RESOURCE, None)  # fetching needs no GPU (and init containers would hold one)
    fetch: Manifest = {
        "name": "fetch",
        "image": code.image,
        "command": ["python3", "-c", FETCH_SCRIPT],
        "env": env,
        "resources": amounts,
        "securityContext": held_in(),
        "volumeMounts": [
            {"name": "code", "mountPath": CODE_PATH},
            {"name": "fetch-token", "mountPath": TOKEN_PATH, "readOnly": True},
        ],
    }
    out = [fetch]
    cache = opts is not None and opts.env_cache is not None
    if code.install and code.env_build and cache:
        out.extend(_build_env_containers(code, amounts))
    elif code.install and cache and code.env_key:
        out.append(
            {
                "name": "install",
                "image": code.image,
                "command": ["sh", "-c", POD_INSTALL_SCRIPT, "install", *code.packages],
                "env": [
                    {"name": "HOME", "value": "/tmp"},
                    {"name": "PIP_NO_CACHE_DIR", "value": "1"},
                    {"name": "SPACEHUB_ENV_KEY", "value": code.env_key},
                ],
                "resources": amounts,
                "securityContext": held_in(),
                "volumeMounts": [{"name": "code", "mountPath": CODE_PATH}, _env_mount(code)],
            }
        )
    elif code.install:
        out.append(
            {
                "name": "install",
                "image": code.image,
                "command": ["sh", "-c", INSTALL_SCRIPT, "install", *code.packages],
                "env": [{"name": "HOME", "value": "/tmp"}, {"name": "PIP_NO_CACHE_DIR", "value": "1"}],
                "resources": amounts,
                "securityContext": held_in(),
                "volumeMounts": [{"name": "code", "mountPath": CODE_PATH}],
            }
        )
    return out


def _code_volumes(r: SpaceRelease, opts: ClusterOptions) -> list[Manifest]:
    if r.code is None:
        return []
    volumes: list[Manifest] = [
        {"name": "code", "emptyDir": {}},
        # 0400, owned by the pod's fsGroup: readable by uid 1000 in the fetch container only (the only mount)
        {"name": "fetch-token", "secret": {"secretName": r.code.token_secret, "defaultMode": 0o440}},
    ]
    if opts.env_cache is not None and r.code.install and (r.code.env_build or r.code.env_key):
        volumes.append({"name": "envs", **dict(opts.env_cache)})
    return volumes


def firewall_policy(r: SpaceRelease, opts: ClusterOptions, role: firewall.Role = "app") -> firewall.Policy:
    """What a pod of ``r`` may do on the network, by its ``role``: the NetworkPolicy's promises (`network_policy`)
    for the app ("app": the app port in) and a task ("task": nothing in); a build ("build": nothing in) also reaches
    public addresses whatever ``allow_internet`` says, since its ``pip install`` reaches the package index, but never
    another pod or the node (firewall.py)."""
    by_name = opts.hub.pod_labels is not None or opts.hub.namespace_labels is not None
    return firewall.Policy(
        hub_cidrs=opts.hub.cidrs,
        hub_by_name=by_name,
        hub_ports=opts.hub_ports,
        internet=opts.allow_internet or role == "build",
        blocked=opts.cluster_cidrs,
        app_port=r.app_port if role == "app" else None,
        app_port_open=by_name,
    )


def _hub_host(opts: ClusterOptions) -> str:
    """The host of the Hub's URL, which the firewall resolves in the pod. Raises: ValueError (none given)."""
    host = urllib.parse.urlsplit(opts.hub_url or "").hostname
    if not host or not re.fullmatch(r"[A-Za-z0-9.:-]+", host):
        raise ValueError(f"the Hub is given by pod labels: the firewall needs its URL (hub url {opts.hub_url!r})")
    return host


def firewall_container(r: SpaceRelease, opts: ClusterOptions, role: firewall.Role = "app") -> Manifest:
    """The first init container: SpaceHub's firewall program (firewall.PROGRAM, never the Space's code, which is not
    even fetched yet) installs the pod's rules in its network namespace. Root with NET_ADMIN alone (nf_tables needs
    no NET_RAW), a read-only root file system, no volume; the rules are its environment, with the node's address from
    the downward API. It fails, and the pod does not start, when the rules cannot be installed; its message (or its
    log's tail) is the termination message health.py reads."""
    policy = firewall_policy(r, opts, role)
    amounts = resources(r.flavor)
    amounts["limits"].pop(GPU_RESOURCE, None)  # init containers would hold the GPU too
    env: list[Manifest] = [
        {"name": "SPACEHUB_RULES_V4", "value": firewall.template(policy, 4)},
        {"name": "SPACEHUB_RULES_V6", "value": firewall.template(policy, 6)},
        {"name": "SPACEHUB_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "SPACEHUB_FIREWALL_SUMMARY", "value": firewall.summary(policy)},
    ]
    if policy.hub_by_name:
        env.append({"name": "SPACEHUB_HUB_HOST", "value": _hub_host(opts)})
    return {
        "name": "firewall",
        "image": opts.firewall_image,
        "imagePullPolicy": opts.image_pull_policy,
        "command": ["sh", "-c", firewall.PROGRAM, "firewall"],
        "env": env,
        "resources": amounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
        },
    }


def pod_spec(r: SpaceRelease, opts: ClusterOptions, role: firewall.Role = "app") -> Manifest:
    """The pod of ``r``: the app's Deployment's ("app"), a task's or a build's Job's (``role``: its firewall rules)."""
    spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": opts.termination_grace_seconds,
        "securityContext": pod_security(),
        "containers": [container(r, opts)],
    }
    inits = [firewall_container(r, opts, role)] if opts.pod_firewall else []
    if r.code is not None:
        inits += fetch_containers(r.code, r.flavor, opts)
    if inits:
        spec["initContainers"] = inits
    acc = r.flavor.accelerator
    if acc is not None:
        spec["nodeSelector"] = {opts.accelerator_label: acc.model}
        # GPU nodes are usually tainted so that only pods asking for a GPU land there
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    volumes = _code_volumes(r, opts)
    if r.storage_bytes is not None:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim_name(r.space_id, r.storage_name)}})
    if volumes:
        spec["volumes"] = volumes
    return spec


def replicas(r: SpaceRelease) -> int:
    return 1 if r.state == "running" else 0


def strategy(r: SpaceRelease) -> Manifest:
    """A rolling update that keeps the old pod until the new one is Ready (zero downtime), except where two pods
    cannot coexist: a Space with storage (one writer of /data; a ReadWriteOnce claim binds to one node) or a GPU
    (the cluster may have just the one): those are replaced (Recreate), as HF restarts them."""
    if r.storage_bytes is not None or r.flavor.accelerator is not None:
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def deployment(r: SpaceRelease, opts: ClusterOptions) -> Manifest:
    meta = _metadata(r, name(r.space_id), opts)
    meta["annotations"][ANNOTATION_STATE] = r.state
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas(r),
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": opts.progress_deadline_seconds,
            "strategy": strategy(r),
            "selector": {"matchLabels": selector(r.space_id)},
            "template": {
                "metadata": {"labels": labels(r), "annotations": annotations(r)},
                "spec": pod_spec(r, opts),
            },
        },
    }


def service(r: SpaceRelease, opts: ClusterOptions) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(r, name(r.space_id), opts),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(r.space_id),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def secret(r: SpaceRelease, values: Mapping[str, str], opts: ClusterOptions) -> Manifest:
    """The Secret holding the values of ``r.secrets`` (exactly those keys). Raises: ValueError (a key missing or
    extra, so that a Deployment never names a key the Secret lacks)."""
    if set(values) != set(r.secrets):
        raise ValueError(f"secret values for {sorted(values)} but the release names {sorted(r.secrets)}")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(r, secret_name(r.space_id), opts),
        "stringData": dict(values),
    }


def fetch_secret(r: SpaceRelease, token: str, opts: ClusterOptions) -> Manifest:
    """The Secret with the token the fetch init container uses: scoped to this Space, read only by that container."""
    if r.code is None:
        raise ValueError("the release fetches no code")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(r, r.code.token_secret, opts),
        "stringData": {"token": token},
    }


def config_map(r: SpaceRelease, values: Mapping[str, str], opts: ClusterOptions) -> Manifest:
    """The ConfigMap holding the values of ``r.variables`` (exactly those keys). Raises: ValueError."""
    if set(values) != set(r.variables):
        raise ValueError(f"variable values for {sorted(values)} but the release names {sorted(r.variables)}")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(r, variables_name(r.space_id), opts),
        "data": dict(values),
    }


def claim(r: SpaceRelease, opts: ClusterOptions) -> Manifest | None:
    """The storage tier's PersistentVolumeClaim, or None without storage. Growing it is `objects`' job (a claim is
    never shrunk)."""
    if r.storage_bytes is None:
        return None
    spec: Manifest = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": str(r.storage_bytes)}}}
    if opts.storage_class is not None:
        spec["storageClassName"] = opts.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(r, claim_name(r.space_id, r.storage_name), opts),
        "spec": spec,
    }


def network_policy(r: SpaceRelease, opts: ClusterOptions) -> Manifest:
    """In: the Hub only, to the app port. Out: the Hub, DNS, and with ``allow_internet`` public addresses. Other
    Spaces are pods of the cluster, so they are never a peer: not selected here, and inside ``cluster_cidrs`` and
    the private ranges that the internet rule excludes. It selects the Space's pods except its builds', which have
    a policy of their own (`build_network_policy`): a pod selected by two policies gets the union of their rules,
    and a build must reach the package index whatever ``allow_internet`` says."""
    egress = _egress(opts, internet=opts.allow_internet)
    hub = opts.hub.manifests()
    ingress = [{"from": hub, "ports": [{"protocol": "TCP", "port": r.app_port}]}] if hub else []
    not_builds = [{"key": LABEL_KIND, "operator": "NotIn", "values": ["build"]}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(r, name(r.space_id), opts),
        "spec": {
            "podSelector": {"matchLabels": selector(r.space_id), "matchExpressions": not_builds},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def build_network_policy(r: SpaceRelease, opts: ClusterOptions) -> Manifest:
    """The Space's build Jobs' pods: nothing in; out, the Hub (the code), DNS and public addresses (the package
    index), never a private one or another Space (the pods' own firewall gives builds the same rules)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(r, name(r.space_id) + "-build", opts),
        "spec": {
            "podSelector": {"matchLabels": {**selector(r.space_id), LABEL_KIND: "build"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": _egress(opts, internet=True),
        },
    }


def _egress(opts: ClusterOptions, internet: bool) -> list[Manifest]:
    hub = opts.hub.manifests()
    hub_egress: Manifest = {"to": hub}
    if opts.hub_ports:
        hub_egress["ports"] = [{"protocol": "TCP", "port": p} for p in opts.hub_ports]
    egress: list[Manifest] = [hub_egress] if hub else []
    egress.append(
        {
            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": dict(opts.dns_labels)}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    )
    if internet:
        v4 = [c for c in opts.cluster_cidrs if ":" not in c]
        v6 = [c for c in opts.cluster_cidrs if ":" in c]
        egress.append(
            {
                "to": [
                    {"ipBlock": {"cidr": "0.0.0.0/0", "except": [*PRIVATE_V4, *v4]}},
                    {"ipBlock": {"cidr": "::/0", "except": [*PRIVATE_V6, *v6]}},
                ]
            }
        )
    return egress


def release_service_name(space_id: str, release_id: str) -> str:
    return f"space-{space_id}-{release_id}"


def release_service(r: SpaceRelease, opts: ClusterOptions) -> Manifest:
    """A Service for one release's pods only: what the Hub probes and routes to while it switches releases (the
    Space's Service selects every pod of the Space, so a new release's probe would be answered by the old one)."""
    svc = service(r, opts)
    svc["metadata"]["name"] = release_service_name(r.space_id, r.release_id)
    svc["spec"]["selector"] = {**selector(r.space_id), LABEL_RELEASE: r.release_id}
    return svc


def job(r: SpaceRelease, opts: ClusterOptions, job_name: str, deadline_seconds: int | None = None,
        role: firewall.Role = "task") -> Manifest:  # fmt: skip
    """A run-to-exit workload (a task, or a build: ``role``): the release's pod, never restarted (``backoffLimit``
    0, ``restartPolicy: Never``), without a port or a readiness probe; its exit code is its result."""
    spec = pod_spec(r, opts, role)
    spec["restartPolicy"] = "Never"
    for c in spec["containers"]:
        c.pop("ports", None)
        c.pop("readinessProbe", None)
    meta = _metadata(r, job_name, opts)
    job_spec: Manifest = {
        "backoffLimit": 0,
        "completions": 1,
        "parallelism": 1,
        "template": {"metadata": {"labels": labels(r), "annotations": annotations(r)}, "spec": spec},
    }
    if deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}


def space_objects(
    r: SpaceRelease, opts: ClusterOptions, secret_values: Mapping[str, str], variable_values: Mapping[str, str]
) -> list[Manifest]:
    """Every object of the release, in the order to apply them: what the pods refer to first, the Deployment last
    (so that its pods never wait for a missing Secret, ConfigMap or claim). Raises: ValueError (values that do not
    match the names in ``r``)."""
    objects = [network_policy(r, opts), secret(r, secret_values, opts), config_map(r, variable_values, opts)]
    pvc = claim(r, opts)
    if pvc is not None:
        objects.append(pvc)
    return [*objects, service(r, opts), deployment(r, opts)]
