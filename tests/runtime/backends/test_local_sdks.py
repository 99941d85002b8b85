"""The real SDKs: gradio and streamlit installed by uv from the package index, answering HTTP (slow: downloads)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from spacehub.runtime.backends.local import LocalProcessBackend
from tests.runtime.backends.conftest import README, SpaceRepo, build_spec, release_spec, wait_http

pytestmark = pytest.mark.slow

GRADIO_APP = """
import gradio as gr

def greet(name):
    return "Hello " + name

gr.Interface(fn=greet, inputs="text", outputs="text").launch()
"""

STREAMLIT_APP = """
import streamlit as st

st.write("hello from streamlit")
"""


def run_sdk(
    make_backend: Callable[..., LocalProcessBackend], repo: SpaceRepo, tmp_path: Path, sdk: str, app: str, **kw: str
) -> tuple[LocalProcessBackend, str, list[str]]:
    backend = make_backend(sdk_packages={})
    sha = repo.commit({"app.py": app, "README.md": README.format(sdk=sdk)})
    lines: list[str] = []
    started = time.monotonic()
    backend.build(build_spec(repo, sha, sdk=sdk, **kw), lines.append)
    print(f"{sdk}: build {time.monotonic() - started:.1f}s")
    started = time.monotonic()
    ep = backend.start(release_spec(repo, sdk=sdk))
    base = f"http://{ep.host}:{ep.port}"
    wait_http(base + ("/_stcore/health" if sdk == "streamlit" else "/"), timeout=120)
    print(f"{sdk}: start to HTTP 200 {time.monotonic() - started:.1f}s")
    return backend, base, lines


def test_a_real_gradio_interface_answers(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    backend, base, lines = run_sdk(make_backend, space_repo, tmp_path, "gradio", GRADIO_APP)
    assert any("+ gradio==" in line for line in lines)
    assert "gradio" in httpx.get(base + "/").text.lower()
    assert httpx.get(base + "/config").status_code == 200
    log = (tmp_path / "run.log").read_text()
    assert "Running on local URL:  http://127.0.0.1:" in log
    st = backend.status("r1")
    assert st is not None and st.running


def test_a_real_streamlit_app_answers(
    make_backend: Callable[..., LocalProcessBackend], space_repo: SpaceRepo, tmp_path: Path
) -> None:
    _, base, lines = run_sdk(make_backend, space_repo, tmp_path, "streamlit", STREAMLIT_APP, sdk_version="1.67.0")
    assert any("+ streamlit==1.67.0" in line for line in lines)
    assert httpx.get(base + "/").status_code == 200
