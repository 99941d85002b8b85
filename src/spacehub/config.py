"""Settings: the one place SpaceHub reads its environment (prefix ``SPACEHUB_``, nested groups with ``__``).

Every field is documented in docs/settings.md (tests/test_docs.py enforces it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    access_log: bool = Field(
        default=False, description="Log every request (uvicorn's access log; it doubles the proxy's cost per request)."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients use (HF_ENDPOINT). Defaults to the URL of each incoming request.",
    )
    list_page_size: int = Field(
        default=1000, ge=1, description="Repos per page of list_models/list_datasets/list_spaces (Link: rel=next)."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="HTTP worker processes. 1: one process serves HTTP and runs the runtime. Above 1: a controller "
        "process runs the runtime and that many workers serve the Hub, git and the Space proxy on the one port "
        "(embedded proxy only; the runtime's backend must not be 'none').",
    )


class DatabaseSettings(BaseModel):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///{data_dir}/spacehub.db")


class StorageSettings(BaseModel):
    max_request_bytes: int = Field(default=8 * 1024**3, description="Largest request body accepted (commit, LFS PUT).")
    lfs_threshold_bytes: int = Field(
        default=10 * 1024**2,
        description="Files larger than this are stored as LFS objects even when uploaded inline, as the Hub does.",
    )
    lfs_url_ttl_seconds: int = Field(default=3600, description="Lifetime of the signed LFS upload URLs.")


# Persistent storage tiers as HF sold them (spaces-platform.md §2.1.7), in bytes; small < medium < large.
STORAGE_TIERS = {"small": 20 * 10**9, "medium": 150 * 10**9, "large": 10**12}


class RuntimeSettings(BaseModel):
    spaces_domain: str = Field(default="localhost", description="Spaces are served at {subdomain}.{spaces_domain}.")
    backend: Literal["local", "kubernetes", "fake", "none"] = Field(
        default="local",
        description="What runs Spaces: local processes, a Kubernetes cluster (the kubernetes group), an in-memory "
        "fake (tests), or nothing (a Hub without runtime).",
    )
    reconcile_interval: float = Field(
        default=10800.0,
        description="Seconds over which every Space gets one healing pass, spread evenly (events and each Space's "
        "own timers drive everything else).",
    )
    lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Term of the runtime's lease: one process runs the runtime; another on the same database waits "
        "and takes over within this long after it stops or dies.",
    )
    deep_sleep_after: float = Field(
        default=3600.0, description="Seconds a Space stays frozen (light sleep) before its process is stopped."
    )
    flavors_file: Path | None = Field(default=None, description="A TOML file replacing the hardware flavor catalog.")
    devices_file: Path | None = Field(
        default=None,
        description="A TOML file declaring this machine's accelerators ([[gpu]] id, model, memory_gb); replaces "
        "detection.",
    )
    devices: list[dict[str, Any]] | None = Field(
        default=None,
        description='The same inventory inline, as JSON: [{"id": "0", "model": "Tesla T4", "memory_gb": 16}].',
    )
    detect_gpus: bool = Field(default=True, description="Find NVIDIA GPUs with nvidia-smi when no inventory is given.")
    resource_policy: Literal["cap", "strict"] = Field(
        default="cap",
        description="A flavor larger than this machine: cap its CPU/memory limits to the machine (cap) or refuse "
        "it (strict).",
    )
    custom_sleep_on_free_hardware: bool = Field(
        default=False, description="Allow a custom sleep time on free hardware (HF does not: 48 h, fixed)."
    )
    min_available_memory_mb: int = Field(
        default=512,
        description="Below this much available memory (/proc/meminfo), frozen Spaces are stopped early; 0: never.",
    )
    use_cgroups: bool = Field(default=True, description="Enforce CPU/memory/pids limits with cgroups where possible.")
    uv_cache_dir: Path | None = Field(
        default=None,
        description="uv's package cache for Space environments (default {data_dir}/runtime/uv-cache; keep it on the "
        "same filesystem as the data dir: environments hard-link from it).",
    )
    storage_tiers: dict[str, int] = Field(
        default_factory=lambda: dict(STORAGE_TIERS),
        description="Bytes of each persistent storage tier (small, medium, large); JSON, e.g. to test with tiny ones.",
    )
    storage_enforcement: Literal["auto", "image", "monitor"] = Field(
        default="auto",
        description="How a tier's size is enforced: a loop-mounted ext4 image per Space (image), a usage monitor "
        "that stops the Space when it is over (monitor), or image where this machine allows it (auto).",
    )
    sandbox: Literal["on", "off"] = Field(
        default="on",
        description="Run every Space's processes (builds included) in a sandbox (bubblewrap: own user, PID, mount "
        "and network namespaces, no capabilities, seccomp). Where it cannot be set up, Spaces do not start and say "
        'why; "off" runs them unconfined (only for code you trust: a Space can then read every secret on the '
        "machine), and every Space's runtime says so.",
    )
    outbound: Literal["open", "hub-only", "none"] = Field(
        default="open",
        description="Network a sandboxed Space may reach beyond its proxy: anything but this host's loopback (open, "
        "as on HF; needs slirp4netns), only the Hub API at its public URL (hub-only), or nothing (none).",
    )
    build_user: str = Field(
        default="spacehub-builder",
        description="When SpaceHub runs as root, docker Spaces' images are built by rootless podman as this "
        "unprivileged user (made by scripts/setup-build-user), so that a Dockerfile's RUN steps never run as root.",
    )
    storage_check_interval: float = Field(
        default=10.0,
        description="Seconds between measurements of each Space's storage usage (and monitor checks); on "
        "Kubernetes, between sweeps that delete the claims of storage no Space owns.",
    )

    def storage_tier_bytes(self, tier: str) -> int:
        """The size of ``tier`` here: the setting's, else HF's."""
        return int(self.storage_tiers.get(tier, STORAGE_TIERS[tier]))


class KubernetesSettings(BaseModel):
    kubeconfig: Path | None = Field(
        default=None,
        description="The kubeconfig file of the cluster that runs Spaces (runtime.backend kubernetes); none: the "
        "service account of the pod SpaceHub runs in.",
    )
    context: str | None = Field(default=None, description="The kubeconfig context to use (default: its current one).")
    namespace: str = Field(default="spacehub-spaces", description="The namespace every Space's objects live in.")
    image: str = Field(
        default="python:3.11-slim",
        description="The image Python Spaces run in (and their code is fetched and requirements installed in): "
        "Python 3 and pip, plus what the SDKs need if Spaces should not install them.",
    )
    hub_url: str | None = Field(
        default=None,
        description="The Hub's URL as pods reach it (code fetches, HF_ENDPOINT); default server.public_url.",
    )
    hub_cidrs: list[str] = Field(
        default_factory=list,
        description="Addresses of the Hub as CIDRs: the only peer a Space's NetworkPolicy lets in, and one it may "
        "reach. Empty: the policy admits nothing in.",
    )
    hub_pod_labels: dict[str, str] | None = Field(
        default=None,
        description="When the Hub runs in the cluster: the labels of its pods, a peer of every Space's NetworkPolicy "
        "(with hub_namespace_labels: in the namespaces they select; alone: in the Spaces' namespace).",
    )
    hub_namespace_labels: dict[str, str] | None = Field(
        default=None, description="The labels of the namespace the Hub's pods run in (with hub_pod_labels)."
    )
    hub_ports: list[int] = Field(default_factory=list, description="The Hub's ports a Space may reach (empty: any).")
    allow_internet: bool = Field(
        default=False, description="Spaces may reach public addresses (never private ranges or another Space)."
    )
    cluster_cidrs: list[str] = Field(
        default_factory=list, description="The cluster's pod and service ranges, excluded from 'the internet'."
    )
    storage_class: str | None = Field(
        default=None, description="The StorageClass of Spaces' storage claims (default: the cluster's default)."
    )
    build_timeout: float = Field(default=1800.0, description="Seconds a build Job may run before it fails.")
    sdk_packages: dict[str, list[str]] = Field(
        default_factory=lambda: {"gradio": ["gradio", "spaces"], "streamlit": ["streamlit"]},
        description="The packages the install init container adds per SDK, with the Space's requirements (the first "
        "pinned to the README's sdk_version), as on HF where a Space need not list its SDK; an SDK with an empty "
        "list (or an image that has it) installs nothing more. Pods reach the package index for them.",
    )
    env_cache_host_path: str = Field(
        default="/var/lib/spacehub/envs",
        description="Where each node keeps Python environments, one per key (image, SDK packages, "
        "pre-requirements.txt, requirements.txt): a hostPath folder, made the app user's (uid 1000) by the build. "
        "A build installs an environment once; the pods of every Space with the same key mount it read-only and "
        "install nothing. Empty (and no env_cache_claim): every pod installs its own.",
    )
    env_cache_claim: str | None = Field(
        default=None,
        description="Instead of env_cache_host_path: a PersistentVolumeClaim in the Spaces' namespace (ReadWriteMany "
        "on a cluster of several nodes, so that every node sees what a build kept), writable by uid 1000.",
    )
    env_cache_keep_days: float = Field(
        default=7.0,
        ge=0,
        description="An environment of the cache that no Deployment, ReplicaSet, Job or pod mounts and that was not "
        "used for this many days is removed (by a Job on the cache volume, on each node for a hostPath, after a "
        "build, at most once an hour).",
    )
    registry: str | None = Field(
        default=None,
        description="docker Spaces: the registry (host[:port][/path]) podman pushes their images to, where SpaceHub "
        "runs, and the cluster's nodes pull them from (space-<id>:<build id>). None: docker Spaces fail their build "
        "with the reason.",
    )
    registry_tls_verify: bool = Field(
        default=True,
        description="podman push verifies the registry's TLS certificate; false for a plain-HTTP registry (the nodes' "
        "container runtime must then be told the same).",
    )
    registry_auth_file: Path | None = Field(
        default=None,
        description="docker Spaces: the registry's credentials, a docker config.json or containers auth.json "
        '({"auths": {"host[:port]": {"auth": base64 of user:password}}}, as `podman login --authfile` writes it), '
        "readable by SpaceHub only. podman pushes with it (--authfile), and it becomes the kubernetes.io/"
        "dockerconfigjson Secret spacehub-registry-auth that docker Spaces' pods pull with (imagePullSecrets). "
        "It is read at each build and start (a new login is taken up); its content is never logged.",
    )
    registry_pull_secret: str | None = Field(
        default=None,
        description="docker Spaces: an existing pull secret in the Spaces' namespace (kubernetes.io/dockerconfigjson) "
        "that their pods pull with, instead of one made from registry_auth_file (which podman still pushes with).",
    )
    pod_firewall: bool = Field(
        default=True,
        description="Every Space's pod (and build pod) holds itself in: a first init container, SpaceHub's own program "
        "running as root with NET_ADMIN before any code of the Space is fetched, installs the NetworkPolicy's rules as "
        "netfilter rules in the pod's network namespace, so that they hold whatever the cluster's CNI (many do not "
        "enforce NetworkPolicies); the pod does not start when they cannot be installed. Off: the NetworkPolicy alone, "
        "for clusters whose CNI enforces it and whose namespace enforces Pod Security 'restricted' (which refuses a "
        "NET_ADMIN init container).",
    )
    firewall_image: str = Field(
        default="registry.k8s.io/build-image/debian-iptables:bookworm-v1.0.0",
        description="The image the firewall init container runs (pod_firewall): it needs sh, getent and "
        "iptables-nft-restore (and ip6tables-nft-restore); the default is the Kubernetes project's own Debian image "
        "with iptables.",
    )
    endpoints: Literal["service", "pod"] = Field(
        default="service",
        description="How SpaceHub reaches a Space's app: 'service', the release's Service by its cluster DNS name "
        "(SpaceHub runs in the cluster); 'pod', the pod's IP and app port (SpaceHub runs where the pod network is "
        "routed, e.g. on a node).",
    )


class ProxySettings(BaseModel):
    mode: Literal["embedded", "nginx"] = Field(
        default="embedded",
        description="Who carries Space traffic: SpaceHub's own proxy, or an nginx that SpaceHub configures and runs.",
    )
    connect_timeout: float = Field(default=10.0, description="Seconds to open a connection to a Space's app.")
    read_timeout: float = Field(default=300.0, description="Seconds a Space's app may stay silent mid-request.")
    wake_timeout: float = Field(default=600.0, description="Seconds a request waits for a sleeping Space to wake.")
    nginx_binary: str = Field(default="nginx", description="The nginx program (mode nginx).")
    nginx_backend_port: int | None = Field(
        default=None,
        description="Mode nginx: nginx listens on server.port and SpaceHub on this port (default server.port + 1).",
    )


class WebhookSettings(BaseModel):
    allow_private_addresses: bool = Field(
        default=False,
        description="Deliver webhooks to loopback, private, link-local and other non-public addresses (off: such a "
        "URL is refused at creation when it names one, and a delivery to a host that resolves to one fails).",
    )
    max_attempts: int = Field(default=6, ge=1, le=50, description="Attempts of a delivery before it counts as failed.")
    retry_base_seconds: float = Field(
        default=10.0, gt=0, description="Wait before the second attempt; each later wait doubles (10, 20, 40 s…)."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Seconds a receiver has to answer one attempt.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPACEHUB_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the database, repos and blobs live.")
    host: str | None = Field(default=None, description="Shortcut for server.host.")
    port: int | None = Field(default=None, description="Shortcut for server.port.")
    server: ServerSettings = ServerSettings()
    db: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    proxy: ProxySettings = ProxySettings()
    webhooks: WebhookSettings = WebhookSettings()

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.resolve()
        if self.host is not None:
            self.server.host = self.host
        if self.port is not None:
            self.server.port = self.port

    @property
    def database_url(self) -> str:
        return self.db.url or f"sqlite:///{self.data_dir / 'spacehub.db'}"

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def lfs_dir(self) -> Path:
        return self.data_dir / "lfs"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"
