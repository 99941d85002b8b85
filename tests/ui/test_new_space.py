"""`/new-space` over HTTP against a live server: the Space is created with a starter app for its SDK through the
API's use cases; refusals say why and leave nothing behind."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from tests.conftest import Server
from tests.ui.conftest import Web

STARTS = {"gradio": "app.py", "streamlit": "app.py", "static": "index.html", "docker": "Dockerfile"}


@pytest.mark.parametrize("sdk", sorted(STARTS))
def test_new_space_commits_a_starter_app_for_its_sdk(server: Server, carol: str, unique: str, sdk: str) -> None:
    web = Web(server)
    web.login(carol)
    assert 'name="sdk" value="docker"' in web.get("/new-space").text
    r = web.form("/new-space", {"owner": carol, "name": unique, "sdk": sdk, "private": "1"}, page="/new-space")
    assert r.status_code == 303 and r.headers["location"] == f"/spaces/{carol}/{unique}"
    api = HfApi(endpoint=server.url, token=server.tokens[carol])
    info = api.space_info(f"{carol}/{unique}")
    assert info.private is True and info.sdk == sdk
    assert {STARTS[sdk], "README.md"} <= set(api.list_repo_files(f"{carol}/{unique}", repo_type="space"))
    assert web.get(r.headers["location"]).status_code == 200


def test_refusals_are_shown_and_create_nothing(server: Server, carol: str, dave: str, unique: str) -> None:
    web = Web(server)
    web.login(carol)
    api = HfApi(endpoint=server.url, token=server.tokens[carol])
    r = web.form("/new-space", {"owner": carol, "name": "bad name!", "sdk": "gradio"}, page="/new-space")
    assert r.status_code == 400 and 'id="new-space-error"' in r.text and 'value="bad name!"' in r.text
    r = web.form("/new-space", {"owner": carol, "name": unique, "sdk": "cobol"}, page="/new-space")
    assert r.status_code == 400 and "Choose an SDK" in r.text
    r = web.form("/new-space", {"owner": dave, "name": unique, "sdk": "static"}, page="/new-space")
    assert r.status_code == 403
    r = web.post("/new-space", data={"owner": carol, "name": unique, "sdk": "static"})  # no CSRF token
    assert r.status_code == 403
    anonymous = Web(server)
    assert anonymous.get("/new-space").status_code == 303
    r = anonymous.form("/new-space", {"owner": carol, "name": unique, "sdk": "static"}, page="/login")
    assert r.status_code == 401
    for owner in (carol, dave):
        with pytest.raises(RepositoryNotFoundError):
            api.space_info(f"{owner}/{unique}")
    assert (
        web.form("/new-space", {"owner": carol, "name": unique, "sdk": "static"}, page="/new-space").status_code == 303
    )
    r = web.form("/new-space", {"owner": carol, "name": unique.upper(), "sdk": "static"}, page="/new-space")
    assert r.status_code == 409 and 'id="new-space-error"' in r.text  # taken (in any case): the form says so
    assert f"{carol}/{unique.upper()} already exists: choose another name ({unique.upper()}-2 is free)." in r.text
