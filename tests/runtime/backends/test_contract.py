"""The Backend contract: the same scenarios over every backend (the fake the reconciler tests use, the local one
with its sandbox, and the Kubernetes one on the control-plane tier), so that a backend, or the fake standing in for
one, cannot drift from what the reconciler relies on.

On the control-plane tier (``kubernetes``) no container runs (a stand-in kubelet writes the pods' status): the
scenarios that need the app's own HTTP, its output or pip are skipped there, saying so; tests/k8s/test_backend.py
proves the rest of those scenarios (objects, status, listing, stopping, rollouts, builds that fail) on that tier.
On the pod tier (``kubernetes-pods``: a real kubelet on containerd, tests/k8s/node.py) they all run: the build Job
fetches the commit from a code server at the node's address and pip runs in its pod, the app serves on its pod's IP
(``endpoints = "pod"``), and its output reaches the run log from the pod's log."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from spacehub.runtime.backends.base import Backend, BuildFailed, BuildSpec
from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.backends.local import LocalProcessBackend
from tests.runtime.backends.conftest import APP, README, SpaceRepo, build_spec, release_spec, wait_for, wait_http

NO_POD_RUNS = "the control-plane tier runs no container (a stand-in kubelet): this needs the pod tier"
NO_SDK = {"gradio": (), "streamlit": ()}  # plain-Python apps on the pod tier: nothing from the package index


@pytest.fixture(
    params=[
        "fake",
        "local",
        pytest.param("kubernetes", marks=pytest.mark.slow),
        pytest.param("kubernetes-pods", marks=[pytest.mark.slow, pytest.mark.pods]),
    ]
)
def backend(
    request: pytest.FixtureRequest, make_backend: Callable[..., LocalProcessBackend], tmp_path: Path
) -> Iterator[Backend]:
    if request.param == "fake":
        fake = FakeBackend(run_log=lambda space_id: tmp_path / "run.log")
        yield fake
        for inst in fake.list_instances():
            fake.stop(inst.release_id)
    elif request.param == "kubernetes":
        yield kubernetes_backend(request, tmp_path)
    elif request.param == "kubernetes-pods":
        yield from kubernetes_pods_backend(request, tmp_path)
    else:
        yield make_backend(sandbox="on", outbound="none")


def kubernetes_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The Kubernetes backend on this worker's control plane, in a fresh namespace (tests/k8s/conftest.py)."""
    from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
    from spacehub.runtime.backends.kubernetes.objects import Cluster

    kube, namespace = request.getfixturevalue("kube"), request.getfixturevalue("namespace")
    k8s = KubernetesBackend(Cluster(kube, namespace), request.getfixturevalue("options"),
                            lambda *_: ("alice/demo", "hf_scoped"), "http://192.0.2.10:8000",
                            run_log=lambda space_id: tmp_path / "run.log", poll_interval=0.05)  # fmt: skip
    k8s.stand_in = request.getfixturevalue("kubelet")  # type: ignore[attr-defined]  # the tests script its pods
    return k8s


def kubernetes_pods_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The Kubernetes backend on this worker's pod tier, in a fresh namespace; its pods fetch the test's repo from a
    code server at the node's address and are reached at their IPs."""
    from spacehub.runtime.backends.kubernetes.backend import KubernetesBackend
    from spacehub.runtime.backends.kubernetes.manifests import ClusterOptions, Peer
    from spacehub.runtime.backends.kubernetes.objects import Cluster
    from tests.k8s.code_server import code_server

    (_, node), kube = request.getfixturevalue("pod_plane"), request.getfixturevalue("pod_kube")
    namespace, repo = request.getfixturevalue("pod_namespace"), request.getfixturevalue("space_repo")
    options = ClusterOptions(namespace=namespace, hub=Peer(cidrs=(f"{node.ip}/32",)),
                             cluster_cidrs=(node.pod_cidr,), image_pull_policy="Never")  # fmt: skip
    with code_server(repo.git_dir, "alice/demo", "hf_scoped", node.ip) as hub:
        k8s = KubernetesBackend(Cluster(kube, namespace), options, lambda *_: ("alice/demo", "hf_scoped"), hub,
                                run_log=lambda space_id: tmp_path / "run.log", poll_interval=0.1,
                                endpoints="pod", sdk_packages=NO_SDK)  # fmt: skip
        k8s.pods = True  # type: ignore[attr-defined]
        yield k8s
        for inst in k8s.list_instances():
            k8s.stop(inst.release_id)


