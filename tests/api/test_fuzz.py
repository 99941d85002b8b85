"""A bounded schemathesis run over the Hub's OpenAPI document, in-process: no generated request may get a 5xx, and
every answer must match what the document says of it (schemathesis's response schema conformance check).

The app is the one `spacehub serve` runs (`wiring.assemble`, without a runtime), called through Starlette's test
client with a real write token, so authenticated operations are reached too. What the document declares bounds
what is generated: path and query parameters, and the request bodies (JSON, the form of paths-info, the NDJSON
commit, the LFS batch). The answers are the models of `api.responses` (docs/architecture.md, "Schemas"), so a
model that says something the server does not do fails here.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

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


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """The commit body: the document describes it as the array of its lines; it is sent one JSON value per line."""
    lines = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


schemathesis.serializer.alias("application/vnd.git-lfs+json", "application/json")

with pytest.warns(UserWarning):  # FastAPI warns of routes served by one function twice (HEAD and GET)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", PARTS.app)


def teardown_module() -> None:
    shutil.rmtree(DATA, ignore_errors=True)


@pytest.mark.slow  # ~20 s: in the whole suite, not in make test-fast
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(case: schemathesis.Case) -> None:
    checks = [not_a_server_error, response_schema_conformance]
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=checks)
