"""The Space settings tab over HTTP against a live server: every form changes what the API then reports, refusals
say why and change nothing, and no page ever shows a secret's value."""

from __future__ import annotations

import re

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from tests.conftest import Server
from tests.ui.conftest import Web, scan

SECRET = "ui-secret-value-9f2c41d7e3"


@pytest.fixture
def space(server: Server, carol: str, unique: str) -> str:
    repo_id = f"{carol}/{unique}"
    HfApi(endpoint=server.url, token=server.tokens[carol]).create_repo(repo_id, repo_type="space", space_sdk="gradio")
    return repo_id


@pytest.fixture
def owner(server: Server, carol: str) -> Web:
    web = Web(server)
    web.login(carol)
    return web


def api(server: Server) -> HfApi:
    return HfApi(endpoint=server.url, token=server.tokens["carol"])


def post(web: Web, space: str, what: str, data: dict[str, str]) -> object:
    return web.form(f"/spaces/{space}/settings/{what}", data, page=f"/spaces/{space}/settings")


def test_a_secret_added_in_settings_reaches_the_api_and_its_value_is_never_rendered(
    server: Server, owner: Web, space: str, carol: str
) -> None:
    r = post(owner, space, "secrets", {"key": "API_KEY", "value": SECRET, "description": "for the model"})
    assert r.status_code == 303 and "done=Secret" in r.headers["location"]
    assert set(api(server).get_space_secrets(space)) == {"API_KEY"}
    page = owner.get(f"/spaces/{space}/settings").text
    assert "API_KEY" in page and "for the model" in page
    r = post(owner, space, "secrets", {"key": "SPACE_ID", "value": SECRET})  # refused: a platform name
    assert r.status_code == 400 and "SPACE_ID" in r.text and 'id="settings-error"' in r.text
    for path in ("/spaces", f"/{carol}", f"/spaces/{space}", f"/spaces/{space}/settings", "/settings/tokens"):
        owner.get(path)
    scan(owner.pages, SECRET)
    r = post(owner, space, "secrets/delete", {"key": "API_KEY"})
    assert r.status_code == 303 and api(server).get_space_secrets(space) == {}


def test_variables_are_added_and_deleted(server: Server, owner: Web, space: str) -> None:
    assert post(owner, space, "variables", {"key": "MODEL", "value": "gpt2"}).status_code == 303
    assert {k: v.value for k, v in api(server).get_space_variables(space).items()} == {"MODEL": "gpt2"}
    assert "gpt2" in owner.get(f"/spaces/{space}/settings").text
    assert post(owner, space, "variables/delete", {"key": "MODEL"}).status_code == 303
    assert api(server).get_space_variables(space) == {}


def test_hardware_this_machine_lacks_is_refused_with_the_reason(server: Server, owner: Web, space: str) -> None:
    page = owner.get(f"/spaces/{space}/settings").text
    assert "not on this machine" in page, "the picker marks flavors that cannot run here"
    unfit = page.split("not on this machine", 1)[0].rsplit('<option value="', 1)[1].split('"', 1)[0]
    r = post(owner, space, "hardware", {"flavor": unfit})
    assert r.status_code in (400, 402) and 'id="settings-error"' in r.text
    assert api(server).get_space_runtime(space).requested_hardware == "cpu-basic"
    assert post(owner, space, "hardware", {"flavor": "cpu-basic"}).status_code == 303
    r = post(owner, space, "sleep", {"seconds": "3600"})
    assert r.status_code == 303  # on free hardware: 48 h kept
    assert api(server).get_space_runtime(space).sleep_time == 172800
    page = owner.get(r.headers["location"]).text  # and the page says so, rather than "saved"
    assert "On free hardware the sleep time stays 48 hours: upgrade the hardware to choose another" in page
    assert "Sleep time saved" not in page


HUB_CHOICES = ["5 minutes", "15 minutes", "30 minutes", "1 hour", "10 hours", "24 hours", "48 hours", "72 hours",
               "1 week", "Never"]  # fmt: skip


def sleep_options(page: str) -> list[tuple[str, str, bool]]:
    """The sleep time picker's options: (value posted, label, selected)."""
    picker = page.split('<select id="sleep-seconds" name="seconds"', 1)[1].split("</select>", 1)[0]
    return [
        (v, label, bool(sel)) for v, sel, label in re.findall(r'<option value="(-?\d+)"( selected)?>([^<]*)<', picker)
    ]


