"""Fixtures for the compatibility suite: the real huggingface_hub client (2.4.0, in-process) on the live server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ORG = "acme"


@pytest.fixture(scope="session")
def acme(server: Any, alice: str, bob: str) -> str:
    """The organization ``acme``: alice is a write member, bob a read member."""
    server.cli("orgs", "create", ORG)
    server.cli("orgs", "add-member", ORG, "alice", "--role", "write")
    server.cli("orgs", "add-member", ORG, "bob", "--role", "read")
    return ORG


@pytest.fixture
def bob_api(server: Any, bob: str) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=server.url, token=bob)


@pytest.fixture
def anon_api(server: Any) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=server.url, token=False)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hf-cache"
    d.mkdir()
    return d


@pytest.fixture
def repo(api: Any, unique: str) -> str:
    """A fresh public model repo of alice's."""
    repo_id = f"alice/{unique}"
    api.create_repo(repo_id)
    return repo_id