def needs_a_running_app(backend: Backend) -> None:
    if backend.name == "kubernetes" and not getattr(backend, "pods", False):
        pytest.skip(NO_POD_RUNS)


def refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return True
    return False


@pytest.fixture
def built(backend: Backend, space_repo: SpaceRepo) -> tuple[Backend, SpaceRepo]:
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP})
    lines: list[str] = []
    backend.build(build_spec(space_repo, sha), lines.append)
    assert lines, "a build says what it does"
    return backend, space_repo


def url(backend: Backend, release_id: str) -> str:
    st = backend.status(release_id)
    assert st is not None and st.endpoint is not None
    return f"http://{st.endpoint.host}:{st.endpoint.port}/"


def test_a_build_is_idempotent_and_can_be_dropped(built: tuple[Backend, SpaceRepo]) -> None:
    backend, repo = built
    assert backend.build_exists("b1")
    backend.build(build_spec(repo, "ignored: the build exists"), lambda line: None)  # returns at once
    backend.drop_build("b1")
    assert not backend.build_exists("b1")
    backend.drop_build("b1")  # idempotent
    assert not backend.build_exists("b1")


def test_a_started_app_serves_is_listed_and_stops_for_good(built: tuple[Backend, SpaceRepo], tmp_path: Path) -> None:
    backend, repo = built
    needs_a_running_app(backend)  # its HTTP and its output
    log = tmp_path / "run.log"
    ep = backend.start(release_spec(repo))
    wait_http(f"http://{ep.host}:{ep.port}/")
    st = backend.status("r1")
    assert st is not None and st.running and not st.frozen and st.exit_code is None and st.endpoint == ep
    assert st.build_id == "b1" and st.limits
    assert [i.release_id for i in backend.list_instances()] == ["r1"]
    # the app's output goes to its log (a cluster backend relays it from the pod's log, a moment later); the fake
    # runs no app, it writes a line of its own
    said = "" if isinstance(backend, FakeBackend) else "MARKER app starting"
    wait_for(lambda: log.exists() and bool(log.read_text().strip()) and said in log.read_text(), timeout=10)
    backend.stop("r1")
    assert backend.status("r1") is None and backend.list_instances() == []
    wait_for(lambda: refused(f"http://{ep.host}:{ep.port}/"), timeout=30)  # a pod is stopped within its grace, 10 s
    assert said in log.read_text(), "the output is kept after the app is gone"
    backend.stop("r1")  # idempotent


def test_a_frozen_app_keeps_its_instance_and_serves_again_once_thawed(
    built: tuple[Backend, SpaceRepo], tmp_path: Path
) -> None:
    backend, repo = built
    if backend.name == "kubernetes":
        pytest.skip("a pod cannot be frozen: freeze answers False and sleep scales to zero (tests/k8s/test_backend.py)")
    backend.start(release_spec(repo))
    wait_http(url(backend, "r1"))
    if not backend.freeze("r1"):
        pytest.skip("this machine cannot freeze")
    st = backend.status("r1")
    assert st is not None and st.running and st.frozen
    with pytest.raises(httpx.TimeoutException):  # the port is there, nothing answers
        httpx.get(url(backend, "r1"), timeout=0.5)
    backend.thaw("r1")
    st = backend.status("r1")
    assert st is not None and st.running and not st.frozen
    assert wait_http(url(backend, "r1")).status_code == 200


def test_two_releases_of_one_build_run_side_by_side(built: tuple[Backend, SpaceRepo], tmp_path: Path) -> None:
    """A restart starts the new release before the old one stops (zero downtime): both must run at once."""
    backend, repo = built
    needs_a_running_app(backend)  # both answer HTTP
    a = backend.start(release_spec(repo, "r1"))
    b = backend.start(release_spec(repo, "r2"))
    assert a != b
    wait_http(f"http://{a.host}:{a.port}/")
    wait_http(f"http://{b.host}:{b.port}/")
    assert sorted(i.release_id for i in backend.list_instances()) == ["r1", "r2"]
    backend.stop("r1")
    assert wait_http(f"http://{b.host}:{b.port}/").status_code == 200


def test_a_build_that_cannot_succeed_raises_build_failed(backend: Backend, space_repo: SpaceRepo) -> None:
    needs_a_running_app(backend)  # pip, in the build's pod
    if isinstance(backend, FakeBackend):
        backend.fail_builds["b1"] = "requirements cannot be installed"
    sha = space_repo.commit(
        {"README.md": README.format(sdk="gradio"), "app.py": APP, "requirements.txt": "no-such-package-x9==0.0.1\n"}
    )
    with pytest.raises(BuildFailed):
        backend.build(build_spec(space_repo, sha), lambda line: None)
    assert not backend.build_exists("b1")


