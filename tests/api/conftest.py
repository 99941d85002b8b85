"""Users of the API tests that run on the Hub app in-process (tests/inprocess.py, the session's `hub`): alice's and
bob's write tokens, and alice's client. The modules on a live server (`test_bad_input_live.py`,
`test_concurrent_commits.py`) name their users on `server` themselves."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi

from tests.inprocess import InProcessHub


@pytest.fixture(scope="module")
def alice(hub: InProcessHub) -> str:
    return hub.user("alice")


@pytest.fixture(scope="module")
def bob(hub: InProcessHub) -> str:
    return hub.user("bob")


@pytest.fixture
def api(hub: InProcessHub, alice: str) -> HfApi:
    return hub.api(alice)
