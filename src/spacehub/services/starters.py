"""Use case of the "new Space" page: create a Space (`creation.create_repo`, the `HfApi.create_repo` use case) and
commit a starter app for its SDK (`commits.create_commit`, the `HfApi.create_commit` use case), so that it builds
and runs at once. If the starter cannot be committed the new Space is deleted again: the page makes both or none."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from spacehub.errors import BadRequest, HubError
from spacehub.services import accounts, commits, creation, repos
from spacehub.services.context import HubContext

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