def test_the_sleep_time_is_chosen_in_the_hubs_words_and_free_hardware_keeps_48_hours(
    server: Server, owner: Web, space: str
) -> None:
    page = owner.get(f"/spaces/{space}/settings").text
    options = sleep_options(page)
    assert [label for _, label, _ in options] == HUB_CHOICES
    assert [(v, label) for v, label, selected in options if selected] == [("172800", "48 hours")]
    assert '<label for="sleep-seconds">Sleep after</label>' in page
    assert "sleeps after 48 hours without a visit" in page
    assert "On free hardware (cpu-basic) it is always 48 hours: upgrade the Space's" in page  # the rule, said
    r = post(owner, space, "sleep", {"seconds": "3600"})  # "1 hour", on free hardware: the 48 hours are kept
    page = owner.get(r.headers["location"]).text
    assert "On free hardware the sleep time stays 48 hours: upgrade the hardware to choose another" in page
    assert api(server).get_space_runtime(space).sleep_time == 172800
    r = post(owner, space, "sleep", {"seconds": "soon"})  # not a choice: the API's 400, said on the tab
    assert r.status_code == 400 and "must be a whole number of seconds" in r.text and 'id="settings-error"' in r.text


def test_a_sleep_time_on_paid_hardware_is_saved(server: Server, owner: Web, carol: str, unique: str) -> None:
    org = f"paid{unique.replace('-', '')}"[:40]
    server.cli("orgs", "create", org)
    server.cli("orgs", "add-member", org, carol, "--role", "admin")
    server.cli("billing", "grant", org)  # paid hardware, as a payment card would allow
    space = f"{org}/sleepy"
    api(server).create_repo(space, repo_type="space", space_sdk="gradio")
    assert post(owner, space, "hardware", {"flavor": "cpu-upgrade"}).status_code == 303
    page = owner.get(f"/spaces/{space}/settings").text
    assert [label for _, label, selected in sleep_options(page) if selected] == ["Never"]  # upgraded: never sleeps
    assert "On upgraded hardware the Space never sleeps unless you choose a time" in page
    r = post(owner, space, "sleep", {"seconds": "36000"})
    page = owner.get(r.headers["location"]).text
    assert r.status_code == 303 and "Sleep time saved: 10 hours" in page
    assert api(server).get_space_runtime(space).sleep_time == 36000
    assert [label for _, label, selected in sleep_options(page) if selected] == ["10 hours"]
    api(server).set_space_sleep_time(space, 5400)  # a time the Hub's list lacks, set through the API: shown as it is
    options = sleep_options(owner.get(f"/spaces/{space}/settings").text)
    assert ("5400", "1 hour 30 minutes (set through the API)", True) in options
    assert [label for _, label, _ in options if "API" not in label] == HUB_CHOICES


def test_pause_restart_and_visibility(server: Server, owner: Web, space: str) -> None:
    assert post(owner, space, "pause", {}).status_code == 303
    assert api(server).get_space_runtime(space).stage == "PAUSED"
    assert post(owner, space, "restart", {}).status_code == 303
    assert api(server).get_space_runtime(space).stage != "PAUSED"
    assert post(owner, space, "visibility", {"private": "1"}).status_code == 303
    assert api(server).space_info(space).private is True
    assert post(owner, space, "visibility", {"private": "0"}).status_code == 303
    assert api(server).space_info(space).private is False


def test_delete_needs_the_name_typed(server: Server, owner: Web, space: str, carol: str) -> None:
    r = post(owner, space, "delete", {"confirm": "something else"})
    assert r.status_code == 400 and f"Type {space} to confirm" in r.text
    assert api(server).space_info(space).id == space
    r = post(owner, space, "delete", {"confirm": space})
    assert r.status_code == 303 and r.headers["location"] == f"/{carol}"
    with pytest.raises(RepositoryNotFoundError):
        api(server).space_info(space)


