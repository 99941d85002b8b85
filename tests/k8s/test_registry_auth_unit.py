"""The registry's credentials without a cluster: the auth file is checked before a build (and what is wrong is said,
never what it holds), and it becomes the kubernetes.io/dockerconfigjson pull secret byte for byte; the setting
reaches the backend. A real push and pull with them: test_pod_docker.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from spacehub.runtime.backends.base import BuildFailed
from spacehub.runtime.backends.kubernetes import images

PASSWORD = "registry-pw-never-shown"


def test_the_auth_file_becomes_the_pull_secret_and_a_bad_one_is_refused_without_its_content(tmp_path: Path) -> None:
    auth = tmp_path / "auth.json"
    token = base64.b64encode(f"bot:{PASSWORD}".encode()).decode()
    auth.write_text(json.dumps({"auths": {"registry.example:5000": {"auth": token}}}))
    data = images.read_auth_file(auth)
    secret = images.pull_secret(data, "spaces")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    meta = secret["metadata"]
    assert meta == {"name": images.PULL_SECRET, "namespace": "spaces",  # type: ignore[comparison-overlap]
                    "labels": {"app.kubernetes.io/managed-by": "spacehub"}, "annotations": {}}  # fmt: skip
    assert base64.b64decode(secret["data"][".dockerconfigjson"]) == auth.read_bytes()  # type: ignore[index]
    for text in (f'{{"auth": "{PASSWORD}"}}', f"not json {PASSWORD}", '{"auths": {}}', "[]"):
        auth.write_text(text)
        with pytest.raises(BuildFailed, match="is not a registry auth file") as e:
            images.read_auth_file(auth)
        assert PASSWORD not in str(e.value)
    with pytest.raises(BuildFailed, match="cannot be read"):
        images.read_auth_file(tmp_path / "missing.json")


def test_the_settings_reach_the_backend(tmp_path: Path) -> None:
    from spacehub.config import Settings
    from spacehub.wiring import make_kubernetes_backend

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    settings = Settings(data_dir=tmp_path, kubernetes={"kubeconfig": kubeconfig, "registry": "r.example/s",  # type: ignore[arg-type]
                        "registry_auth_file": tmp_path / "auth.json", "registry_pull_secret": "theirs",
                        "env_cache_keep_days": 3})  # fmt: skip
    backend = make_kubernetes_backend(settings, lambda *_: ("a/b", "t"), lambda space_id: tmp_path / "run.log")
    assert backend.registry_auth_file == tmp_path / "auth.json"  # type: ignore[attr-defined]
    assert backend.registry_pull_secret == "theirs"  # type: ignore[attr-defined]
    assert backend.env_keep_days == 3  # type: ignore[attr-defined]
    spec: dict[str, object] = {}
    assert backend._pull_secrets(spec) == [] and spec["imagePullSecrets"] == [{"name": "theirs"}]  # type: ignore[attr-defined]
