"""A bounded schemathesis run over the Hub's OpenAPI document, in-process: no generated request may get a 5xx.

The app is the one `spacehub serve` runs (`wiring.build_app`, without a runtime), called through Starlette's test
client with a real write token, so authenticated operations are reached too. What the document declares bounds
what is generated: path and query parameters today (request bodies are not declared yet, see docs/architecture.md,
issue 8's "Schemas").
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from spacehub.config import Settings
from spacehub.services import accounts, creation
from spacehub.wiring import assemble

DATA = Path(tempfile.mkdtemp(prefix="spacehub-fuzz-"))
PARTS = assemble(Settings(data_dir=DATA / "data", runtime={"backend": "none"}))
with PARTS.ctx.db.transaction() as _s:
    accounts.create_user(_s, "alice")
    TOKEN = accounts.create_token(_s, "alice")
for _name, _type in (("alice/fuzz", "space"), ("alice/fuzz", "model"), ("alice/fuzz", "dataset")):
    creation.create_repo(PARTS.ctx, TOKEN, {"name": _name, "type": _type, "sdk": "static"}, "http://testserver")

with pytest.warns(UserWarning):  # FastAPI warns of routes served by one function twice (HEAD and GET)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", PARTS.app)


def teardown_module() -> None:
    shutil.rmtree(DATA, ignore_errors=True)


@pytest.mark.slow  # ~20 s: in the whole suite, not in make test-fast
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
