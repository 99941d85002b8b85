"""The Backend contract: the same scenarios over every backend (the fake the reconciler tests use, and the local
one with its sandbox), so that a backend, or the fake standing in for one, cannot drift from what the reconciler
relies on. A Kubernetes backend joins the parameter list when it exists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from spacehub.runtime.backends.base import Backend, BuildFailed
from spacehub.runtime.backends.fake import FakeBackend
from spacehub.runtime.backends.local import LocalProcessBackend
from tests.runtime.backends.conftest import APP, README, SpaceRepo, build_spec, release_spec, wait_http


@pytest.fixture(params=["fake", "local"])
def backend(request: pytest.FixtureRequest, make_backend: Callable[..., LocalProcessBackend]) -> Iterator[Backend]:
    if request.param == "fake":
        fake = FakeBackend()
        yield fake
        for inst in fake.list_instances():
            fake.stop(inst.release_id)
    else:
        yield make_backend(sandbox="on", outbound="none")


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
    log = tmp_path / "run.log"
    ep = backend.start(release_spec(repo), log)
    wait_http(f"http://{ep.host}:{ep.port}/")
    st = backend.status("r1")
    assert st is not None and st.running and not st.frozen and st.exit_code is None and st.endpoint == ep
    assert st.build_id == "b1" and st.limits
    assert [i.release_id for i in backend.list_instances()] == ["r1"]
    assert log.read_text().strip(), "the app's output goes to its log"
    backend.stop("r1")
    assert backend.status("r1") is None and backend.list_instances() == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{ep.host}:{ep.port}/", timeout=2)
    backend.stop("r1")  # idempotent


def test_a_frozen_app_keeps_its_instance_and_serves_again_once_thawed(
    built: tuple[Backend, SpaceRepo], tmp_path: Path
) -> None:
    backend, repo = built
    backend.start(release_spec(repo), tmp_path / "run.log")
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
    a = backend.start(release_spec(repo, "r1"), tmp_path / "a.log")
    b = backend.start(release_spec(repo, "r2"), tmp_path / "b.log")
    assert a != b
    wait_http(f"http://{a.host}:{a.port}/")
    wait_http(f"http://{b.host}:{b.port}/")
    assert sorted(i.release_id for i in backend.list_instances()) == ["r1", "r2"]
    backend.stop("r1")
    assert wait_http(f"http://{b.host}:{b.port}/").status_code == 200


def test_a_build_that_cannot_succeed_raises_build_failed(backend: Backend, space_repo: SpaceRepo) -> None:
    if isinstance(backend, FakeBackend):
        backend.fail_builds["b1"] = "requirements cannot be installed"
    sha = space_repo.commit(
        {"README.md": README.format(sdk="gradio"), "app.py": APP, "requirements.txt": "no-such-package-x9==0.0.1\n"}
    )
    with pytest.raises(BuildFailed):
        backend.build(build_spec(space_repo, sha), lambda line: None)
    assert not backend.build_exists("b1")