FORMS = [
    ("secrets", {"key": "X", "value": SECRET}),
    ("variables", {"key": "X", "value": "v"}),
    ("hardware", {"flavor": "cpu-upgrade"}),
    ("sleep", {"seconds": "-1"}),
    ("pause", {}),
    ("restart", {}),
    ("visibility", {"private": "1"}),
    ("delete", {"confirm": "{space}"}),
]


@pytest.mark.parametrize("what, data", FORMS)
def test_every_settings_form_refuses_strangers_anonymous_and_missing_csrf(
    server: Server, owner: Web, space: str, dave: str, what: str, data: dict[str, str]
) -> None:
    data = {k: v.replace("{space}", space) for k, v in data.items()}
    before = (api(server).space_info(space).private, api(server).get_space_runtime(space).stage)
    other = Web(server)
    other.login(dave)
    r = other.form(f"/spaces/{space}/settings/{what}", data)
    assert r.status_code == 403, r.text[:300]
    assert Web(server).form(f"/spaces/{space}/settings/{what}", data, page="/login").status_code == 401
    r = owner.post(f"/spaces/{space}/settings/{what}", data=data)  # the owner, but no CSRF token
    assert r.status_code == 403 and "did not come from this site" in r.text
    assert (api(server).space_info(space).private, api(server).get_space_runtime(space).stage) == before
    assert api(server).get_space_secrets(space) == {} and api(server).get_space_variables(space) == {}
    assert other.get(f"/spaces/{space}/settings").status_code == 403


def test_a_private_space_settings_tab_is_a_404_to_strangers(server: Server, space: str, dave: str) -> None:
    api(server).update_repo_settings(space, repo_type="space", private=True)
    other = Web(server)
    other.login(dave)
    assert other.get(f"/spaces/{space}/settings").status_code == 404
    r = other.form(f"/spaces/{space}/settings/secrets", {"key": "X", "value": SECRET})
    assert r.status_code == 404 and SECRET not in r.text
    assert api(server).get_space_secrets(space) == {}


def test_storage_is_requested_shown_and_deleted_from_settings(server: Server, owner: Web, space: str) -> None:
    r = post(owner, space, "storage", {"tier": "small"})
    assert r.status_code == 303 and "done=Storage+small" in r.headers["location"]
    assert api(server).get_space_runtime(space).raw.get("storage") == "small"
    page = owner.get(f"/spaces/{space}/settings").text
    assert "Tier <strong>small</strong>" in page.split('id="storage-now"', 1)[1].split("</p>", 1)[0]
    r = post(owner, space, "storage", {"tier": "huge"})  # the API's refusal, and nothing changes
    assert r.status_code == 400 and 'id="settings-error"' in r.text
    assert api(server).get_space_runtime(space).raw.get("storage") == "small"
    assert post(owner, space, "storage", {"tier": "none"}).status_code == 303
    assert api(server).get_space_runtime(space).raw.get("storage") is None


def test_a_space_is_renamed_and_transferred_from_settings(
    server: Server, owner: Web, space: str, carol: str, dave: str
) -> None:
    new_id = f"{space}-renamed"
    r = post(owner, space, "move", {"to": new_id})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/spaces/{new_id}/settings")
    assert api(server).space_info(new_id).id == new_id
    assert owner.get(f"/spaces/{new_id}/settings").status_code == 200
    old = owner.get(f"/spaces/{space}")  # the old address leads to the Space's page at its new one
    assert old.status_code == 307 and old.headers["location"] == f"/spaces/{new_id}"
    upper = owner.get(f"/spaces/{new_id.upper()}")  # as does its name in another case
    assert upper.status_code == 307 and upper.headers["location"] == f"/spaces/{new_id}"
    # into a namespace carol cannot write: the API's refusal, nothing moves
    r = post(owner, new_id, "move", {"to": f"{dave}/{new_id.split('/')[1]}"})
    assert r.status_code == 403 and 'id="settings-error"' in r.text
    assert api(server).space_info(new_id).id == new_id
    r = post(owner, new_id, "move", {"to": "not a repo id"})
    assert r.status_code == 400
    # a reader or stranger cannot move it
    stranger = Web(server)
    stranger.login(dave)
    r = stranger.form(f"/spaces/{new_id}/settings/move", {"to": f"{dave}/stolen"}, page="/spaces")
    assert r.status_code in (403, 404) and api(server).space_info(new_id).id == new_id
