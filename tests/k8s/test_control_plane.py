"""The control-plane tier itself: it starts from the cached build, answers with the token it was given (and only
with it), and leaves no process and no file behind."""

from __future__ import annotations

import os
import ssl

import httpx
import pytest
from kubernetes import client

from spacehub.runtime.backends.kubernetes import objects
from tests.k8s.cluster import ControlPlane, Unavailable, binaries


@pytest.mark.slow
def test_control_plane_starts_answers_and_leaves_nothing_behind() -> None:
    try:
        bin_dir = binaries(build=False)
    except Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))
    cp = ControlPlane.start(bin_dir, scheduler=False, controllers=False)
    try:
        assert set(cp.alive()) == {"etcd", "kube-apiserver"} and all(rc is None for rc in cp.alive().values())
        api = objects.connect(cp.kubeconfig)  # verifies the server's certificate: no insecure-skip-tls-verify
        version = client.VersionApi(api).get_code()
        assert version.git_version.startswith("v1.20.")
        api.close()
        ca = ssl.create_default_context(cafile=str(cp.workdir / "certs" / "apiserver.crt"))
        assert httpx.get(f"{cp.url}/api", verify=ca).status_code == 401  # no token, no entry
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(f"{cp.url}/api", headers=wrong, verify=ca).status_code == 401
        pids = [p.pid for p in cp.procs.values()]
    finally:
        cp.stop()
    assert not cp.workdir.exists()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} is still there"
