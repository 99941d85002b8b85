"""KubernetesBackend on the control-plane tier (real 1.20 apiserver, scheduler and controllers; the stand-in kubelet
plays the pods): builds and tasks as Jobs, a Space's objects, honest stages, rollouts and roll-backs, sleep and wake
by scaling, storage claims, cleanup, and secrets kept out of everything but Secrets.

What needs a pod that really runs (the app's HTTP, its output, pip) is the pod tier's; see the contract suite."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from spacehub.config import Settings
from spacehub.runtime.backends.base import (
    BuildFailed,
    BuildSpec,
    ReleaseSpec,
    Resources,
    TemporaryBackendError,
)
from spacehub.runtime.backends.kubernetes import manifests as m
from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions
from spacehub.runtime.backends.kubernetes.objects import Cluster
from tests.k8s.cluster import ControlPlane
from tests.k8s.conftest import wait_for
from tests.k8s.kubelet import StandInKubelet

pytestmark = pytest.mark.slow

TOKEN = "hf_fetchtoken_scoped_to_this_space_only"
SECRET = "hf_the_space_secret_value_x9"
SHA = "a" * 40


@pytest.fixture
def backend(cluster: Cluster, options: ClusterOptions, tmp_path: Path) -> Iterator[KubernetesBackend]:
    yield KubernetesBackend(cluster, options, lambda space_id, current=None: ("alice/demo", TOKEN), "http://192.0.2.10:8000",
                            image="localhost/spacehub/python:3.11", run_log=lambda space_id: tmp_path / "run.log",
                            poll_interval=0.05, build_timeout=120)  # fmt: skip


def space() -> str:
    return secrets.token_hex(12)


def build(backend: KubernetesBackend, space_id: str, build_id: str = "b1") -> BuildSpec:
    spec = BuildSpec(space_id, build_id, SHA, "gradio", None, None)
    backend.build(spec, lambda line: None)
    return spec


def release(space_id: str, release_id: str = "r1", build_id: str = "b1", **kw: Any) -> ReleaseSpec:
    env = {"SPACE_ID": "alice/demo", "ACCELERATOR": "none", "MY_SECRET": SECRET, **kw.pop("env", {})}
    return ReleaseSpec(space_id, release_id, build_id, "gradio", "app.py", 7860, env,
                       kw.pop("resources", Resources(cpus=2, memory_bytes=16 * 2**30)), **kw)  # fmt: skip


def app_pods(cluster: Cluster, space_id: str) -> list[dict[str, Any]]:
    """The Space's pods but its Jobs' (builds and tasks)."""
    return [p for p in cluster.pods(space_id) if "job-name" not in p["metadata"]["labels"]]


def running(backend: KubernetesBackend, release_id: str) -> Any:
    return wait_for(f"{release_id} running", lambda: (st := backend.status(release_id)) and st.running and st)


def test_a_build_is_a_job_that_fetches_the_code_and_is_kept_as_the_build_record(
    backend: KubernetesBackend, cluster: Cluster
) -> None:
    sid = space()
    lines: list[str] = []
    backend.build(BuildSpec(sid, "b1", SHA, "gradio", None, None), lines.append)
    assert backend.build_exists("b1") and any("fetches alice/demo" in line for line in lines)
    job = cluster.batch.read_namespaced_job("build-b1", cluster.namespace)
    assert job.metadata.annotations[m.LABEL_COMMIT] == SHA and job.metadata.labels[m.LABEL_SPACE] == sid
    init = [c.name for c in job.spec.template.spec.init_containers]
    assert init == ["firewall", "fetch", "install"]
    # a build's firewall lets its pip reach public addresses (never another pod, the node or a private address)
    summary = next(e.value for e in job.spec.template.spec.init_containers[0].env
                   if e.name == "SPACEHUB_FIREWALL_SUMMARY")  # fmt: skip
    assert summary == "in: nothing; out: DNS, the Hub, no private address, public addresses"
    # and its NetworkPolicy, as the 1.20 API server kept it: builds only, the same way out, nothing in
    pol = cluster.networking.read_namespaced_network_policy(m.name(sid) + "-build", cluster.namespace).spec
    assert pol.pod_selector.match_labels == {m.LABEL_SPACE: sid, m.LABEL_KIND: "build"} and pol.ingress is None
    assert [p.ip_block.cidr for p in pol.egress[-1].to] == ["0.0.0.0/0", "::/0"]
    # a second build of the same id answers at once, a restarted backend (a new object) still finds the build
    again: list[str] = []
    backend.build(BuildSpec(sid, "b1", SHA, "gradio", None, None), again.append)
    assert again == ["build exists"]
    assert KubernetesBackend(cluster, backend.options, backend.code_access, backend.hub_url).build_exists("b1")
    backend.drop_build("b1")
    assert not backend.build_exists("b1")
    backend.drop_build("b1")


def test_a_build_whose_fetch_fails_raises_build_failed_with_the_reason(
    backend: KubernetesBackend, kubelet: StandInKubelet
) -> None:
    sid = space()
    kubelet.behave(sid, "init-exit-1")
    with pytest.raises(BuildFailed, match="fetch exited with code 1"):
        build(backend, sid)
    assert not backend.build_exists("b1")
    kubelet.behave(sid, "exit-0")  # the next attempt starts afresh and succeeds
    build(backend, sid)
    assert backend.build_exists("b1")


def test_docker_spaces_without_a_registry_are_refused_with_a_reason(backend: KubernetesBackend) -> None:
    assert backend.registry is None
    with pytest.raises(
        BuildFailed, match=r"need a registry the cluster pulls from: the operator sets kubernetes\.registry"
    ):
        backend.build(BuildSpec(space(), "b1", SHA, "docker", None, None), lambda line: None)


def test_a_space_starts_as_its_objects_runs_sleeps_and_wakes(
    backend: KubernetesBackend, cluster: Cluster, tmp_path: Path
) -> None:
    sid = space()
    build(backend, sid)
    ep = backend.start(release(sid, storage=f"{sid}-k1", data_limit_bytes=2 * 10**9))
    assert ep is not None and ep.host == f"space-{sid}-r1.{cluster.namespace}.svc" and ep.port == 80
    kinds = {kind: names for kind, names in cluster.leftovers(sid).items()}
    assert kinds["Deployment"] == [f"space-{sid}"]
    assert sorted(kinds["Service"]) == [f"space-{sid}", f"space-{sid}-r1"]
    assert sorted(kinds["Secret"]) == [f"space-{sid}-fetch", f"space-{sid}-secrets"]
    assert kinds["ConfigMap"] == [f"space-{sid}-variables"]
    assert kinds["PersistentVolumeClaim"] == [f"data-{sid}-k1"]
    assert sorted(kinds["NetworkPolicy"]) == [f"space-{sid}", f"space-{sid}-build"]  # the build made its own
    st = running(backend, "r1")
    assert st.endpoint == ep and st.build_id == "b1" and not st.frozen and "kubernetes" in st.limits
    live, backend.cluster = backend.cluster, Cluster(dead_api(), cluster.namespace)
    assert backend.status("r1") == st, "an API server blip answers the last status, not an exit"
    backend.cluster = live
    assert [i.release_id for i in backend.list_instances()] == ["r1"]
    assert backend.start(release(sid)) == ep  # idempotent while it runs
    # the release Service selects this release's pods only; the Space's Service every pod of the Space
    svc = cluster.core.read_namespaced_service(f"space-{sid}-r1", cluster.namespace)
    assert svc.spec.selector == {m.LABEL_SPACE: sid, m.LABEL_RELEASE: "r1"}
    assert backend.freeze("r1") is False  # pods cannot be suspended: sleep stops (scales to zero)
    backend.stop("r1")
    d = cluster.apps.read_namespaced_deployment(f"space-{sid}", cluster.namespace)
    assert d.spec.replicas == 0 and backend.status("r1") is None and backend.list_instances() == []
    wait_for("the pods to go", lambda: not app_pods(cluster, sid))
    assert backend.storage_size(f"{sid}-k1") == 2 * 10**9  # the claim stays while the Space sleeps
    backend.stop("r1")  # idempotent
    backend.start(release(sid))  # wake: the same objects, one replica
    running(backend, "r1")
    assert cluster.apps.read_namespaced_deployment(f"space-{sid}", cluster.namespace).spec.replicas == 1


def test_pods_get_the_code_from_the_hub_with_a_scoped_token_that_only_the_fetch_container_sees(
    backend: KubernetesBackend, cluster: Cluster, namespace: str
) -> None:
    sid = space()
    build(backend, sid)
    backend.start(release(sid, env={"HF_ENDPOINT": "https://hub.example.com"}))  # its users' URL
    running(backend, "r1")
    api = cluster.api
    spec = app_pods(cluster, sid)[0]["spec"]
    wall, fetch, install = spec["initContainers"]
    assert wall["name"] == "firewall" and "volumeMounts" not in wall  # first, and it sees nothing of the Space
    env = {e["name"]: e.get("value") for e in fetch["env"]}
    assert env["SPACEHUB_REPO"] == "alice/demo" and env["SPACEHUB_REVISION"] == SHA
    assert env["HF_ENDPOINT"] == "http://192.0.2.10:8000"
    assert {v["mountPath"] for v in fetch["volumeMounts"]} == {"/code", m.TOKEN_PATH}
    assert all(v["name"] != "fetch-token" for v in install["volumeMounts"])
    app = spec["containers"][0]
    assert all(v["name"] != "fetch-token" for v in app.get("volumeMounts", []))  # the app never sees the token
    # the app's HF_ENDPOINT is the Hub as the pods reach it (kubernetes.hub_url), not the URL its users have
    assert {e["name"]: e.get("value") for e in app["env"]}["HF_ENDPOINT"] == "http://192.0.2.10:8000"
    assert app["workingDir"] == "/code" and app["command"] == ["python3", "app.py"]
    for c in (fetch, install, app):  # every container held in, as the app
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    token_volume = next(v for v in spec["volumes"] if v["name"] == "fetch-token")
    assert token_volume["secret"]["secretName"] == f"space-{sid}-fetch"
    fetch_secret = cluster.core.read_namespaced_secret(f"space-{sid}-fetch", namespace)
    assert base64.b64decode(fetch_secret.data["token"]).decode() == TOKEN
    # The token and the Space's secret are in Secrets only: not in a ConfigMap, Deployment, ReplicaSet, Pod, Job,
    # Service or Event, nor in an annotation of any of them.
    everything = [
        *cluster.core.list_namespaced_config_map(namespace).items,
        *cluster.apps.list_namespaced_deployment(namespace).items,
        *cluster.apps.list_namespaced_replica_set(namespace).items,
        *cluster.core.list_namespaced_pod(namespace).items,
        *cluster.batch.list_namespaced_job(namespace).items,
        *cluster.core.list_namespaced_service(namespace).items,
        *cluster.core.list_namespaced_event(namespace).items,
    ]
    text = json.dumps([api.sanitize_for_serialization(o) for o in everything])
    assert "MY_SECRET" in text, "the check reads the objects that name the secret"
    assert TOKEN not in text and SECRET not in text
    secret = cluster.core.read_namespaced_secret(f"space-{sid}-secrets", namespace)
    assert base64.b64decode(secret.data["MY_SECRET"]).decode() == SECRET  # …where it is


@pytest.mark.parametrize(
    ("behaviour", "code", "reason"),
    [
        ("crashloop", 1, "the app exited with code 1; restarted 3 times (CrashLoopBackOff)"),
        ("oomkilled", 137, "the app ran out of memory (OOMKilled at its 16Gi limit)"),
        ("imagepull", None, "cannot pull image 'localhost/spacehub/python:3.11'"),
    ],
)
def test_a_release_that_cannot_run_reports_an_exit_and_the_reason_in_its_run_log(
    backend: KubernetesBackend, kubelet: StandInKubelet, tmp_path: Path, behaviour: str, code: int | None,
    reason: str
) -> None:  # fmt: skip
    sid = space()
    build(backend, sid)
    kubelet.behave(sid, behaviour)
    backend.start(release(sid))
    st = wait_for("an exit", lambda: (s := backend.status("r1")) and not s.running and s)
    assert st.exit_code == code and st.endpoint is None
    log = (tmp_path / "run.log").read_text()
    assert reason in log
    backend.status("r1")
    assert (tmp_path / "run.log").read_text() == log, "a reason is written once"
    # a start again (the reconciler's restart) makes new pods; once they run, the release runs
    kubelet.behave(sid, "ready")
    backend.start(release(sid))
    running(backend, "r1")


def test_the_monitors_round_reads_each_kind_of_object_once_and_answers_as_status_does(
    backend: KubernetesBackend, kubelet: StandInKubelet
) -> None:
    """`statuses` (the crash monitor's round over every running release) lists Jobs, Deployments, nodes, pods and
    pod events once each, whatever the number of releases, and answers what `status` answers for each."""
    ids = [space() for _ in range(3)]
    for i, sid in enumerate(ids):
        build(backend, sid, f"b{i}")
    kubelet.behave(ids[1], "exit-2")
    backend.start(release(ids[0], "r1", "b0"))
    backend.start(release(ids[1], "r2", "b1"))
    backend.start(release(ids[2], "t3", "b2", run_to_exit=True, command=("python3", "-c", "pass")))
    running(backend, "r1")
    wait_for("r2's exit", lambda: (s := backend.status("r2")) and not s.running)
    wait_for("t3's end", lambda: (s := backend.status("t3")) and not s.running)
    asked = ["r1", "r2", "t3", "r9", "../x"]
    calls: list[Any] = []
    call = backend._call
    backend._call = lambda fn, *a, **kw: (calls.append(fn), call(fn, *a, **kw))[1]  # type: ignore[method-assign]
    try:
        together = backend.statuses(asked)
    finally:
        del backend._call
    assert len(calls) <= 5, calls
    assert together == [backend.status(rid) for rid in asked]
    assert [(s.running, s.exit_code) if s else None for s in together] == [
        (True, None),
        (False, 2),
        (False, 0),
        None,
        None,
    ]


def test_gpu_flavors_no_node_has_are_refused_and_busy_gpus_wait_with_the_reason(
    backend: KubernetesBackend, tmp_path: Path
) -> None:
    a100 = space()
    build(backend, a100, "b-a100")
    with pytest.raises(BuildFailed, match="no node has an A100"):
        backend.start(release(a100, "r-a100", "b-a100", env={"ACCELERATOR": "a100-large"}))
    first, second = space(), space()
    build(backend, first, "b-first")
    build(backend, second, "b-second")
    backend.start(release(first, "r-first", "b-first", env={"ACCELERATOR": "a10g-small"}))
    running(backend, "r-first")
    backend.start(release(second, "r-second", "b-second", env={"ACCELERATOR": "a10g-small"}))
    log = tmp_path / "run.log"
    st = wait_for("the wait explained", lambda: (s := backend.status("r-second")) and log.exists()
                  and "every A10G is in use" in log.read_text() and s)  # fmt: skip
    assert st.running, "waiting for a GPU is not an error"
    backend.stop("r-first")
    running(backend, "r-second")


def test_a_new_release_rolls_out_and_a_failing_one_is_rolled_back_to_the_one_that_serves(
    backend: KubernetesBackend, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    sid = space()
    build(backend, sid)
    a = backend.start(release(sid, "r1"))
    running(backend, "r1")
    kubelet.behave(sid, "crashloop", release="r2")
    b = backend.start(release(sid, "r2", env={"MY_SECRET": "changed"}))
    assert a != b
    assert sorted(i.release_id for i in backend.list_instances()) == ["r1", "r2"]
    wait_for("r2 failing", lambda: (s := backend.status("r2")) and not s.running)
    st = backend.status("r1")
    assert st is not None and st.running, "the old release still serves"
    ready = [p for p in app_pods(cluster, sid) if p["metadata"]["labels"][m.LABEL_RELEASE] == "r1"]
    assert ready, "maxUnavailable 0: the old pod is kept"
    backend.stop("r2")  # the reconciler gives up on r2: back to r1
    d = cluster.apps.read_namespaced_deployment(f"space-{sid}", cluster.namespace)
    assert d.spec.template.metadata.labels[m.LABEL_RELEASE] == "r1" and d.spec.replicas == 1
    assert backend.status("r2") is None
    assert [i.release_id for i in backend.list_instances()] == ["r1"]
    # a good new release: both listed while it rolls out; stopping the old one leaves the new one serving
    backend.start(release(sid, "r3"))
    running(backend, "r3")
    assert sorted(i.release_id for i in backend.list_instances()) == ["r1", "r3"]
    backend.stop("r1")
    assert [i.release_id for i in backend.list_instances()] == ["r3"]
    wait_for("the old pods to go", lambda: all(
        p["metadata"]["labels"][m.LABEL_RELEASE] == "r3" for p in app_pods(cluster, sid)))  # fmt: skip
    svc = [s.metadata.name for s in cluster.core.list_namespaced_service(cluster.namespace).items]
    assert f"space-{sid}-r1" not in svc and f"space-{sid}-r2" not in svc and f"space-{sid}-r3" in svc


def test_a_task_is_a_job_whose_exit_code_is_its_result(
    backend: KubernetesBackend, cluster: Cluster, kubelet: StandInKubelet, tmp_path: Path
) -> None:
    sid = space()
    build(backend, sid)
    kubelet.behave(sid, "exit-3")
    assert backend.start(release(sid, "t1", run_to_exit=True, command=("python3", "-c", "exit(3)"))) is None
    st = wait_for("the task's end", lambda: (s := backend.status("t1")) and not s.running and s)
    assert st.exit_code == 3 and st.endpoint is None and st.build_id == "b1"
    job = cluster.batch.read_namespaced_job("task-t1", cluster.namespace)
    assert job.spec.backoff_limit == 0 and job.spec.template.spec.restart_policy == "Never"
    assert "task t1 exited with code 3" in (tmp_path / "run.log").read_text()
    assert [i.release_id for i in backend.list_instances()] == ["t1"]
    backend.stop("t1")
    assert backend.status("t1") is None
    assert not [s for s in cluster.core.list_namespaced_secret(cluster.namespace).items
                if s.metadata.name.startswith("task-t1")]  # fmt: skip


def test_deleting_a_space_leaves_nothing_and_its_storage_can_be_kept(
    backend: KubernetesBackend, cluster: Cluster
) -> None:
    kept, gone = space(), space()
    for sid in (kept, gone):
        build(backend, sid, f"b-{sid[:6]}")
        backend.start(release(sid, f"r-{sid[:6]}", f"b-{sid[:6]}", storage=f"{sid}-k1", data_limit_bytes=10**9))
        running(backend, f"r-{sid[:6]}")
    backend.delete_space(kept, keep_storage=True)
    backend.delete_space(gone)
    wait_for("the pods to go", lambda: not cluster.pods(kept) and not cluster.pods(gone))
    assert cluster.leftovers(gone) == {}
    assert cluster.leftovers(kept) == {"PersistentVolumeClaim": [f"data-{kept}-k1"]}
    assert backend.storage_size(f"{kept}-k1") == 10**9 and backend.storage_size(f"{gone}-k1") is None
    backend.delete_storage(f"{kept}-k1")
    assert backend.storage_size(f"{kept}-k1") is None
    assert backend.storage_size("../../etc") is None


def dead_api() -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = "https://127.0.0.1:9"  # nothing listens there
    cfg.retries = 0
    return client.ApiClient(cfg)


def test_an_unreachable_api_server_is_a_temporary_error(options: ClusterOptions) -> None:
    dead = KubernetesBackend(Cluster(dead_api(), "x"), options, lambda s, current=None: ("a/b", TOKEN), "http://h:1")
    with pytest.raises(TemporaryBackendError, match="cannot be reached"):
        dead.build(BuildSpec(space(), "b1", SHA, "gradio", None, None), lambda line: None)
    assert dead.status("r1") is None  # never read: nothing to answer but "not there"
    with pytest.raises(TemporaryBackendError):
        dead.start(ReleaseSpec("s1", "r1", "b1", "gradio", "app.py", 7860, {}))


def test_the_setting_picks_the_kubernetes_backend(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    from spacehub.storage.db import Database, upgrade_schema
    from spacehub.storage.git import GitStore
    from spacehub.wiring import make_backend

    settings = Settings(data_dir=tmp_path, runtime={"backend": "kubernetes"},  # type: ignore[arg-type]
                        kubernetes={"kubeconfig": control_plane.kubeconfig, "namespace": namespace})  # fmt: skip
    upgrade_schema(settings.database_url)
    chosen = make_backend(settings, GitStore(tmp_path / "repos", None), Database(settings.database_url))
    assert isinstance(chosen, KubernetesBackend) and chosen.namespace == namespace
    assert chosen.endpoints == "service"  # the Service's DNS name: a Hub in the cluster
    settings.kubernetes.endpoints = "pod"
    assert (
        make_backend(settings, GitStore(tmp_path / "repos", None), Database(settings.database_url)).endpoints == "pod"
    )  # type: ignore[attr-defined]
    assert chosen.storage_size("0123456789abcdef01234567-k1") is None  # it talks to the cluster