def test_a_task_runs_to_exit_and_its_exit_code_is_its_result(built: tuple[Backend, SpaceRepo], tmp_path: Path) -> None:
    """A run-to-exit workload (what Jobs run): no port, done when it exits, the exit code kept until it is stopped."""
    backend, repo = built
    if isinstance(backend, FakeBackend):
        backend.task_exit = 3
    stand_in = backend.name == "kubernetes" and not getattr(backend, "pods", False)
    if stand_in:  # the stand-in kubelet runs nothing: it is told the exit code, as the fake is
        backend.stand_in.behave(repo.space_id, "exit-3")  # type: ignore[attr-defined]
    command = ("python", "-c", "import sys; print('task says hi', flush=True); sys.exit(3)")
    assert backend.start(release_spec(repo, "t1", run_to_exit=True, command=command)) is None
    deadline = time.monotonic() + 30
    while (st := backend.status("t1")) is not None and st.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert st is not None and not st.running and st.exit_code == 3 and st.endpoint is None
    if not stand_in:  # its output: read from the pod, which needs a kubelet that ran it
        assert "task says hi" in (tmp_path / "run.log").read_text()
    backend.stop("t1")
    assert backend.status("t1") is None


def test_storage_is_named_and_sized_by_the_backend(backend: Backend) -> None:
    assert backend.storage_size("0123456789abcdef01234567-k1") is None  # nothing provisioned under that name
    assert backend.storage_size("../../etc") is None  # a name, never a path


def test_forget_removes_what_is_left_of_a_space_and_nothing_of_another(backend: Backend, space_repo: SpaceRepo) -> None:
    """A deleted Space: ``forget`` removes everything the backend holds of it (what still runs, its builds, its
    persistent storage, whatever else it keeps: ``spaces`` no longer lists it), idempotently, and nothing of another
    Space, which still runs and answers."""
    sha = space_repo.commit({"README.md": README.format(sdk="gradio"), "app.py": APP})
    gone, kept = "0123456789abcdef0123456a", "0123456789abcdef0123456b"  # repo ids (24 hex digits)
    # a Space's storage: not on the pod tier, which has no provisioner (a claim there waits for a volume the test
    # makes: test_pod_storage.py); the control-plane tier makes the claim, the local backend its disk
    storage = not getattr(backend, "pods", False)
    try:
        _forget_one_of_two(backend, space_repo, sha, gone, kept, storage)
    finally:
        for space_id in (gone, kept):  # nothing left behind (a local disk image stays mounted until forgotten)
            backend.forget(space_id)  # type: ignore[attr-defined]


def _forget_one_of_two(backend: Backend, space_repo: SpaceRepo, sha: str, gone: str, kept: str, storage: bool) -> None:
    for space_id, n in ((gone, "a"), (kept, "b")):
        backend.build(BuildSpec(space_id, f"b{n}", sha, "gradio", None, None, repo_id=space_repo.space_id),
                      lambda line: None)  # fmt: skip
        spec = release_spec(space_repo, f"r{n}", f"b{n}", storage=f"{space_id}-k1" if storage else None,
                            data_limit_bytes=64 * 2**20 if storage else None)  # fmt: skip
        backend.start(dataclasses.replace(spec, space_id=space_id))
    if backend.name != "kubernetes" or getattr(backend, "pods", False):
        wait_http(url(backend, "rb"))
    assert {gone, kept} <= backend.spaces()  # type: ignore[attr-defined]
    sizes = {s: backend.storage_size(f"{s}-k1") for s in (gone, kept)}

    backend.forget(gone)  # type: ignore[attr-defined]
    assert gone not in backend.spaces() and kept in backend.spaces()  # type: ignore[attr-defined]
    assert backend.status("ra") is None and not backend.build_exists("ba")
    assert backend.storage_size(f"{gone}-k1") is None
    st = backend.status("rb")
    assert st is not None and st.running and backend.build_exists("bb")
    assert backend.storage_size(f"{kept}-k1") == sizes[kept]
    if backend.name != "kubernetes" or getattr(backend, "pods", False):
        assert wait_http(url(backend, "rb")).status_code == 200
    backend.forget(gone)  # type: ignore[attr-defined]  # idempotent
    backend.forget("../" + kept)  # type: ignore[attr-defined]  # an id, never a path or a pattern
    assert kept in backend.spaces() and backend.build_exists("bb")  # type: ignore[attr-defined]
