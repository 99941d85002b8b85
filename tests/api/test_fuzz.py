"""A bounded schemathesis run over the Hub's OpenAPI document, in-process: no generated request may get a 5xx, and
every answer must match what the document says of it (schemathesis's response schema conformance check).

The app is the one `spacehub serve` runs (`wiring.assemble`, without a runtime), called through Starlette's test
client with a real write token, so authenticated operations are reached too. What the document declares bounds
what is generated: path and query parameters, and the request bodies (JSON, the form of paths-info, the NDJSON
commit, the LFS batch). The answers are the models of `api.responses` (docs/architecture.md, "Schemas"), so a
model that says something the server does not do fails here.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import update

from spacehub.config import Settings
from spacehub.services import accounts, billing, creation
from spacehub.storage.models import Webhook, WebhookDelivery
from spacehub.wiring import Assembly, assemble
from tests.conftest import fast_run

DATA = Path(tempfile.mkdtemp(prefix="spacehub-fuzz-"))


WEBHOOK = "f" * 24  # the seeded webhook's id


def seeded_hub(data_dir: Path) -> tuple[Assembly, str]:
    """The app over ``data_dir`` with alice (a write token, allowed paid hardware) and a Space, a model and a dataset
    ``alice/fuzz`` holding content for the answers to describe: a README with a card, a file in a folder, an LFS
    file, a tag, a branch, a secret and a variable (so that trees, siblings, refs, commits and settings are not all
    empty)."""
    parts = assemble(Settings(data_dir=data_dir, runtime={"backend": "none"}))
    with parts.ctx.db.transaction() as s:
        accounts.create_user(s, "carol")
        accounts.create_user(s, "alice")
        token = accounts.create_token(s, "alice")
        billing.grant(s, "alice")  # paid hardware, hence custom sleep times, are allowed
        accounts.create_org(s, "fuzzorg")
    for kind in ("space", "model", "dataset"):
        creation.create_repo(parts.ctx, token, {"name": "alice/fuzz", "type": kind, "sdk": "static"}, "http://x")
    readme = "---\ntitle: Fuzz\nemoji: 🐛\ntags: [a, b]\n---\nhi\n"
    files = {"README.md": readme.encode(), "src/app.py": b"print(1)\n", "weights.bin": b"\0" * 2048}
    lines = [{"key": "header", "value": {"summary": "seed"}}] + [
        {"key": "file", "value": {"path": p, "content": base64.b64encode(b).decode(), "encoding": "base64"}}
        for p, b in files.items()
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(parts.app) as client:
        for kind in ("spaces", "models", "datasets"):
            r = client.post(f"/api/{kind}/alice/fuzz/commit/main", content=body, headers=auth)
            assert r.status_code == 200, r.text
            assert client.post(f"/api/{kind}/alice/fuzz/tag/main", json={"tag": "v1"}, headers=auth).status_code == 200
            assert client.post(f"/api/{kind}/alice/fuzz/branch/dev", json={}, headers=auth).status_code == 200
        for kind in ("secrets", "variables"):
            entry = {"key": f"K_{kind.upper()}", "value": "v"}
            assert client.post(f"/api/spaces/alice/fuzz/{kind}", json=entry, headers=auth).status_code == 200
        hook = {"url": "https://hooks.example/fuzz", "watched": [{"type": "user", "name": "carol"}], "secret": "s"}
        r = client.post("/api/settings/webhooks", json=hook, headers=auth)  # carol does nothing: nothing is sent
        assert r.status_code == 200, r.text
    with parts.ctx.db.transaction() as s:  # a known id, for the requests that name one, and a delivery to replay
        s.execute(update(Webhook).where(Webhook.id == r.json()["webhook"]["id"]).values(id=WEBHOOK))
        payload = json.dumps({"event": {"action": "update", "scope": "repo.content"}, "webhook": {"id": WEBHOOK}})
        s.add(WebhookDelivery(id=1, webhook_id=WEBHOOK, event_id="0" * 24, scope="repo.content", action="update",
                              payload=payload, state="failed", attempts=1, log="[]"))  # fmt: skip
    return parts, token


PARTS, TOKEN = seeded_hub(DATA / "fuzz")
REAL = {
    "ns": "alice",
    "name": "fuzz",
    "rev": "main",
    "kind": "run",
    "webhook_id": WEBHOOK,
    "user": "alice",
    "delivery_id": "1",
}


def steer(case: schemathesis.Case) -> None:
    """Point three requests in four at the seeded repos (a generated name is almost never one, and would only ever
    get a 404, so the answers of success would go unchecked); the fourth keeps what was generated. Deterministic:
    decided by a hash of the generated parameters, as the run is derandomized."""
    params = case.path_parameters
    if not params:
        return
    seed = zlib.crc32(json.dumps(params, sort_keys=True, default=str).encode())
    if seed % 4 == 0:
        return
    real = {**REAL, "rtype": ("models", "datasets", "spaces")[seed % 3], "wtype": ("datasets", "spaces")[seed % 2]}
    for key in params.keys() & real.keys():
        params[key] = real[key]


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


# The status streams follow the Space until the client leaves (a test client never does): here they are only reached
# with ?follow=false, in the table of success below.
STREAMS = r"^/api/spaces/\{ns\}/\{name\}/(events|metrics)$"


# Requests generated per operation: 30 in the whole suite (~20 s), 3 in a run that leaves the slow tests out (`make
# test-fast`, ~2 s); either way no server error and no undocumented answer is allowed.
EXAMPLES = 3 if fast_run() else 30


@schema.exclude(path_regex=STREAMS).parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(case: schemathesis.Case) -> None:
    steer(case)
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


# ---- one request of success per operation: the answers a random body rarely earns ------------------------------
def _commit_lines(path: str) -> list[dict[str, object]]:
    content = base64.b64encode(b"hello\n").decode()
    return [
        {"key": "header", "value": {"summary": "add"}},
        {"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}},
    ]


_SPACE = {"ns": "alice", "name": "fuzz"}
_REPO = {"rtype": "spaces", **_SPACE}
_GRADIO = {"ns": "alice", "name": "moved"}  # the gradio Space made and moved below (static Spaces take no pause…)
_VOLUME = {"type": "model", "source": "alice/fuzz", "mountPath": "/m"}
_LFS_OID = "0" * 64
SUCCESS: list[tuple[str, str, dict[str, object], object, str | None]] = [  # method, path, params and query, body, media
    ("GET", "/api/whoami-v2", {}, None, None),
    ("POST", "/api/repos/create", {},
     {"name": "made", "type": "space", "sdk": "gradio", "template": "templates/gradio"}, "application/json"),
    ("POST", "/api/repos/move", {}, {"fromRepo": "alice/made", "toRepo": "alice/moved", "type": "space"},
     "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/duplicate", _REPO, {"repository": "alice/copy"}, "application/json"),
    ("DELETE", "/api/repos/delete", {}, {"name": "copy", "type": "space"}, "application/json"),
    ("PUT", "/api/{rtype}/{ns}/{name}/settings", _REPO, {"private": False}, "application/json"),
    ("POST", "/api/validate-yaml", {}, {"content": "---\ntitle: x\n---\n", "repoType": "space"}, "application/json"),
    ("GET", "/api/agent-harnesses", {}, None, None),
    ("GET", "/api/telemetry/{rest}", {"rest": "ping"}, None, None),
    ("HEAD", "/api/telemetry/{rest}", {"rest": "ping"}, None, None),
    ("POST", "/api/telemetry/{rest}", {"rest": "ping"}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions", _REPO, {"title": "A question"}, "application/json"),
    ("GET", "/api/{rtype}/{ns}/{name}/discussions", _REPO, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/discussions/{num}", {**_REPO, "num": "1"}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions/{num}/comment", {**_REPO, "num": "1"}, {"comment": "hi"},
     "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions/{num}/title", {**_REPO, "num": "1"}, {"title": "Renamed"},
     "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions/{num}/comment/{comment_id}/edit",
     {**_REPO, "num": "1", "comment_id": "0" * 24}, {"content": "edited"}, "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions/{num}/comment/{comment_id}/hide",
     {**_REPO, "num": "1", "comment_id": "0" * 24}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions/{num}/merge", {**_REPO, "num": "1"}, {}, "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions/{num}/status", {**_REPO, "num": "1"}, {"status": "closed"},
     "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/discussions", _REPO, {"title": "A change", "pullRequest": True},
     "application/json"),  # pull request #2, previewed below
    ("POST", "/api/spaces/{ns}/{name}/discussions/{num}/preview", {**_SPACE, "num": "2"}, None, None),
    ("GET", "/api/spaces/{ns}/{name}/discussions/{num}/preview", {**_SPACE, "num": "2"}, None, None),
    ("GET", "/api/spaces/{ns}/{name}/discussions/{num}/preview/logs/{kind}", {**_SPACE, "num": "2", "kind": "build"},
     None, None),
    ("DELETE", "/api/spaces/{ns}/{name}/discussions/{num}/preview", {**_SPACE, "num": "2"}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/like", _REPO, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/likers", _REPO, None, None),
    ("GET", "/api/users/{user}/likes", {"user": "alice"}, None, None),
    ("DELETE", "/api/{rtype}/{ns}/{name}/like", _REPO, None, None),
    ("GET", "/api/settings/webhooks", {}, None, None),
    ("POST", "/api/settings/webhooks", {}, {"url": "https://hooks.example/new", "domains": ["repo"],
                                            "watched": [{"type": "user", "name": "carol"}]}, "application/json"),
    ("GET", "/api/settings/webhooks/{webhook_id}", {"webhook_id": WEBHOOK}, None, None),
    ("POST", "/api/settings/webhooks/{webhook_id}", {"webhook_id": WEBHOOK}, {"watched": [], "secret": "t"},
     "application/json"),
    ("POST", "/api/settings/webhooks/{webhook_id}/disable", {"webhook_id": WEBHOOK}, None, None),
    ("POST", "/api/settings/webhooks/{webhook_id}/enable", {"webhook_id": WEBHOOK}, None, None),
    ("GET", "/api/settings/webhooks/{webhook_id}/deliveries", {"webhook_id": WEBHOOK}, None, None),
    ("POST", "/api/settings/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
     {"webhook_id": WEBHOOK, "delivery_id": "1"}, None, None),
    ("DELETE", "/api/settings/webhooks/{webhook_id}", {"webhook_id": WEBHOOK}, None, None),
    ("GET", "/api/{rtype}", {"rtype": "spaces", "?": {"author": "alice", "filter": "static", "full": "true"}}, None,
     None),
    ("GET", "/api/spaces/semantic-search", {"?": {"q": "fuzz", "includeNonRunning": "true"}}, None, None),
    ("GET", "/api/users/{name}/overview", {"name": "alice"}, None, None),
    ("GET", "/api/organizations/{name}/overview", {"name": "fuzzorg"}, None, None),
    ("GET", "/avatars/{name}.svg", {"name": "alice"}, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}", _REPO, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/revision/{rev}", {**_REPO, "rev": "v1", "?": {"blobs": "true"}}, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/tree/{rev}", {**_REPO, "rev": "main", "?": {"expand": "true"}}, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/tree/{rev}/{path}", {**_REPO, "rev": "main", "path": "src"}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/paths-info/{rev}", {**_REPO, "rev": "main"},
     {"paths": ["weights.bin", "src"], "expand": True}, "application/x-www-form-urlencoded"),
    ("GET", "/api/{rtype}/{ns}/{name}/refs", {**_REPO, "?": {"include_prs": "true"}}, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/commits/{rev}", {**_REPO, "rev": "main"}, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/auth-check", _REPO, None, None),
    ("GET", "/api/{rtype}/{ns}/{name}/auth-check/write", _REPO, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/branch/{branch}", {**_REPO, "branch": "b2"}, {"startingPoint": "main"},
     "application/json"),
    ("DELETE", "/api/{rtype}/{ns}/{name}/branch/{branch}", {**_REPO, "branch": "b2"}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/tag/{rev}", {**_REPO, "rev": "main"}, {"tag": "t2", "message": "m"},
     "application/json"),
    ("DELETE", "/api/{rtype}/{ns}/{name}/tag/{tag}", {**_REPO, "tag": "t2"}, None, None),
    ("POST", "/api/{rtype}/{ns}/{name}/preupload/{rev}", {**_REPO, "rev": "main"},
     {"files": [{"path": "README.md", "size": 40, "sample": ""}, {"path": "new.txt", "size": 1, "sample": ""}]},
     "application/json"),
    ("POST", "/api/{rtype}/{ns}/{name}/commit/{rev}", {**_REPO, "rev": "main"}, _commit_lines("added.txt"),
     "application/x-ndjson"),
    ("GET", "/api/spaces/{ns}/{name}/runtime", _SPACE, None, None),
    ("POST", "/api/spaces/{ns}/{name}/restart", _SPACE, None, None),
    ("POST", "/api/spaces/{ns}/{name}/pause", _GRADIO, None, None),
    ("GET", "/api/spaces/{ns}/{name}/logs/{kind}", {**_SPACE, "kind": "build"}, None, None),
    ("GET", "/api/spaces/{ns}/{name}/events", {**_SPACE, "?": {"follow": "false"}}, None, None),
    ("GET", "/api/spaces/{ns}/{name}/metrics", {**_SPACE, "?": {"follow": "false"}}, None, None),
    ("GET", "/api/spaces/hardware", {}, None, None),
    ("GET", "/api/spaces/templates", {}, None, None),
    ("POST", "/api/spaces/{ns}/{name}/hardware", _GRADIO, {"flavor": "cpu-upgrade"}, "application/json"),
    ("POST", "/api/spaces/{ns}/{name}/sleeptime", _GRADIO, {"seconds": 600}, "application/json"),
    ("GET", "/api/usage", {}, None, None),
    ("GET", "/api/spaces/{ns}/{name}/secrets", _SPACE, None, None),
    ("POST", "/api/spaces/{ns}/{name}/secrets", _SPACE, {"key": "S2", "value": "v"}, "application/json"),
    ("DELETE", "/api/spaces/{ns}/{name}/secrets", _SPACE, {"key": "S2"}, "application/json"),
    ("GET", "/api/spaces/{ns}/{name}/variables", _SPACE, None, None),
    ("POST", "/api/spaces/{ns}/{name}/variables", _SPACE, {"key": "V2", "value": "v", "description": "d"},
     "application/json"),
    ("DELETE", "/api/spaces/{ns}/{name}/variables", _SPACE, {"key": "V2"}, "application/json"),
    ("POST", "/api/spaces/{ns}/{name}/storage", _GRADIO, {"tier": "small"}, "application/json"),
    ("DELETE", "/api/spaces/{ns}/{name}/storage", _GRADIO, None, None),
    ("PUT", "/api/spaces/{ns}/{name}/volumes", _GRADIO, {"volumes": [_VOLUME]}, "application/json"),
    ("DELETE", "/api/spaces/{ns}/{name}/volumes", _GRADIO, None, None),
    ("GET", "/{wtype}/{ns}/{name}/resolve/{rev}/{path}", {"wtype": "spaces", **_SPACE, "rev": "main",
                                                          "path": "weights.bin"}, None, None),
    ("HEAD", "/{wtype}/{ns}/{name}/resolve/{rev}/{path}", {"wtype": "spaces", **_SPACE, "rev": "main",
                                                           "path": "README.md"}, None, None),
    ("GET", "/{ns}/{name}/resolve/{rev}/{path}", {**_SPACE, "rev": "v1", "path": "src/app.py"}, None, None),
    ("HEAD", "/{ns}/{name}/resolve/{rev}/{path}", {**_SPACE, "rev": "main", "path": "README.md"}, None, None),
    ("POST", "/{wtype}/{ns}/{name}/info/lfs/objects/batch", {"wtype": "spaces", **_SPACE},
     {"operation": "upload", "objects": [{"oid": _LFS_OID, "size": 3}]}, "application/vnd.git-lfs+json"),
    ("POST", "/{ns}/{name}/info/lfs/objects/batch", _SPACE,
     {"operation": "download", "objects": [{"oid": _LFS_OID, "size": 3}]}, "application/vnd.git-lfs+json"),
]  # fmt: skip


# Operations whose success needs an id only a previous answer carries: a documented refusal is checked instead.
REFUSED = {
    "/api/{rtype}/{ns}/{name}/discussions/{num}/comment/{comment_id}/edit": 404,  # no such comment
    "/api/{rtype}/{ns}/{name}/discussions/{num}/comment/{comment_id}/hide": 404,
    "/api/{rtype}/{ns}/{name}/discussions/{num}/merge": 400,  # a discussion, not a pull request
}


def test_every_operation_has_a_request_of_success_whose_answer_matches_the_document() -> None:
    """Random bodies rarely pass the handlers' checks (a flavor of the catalog, a key that is an environment name), so
    the fuzz run above sees few answers of success for some operations: here each one gets a request that succeeds,
    in order, and its answer is checked against the document. A new route must add its line."""
    parts, token = seeded_hub(DATA / "success")  # its own: the fuzz run may have changed the other one
    with pytest.warns(UserWarning):
        fresh = schemathesis.openapi.from_asgi("/api/openapi.json", parts.app)
    documented = {(m.upper(), path) for path, ops in fresh.raw_schema["paths"].items() for m in ops}
    assert {(m, p) for m, p, *_ in SUCCESS} == documented
    for method, path, params, body, media_type in SUCCESS:
        path_params = {k: v for k, v in params.items() if k != "?"}
        query = params.get("?") or None
        with_body: dict[str, Any] = {"body": body, "media_type": media_type} if media_type else {}
        case = fresh[path][method].Case(path_parameters=path_params, query=query, **with_body)  # type: ignore[arg-type]
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        expected = REFUSED.get(path, 200)
        assert response.status_code == expected, (method, path, response.status_code, response.text[:300])
        case.validate_response(response, checks=[response_schema_conformance])
