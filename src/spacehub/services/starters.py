"""The starter app of each SDK. Use case of the "new Space" page: create a Space (`creation.create_repo`, the
`HfApi.create_repo` use case) and commit a starter app for its SDK (`commits.create_commit`, the `HfApi.create_commit`
use case), so that it builds and runs at once. If the starter cannot be committed the new Space is deleted again: the
page makes both or none.

The same starters are the Space templates of the API (`list_space_templates`, `create_repo(space_template=…)`):
``templates/{sdk}`` (``templates`` is a reserved name, so no repo can ever have such an id), applied by a create
option (`template_check`, `template_hook`) in the transaction that creates the Space."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from spacehub.errors import BadRequest, HubError
from spacehub.services import accounts, commits, creation, repos
from spacehub.services.accounts import Principal
from spacehub.services.context import HubContext
from spacehub.storage.models import Repo

SDKS = ("gradio", "streamlit", "static", "docker")

GRADIO = """import gradio as gr


def greet(name: str) -> str:
    return f"Hello {name}!"


demo = gr.Interface(fn=greet, inputs=gr.Textbox(label="Name"), outputs=gr.Textbox(label="Greeting"))
demo.launch()
"""
STREAMLIT = """import streamlit as st

st.title("Hello from SpaceHub")
name = st.text_input("Name", "world")
st.write(f"Hello {name}!")
"""
STATIC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>Edit index.html to change this page.</p></body></html>
"""
DOCKERFILE = """FROM python:3.11-slim
WORKDIR /app
COPY index.html .
EXPOSE 7860
CMD ["python", "-m", "http.server", "7860"]
"""


def starter_files(sdk: str, title: str) -> dict[str, str]:
    """The files of a new Space's first app. Raises: BadRequest (unknown SDK)."""
    if sdk == "gradio":
        return {"app.py": GRADIO}
    if sdk == "streamlit":
        return {"app.py": STREAMLIT}
    if sdk == "static":
        return {"index.html": STATIC.format(title=title)}
    if sdk == "docker":
        return {"Dockerfile": DOCKERFILE, "index.html": STATIC.format(title=title)}
    raise BadRequest(f"Choose an SDK: {', '.join(SDKS)}")


def _ndjson(files: dict[str, str], summary: str) -> io.BytesIO:
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    for path, text in files.items():
        content = base64.b64encode(text.encode()).decode()
        lines.append({"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}})
    return io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def create_space(ctx: HubContext, token: str | None, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``body`` as `HfApi.create_repo` sends it for a Space (``name``, ``organization``, ``sdk``, ``private``,
    ``hardware``), then the starter. Raises: what create_repo and create_commit raise."""
    sdk = body.get("sdk")
    files = starter_files(sdk if isinstance(sdk, str) else "", str(body.get("name", "")))
    out = creation.create_repo(ctx, token, {**body, "type": "space"}, base_url)
    try:
        with ctx.db.transaction() as s:
            p = accounts.authenticate(s, token)
            repo = repos.get_repo(s, p, "space", out["name"], "write")
            commits.create_commit(ctx, s, p, repo, "main", _ndjson(files, f"Starter {sdk} app"))
    except HubError:
        with ctx.db.transaction() as s:
            repos.delete_repo(ctx, s, accounts.authenticate(s, token), "space", out["name"])
        raise
    return out


# ---- Space templates (`HfApi.list_space_templates`, `create_repo(space_template=…)`) ---------------------------------
TEMPLATE_NAMES = {"gradio": "Gradio", "streamlit": "Streamlit", "static": "Static HTML", "docker": "Docker"}


def list_templates() -> list[dict[str, Any]]:
    """``GET /api/spaces/templates``'s ``templates``: one per SDK, its starter app."""
    return [
        {"name": TEMPLATE_NAMES[sdk], "repoId": f"templates/{sdk}", "sdk": sdk, "preferredPrivate": False}
        for sdk in SDKS
    ]


def _template(body: dict[str, Any]) -> dict[str, Any] | None:
    """The template a create body names (by repo id, or by name in any case). Raises: BadRequest."""
    wanted = body.get("template")
    if wanted is None:
        return None
    if not isinstance(wanted, str):
        raise BadRequest("'template' must be a string")
    for t in list_templates():
        if wanted in (t["repoId"], t["sdk"]) or wanted.lower() == t["name"].lower():
            return t
    known = ", ".join(t["repoId"] for t in list_templates())
    raise BadRequest(f"Unknown Space template {wanted!r}: use one of {known} (list_space_templates)")


def template_check(ctx: HubContext, repo_type: str, body: dict[str, Any]) -> None:
    """Raises: BadRequest (an unknown template, one for another kind of repo, or for another SDK)."""
    t = _template(body)
    if t is None:
        return
    if repo_type != "space":
        raise BadRequest("'template' is for Spaces only")
    if body.get("sdk") != t["sdk"]:
        raise BadRequest(f"Template {t['repoId']} is a {t['sdk']} Space: 'sdk' must be {t['sdk']!r}")


def template_hook(ctx: HubContext, s: Any, p: Principal, repo: Repo, body: dict[str, Any]) -> None:
    """Commit the template's starter app to the new Space, in the transaction that creates it."""
    t = _template(body)
    if t is None:
        return
    files = starter_files(t["sdk"], repo.name)
    commits.create_commit(ctx, s, p, repo, "main", _ndjson(files, f"Starter {t['sdk']} app (template {t['repoId']})"))
