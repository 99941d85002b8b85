"""Duplicating a Space from its page, over HTTP against a live server."""

from __future__ import annotations

import re

from huggingface_hub import HfApi

from tests.conftest import Server
from tests.ui.conftest import Web, scan
from tests.ui.test_pages import make_space

SOURCE_SECRET = "source-secret-d41c9a"
NEW_SECRET = "copy-secret-77b2e0"


def test_a_reader_duplicates_a_space_with_its_variables_and_new_secret_values(
    server: Server, carol: str, dave: str, unique: str
) -> None:
    source = make_space(server, carol, f"{unique}-src", title="Source")
    owner_api = HfApi(endpoint=server.url, token=server.tokens[carol])
    owner_api.add_space_variable(source, "MODEL", "gpt2")
    owner_api.add_space_secret(source, "API_KEY", SOURCE_SECRET)
    owner = Web(server)
    owner.login(carol)
    form = owner.get(f"/spaces/{source}/duplicate").text
    assert 'value="gpt2"' in form and "API_KEY" in form and SOURCE_SECRET not in form  # names only, for writers

    reader = Web(server)
    reader.login(dave)
    page = reader.get(f"/spaces/{source}/duplicate").text
    assert 'value="gpt2"' in page and "API_KEY" not in page  # a reader does not learn the secret names
    data = {"to_owner": dave, "to_name": f"{unique}-copy", "private": "1", "hardware": "cpu-basic",
            "variable_key_1": "MODEL", "variable_value_1": "gpt2-large",
            "secret_key_0": "API_KEY", "secret_value_0": NEW_SECRET}  # fmt: skip
    r = reader.form(f"/spaces/{source}/duplicate", data, page=f"/spaces/{source}/duplicate")
    assert r.status_code == 303 and r.headers["location"] == f"/spaces/{dave}/{unique}-copy"
    copy_api = HfApi(endpoint=server.url, token=server.cli("tokens", "create", dave).strip().splitlines()[-1])
    copy = f"{dave}/{unique}-copy"
    assert copy_api.space_info(copy).private is True
    assert {k: v.value for k, v in copy_api.get_space_variables(copy).items()} == {"MODEL": "gpt2-large"}
    assert set(copy_api.get_space_secrets(copy)) == {"API_KEY"}
    assert "README.md" in copy_api.list_repo_files(copy, repo_type="space")
    reader.get(r.headers["location"])
    scan(owner.pages + reader.pages, SOURCE_SECRET, NEW_SECRET)


def test_duplicate_refusals_are_shown_and_need_csrf(server: Server, carol: str, dave: str, unique: str) -> None:
    source = make_space(server, carol, f"{unique}-src2")
    reader = Web(server)
    reader.login(dave)
    page = f"/spaces/{source}/duplicate"
    r = reader.form(page, {"to_owner": carol, "to_name": "stolen"}, page=page)  # not dave's namespace
    assert r.status_code == 403 and 'id="duplicate-error"' in r.text
    r = reader.post(page, data={"to_owner": dave, "to_name": f"{unique}-x"})
    assert r.status_code == 403 and "did not come from this site" in r.text
    assert Web(server).get(page).status_code == 303  # anonymous: sign in first
    api = HfApi(endpoint=server.url, token=server.tokens[carol])
    assert not api.repo_exists(f"{dave}/{unique}-x", repo_type="space")
    assert not api.repo_exists(f"{carol}/stolen", repo_type="space")


def name_field(page: str) -> str:
    m = re.search(r'<input id="to-name" name="to_name"[^>]* value="([^"]*)"', page)
    assert m, page[:500]
    return m.group(1)


def test_the_default_name_is_free_and_a_taken_name_is_a_form_error(
    server: Server, carol: str, dave: str, unique: str
) -> None:
    """The form offers the source's name when the signed-in user has no Space of that name, else the first free
    ``{name}-N``; a taken name posted anyway is the form again with the reason and a free name (409), never a 500,
    and the values posted (never a secret's) are kept."""
    source = make_space(server, carol, f"{unique}-dup")
    owner, reader = Web(server), Web(server)
    owner.login(carol)
    reader.login(dave)
    page = f"/spaces/{source}/duplicate"
    assert name_field(reader.get(page).text) == f"{unique}-dup"  # dave has none of that name: the same name
    assert name_field(owner.get(page).text) == f"{unique}-dup-2"  # carol's own Space: a free one
    dave_api = HfApi(endpoint=server.url, token=server.cli("tokens", "create", dave).strip().splitlines()[-1])
    dave_api.create_repo(f"{dave}/{unique}-DUP", repo_type="space", space_sdk="static")  # any case is taken
    dave_api.create_repo(f"{dave}/{unique}-dup-2", repo_type="space", space_sdk="static")
    form = reader.get(page).text
    assert name_field(form) == f"{unique}-dup-3"
    assert f'<option value="{dave}" selected>' in form

    # taking the offer duplicates; then that name is taken too and the next one is offered
    r = reader.form(page, {"to_owner": dave, "to_name": name_field(form), "private": "0"}, page=page)
    assert r.status_code == 303 and r.headers["location"] == f"/spaces/{dave}/{unique}-dup-3"
    assert name_field(reader.get(page).text) == f"{unique}-dup-4"

    data = {"to_owner": dave, "to_name": f"{unique}-dup", "private": "1", "hardware": "cpu-basic",
            "secret_key_0": "API_KEY", "secret_value_0": NEW_SECRET}  # fmt: skip
    r = reader.form(page, data, page=page)  # the name is dave's already (in another case)
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    error = re.search(r'<p class="error" role="alert" id="duplicate-error">([^<]*)</p>', r.text)
    assert error and error.group(1) == (
        f"{dave}/{unique}-dup already exists: choose another name ({unique}-dup-4 is free)."
    )
    assert name_field(r.text) == f"{unique}-dup" and 'aria-describedby="duplicate-error"' in r.text
    assert 'value="1" checked> Private' in r.text  # what was posted is kept
    assert dave_api.space_info(f"{dave}/{unique}-DUP").private is False  # nothing changed
    assert not dave_api.repo_exists(f"{dave}/{unique}-dup-4", repo_type="space")
    r = reader.post(page, data={**data, "to_name": f"{unique}-dup-9"})  # no CSRF token: refused before anything
    assert r.status_code == 403 and not dave_api.repo_exists(f"{dave}/{unique}-dup-9", repo_type="space")
    scan(owner.pages + reader.pages, NEW_SECRET)
