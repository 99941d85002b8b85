"""Sign-in, sessions, CSRF and the tokens page, over HTTP against a live server (as a browser posts forms)."""

from __future__ import annotations

import re

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import Server
from tests.ui.conftest import PASSWORD, Web, create_web_user, scan


def test_sign_in_sets_a_signed_httponly_lax_session_cookie(web: Web, carol: str) -> None:
    assert "Sign in" in web.get("/spaces").text
    r = web.login(carol)
    assert r.headers["location"] == "/spaces"
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("spacehub_session="))
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags, cookie
    assert not any(f.startswith("domain=") for f in flags), "host-only: a Space's host must never receive it"
    page = web.get("/spaces").text
    assert f'href="/{carol}"' in page and "Sign out" in page


@pytest.mark.parametrize("name, password", [("carol", "wrong password"), ("nobody-here", PASSWORD), ("carol", "")])
def test_bad_credentials_are_401_with_one_message_and_no_session(
    server: Server, carol: str, name: str, password: str
) -> None:
    web = Web(server)
    r = web.form("/login", {"username": name, "password": password}, page="/login")
    assert r.status_code == 401 and "Invalid user name or password" in r.text
    assert "spacehub_session" not in r.headers.get("set-cookie", "")
    assert "Sign out" not in web.get("/spaces").text


def test_sign_in_attempts_are_rate_limited_per_user(server: Server) -> None:
    create_web_user(server, "erin")
    web = Web(server)
    for _ in range(5):
        assert web.form("/login", {"username": "erin", "password": "guess-guess"}, page="/login").status_code == 401
    r = web.form("/login", {"username": "erin", "password": PASSWORD}, page="/login")  # even the right one
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "Too many failed sign-ins" in r.text
    assert "spacehub_session" not in r.headers.get("set-cookie", "")


def test_a_post_without_a_valid_csrf_token_is_403_and_changes_nothing(server: Server, carol: str) -> None:
    web = Web(server)
    web.login(carol)
    before = web.get("/settings/tokens").text
    other = Web(server)
    foreign = other.csrf("/login")  # a valid token, for another browser's cookie
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 64}, {"csrf_token": foreign}):
        r = web.post("/settings/tokens", data={"name": "sneaky", "role": "write", **data})
        assert r.status_code == 403 and "did not come from this site" in r.text
    assert "sneaky" not in web.get("/settings/tokens").text and before.count("<tr>") == web.pages[-1].count("<tr>")
    # sign-in and sign-out forms too
    r = other.post("/login", data={"username": carol, "password": PASSWORD})
    assert r.status_code == 403 and "spacehub_session" not in r.headers.get("set-cookie", "")
    assert web.post("/logout", data={}).status_code == 403
    assert "Sign out" in web.get("/spaces").text  # still signed in


def test_tokens_page_makes_a_token_the_python_client_uses_then_revokes_it(server: Server, carol: str) -> None:
    web = Web(server)
    web.login(carol)
    r = web.form("/settings/tokens", {"name": "laptop", "role": "read"}, page="/settings/tokens")
    assert r.status_code == 201 and "shown only once" in r.text
    value = r.text.split('id="new-token" class="mono" readonly value="', 1)[1].split('"', 1)[0]
    api = HfApi(endpoint=server.url, token=value)
    me = api.whoami()
    assert me["name"] == carol and me["auth"]["accessToken"]["role"] == "read"
    with pytest.raises(HfHubHTTPError):  # a read token cannot create
        api.create_repo(f"{carol}/from-read-token", repo_type="space", space_sdk="static")
    listing = web.get("/settings/tokens").text
    assert "laptop" in listing and value not in listing  # shown once: never again
    row = listing.split("<td>laptop</td>", 1)[1].split("</tr>", 1)[0]  # dates as people read them, exact in <time>
    assert re.search(r'<td><time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time></td>', row)
    assert "<td><time" in row.split("</td>", 2)[2] and "Z</td>" not in row  # last used (by whoami above)
    token_id = listing.split("laptop", 1)[1].split('action="/settings/tokens/', 1)[1].split("/", 1)[0]
    r = web.form(f"/settings/tokens/{token_id}/delete", {}, page="/settings/tokens")
    assert r.status_code == 303
    with pytest.raises(HfHubHTTPError) as e:
        api.whoami()
    assert e.value.response.status_code == 401
    scan([p for p in web.pages if "shown only once" not in p], value)  # only the creation page showed it


def test_another_user_cannot_revoke_a_token_that_is_not_theirs(server: Server, carol: str, dave: str) -> None:
    owner = Web(server)
    owner.login(carol)
    r = owner.form("/settings/tokens", {"name": "keep-me", "role": "write"}, page="/settings/tokens")
    value = r.text.split('readonly value="', 1)[1].split('"', 1)[0]
    token_id = owner.get("/settings/tokens").text.split("keep-me", 1)[1].split('action="/settings/tokens/', 1)[1]
    token_id = token_id.split("/", 1)[0]
    other = Web(server)
    other.login(dave)
    r = other.form(f"/settings/tokens/{token_id}/delete", {}, page="/settings/tokens")
    assert r.status_code == 404
    anonymous = Web(server)
    r = anonymous.form(f"/settings/tokens/{token_id}/delete", {}, page="/login")
    assert r.status_code == 401
    assert HfApi(endpoint=server.url, token=value).whoami()["name"] == carol


def test_pages_that_need_a_user_send_anonymous_visitors_to_sign_in(web: Web) -> None:
    r = web.get("/settings/tokens")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/settings/tokens"


def test_sign_out_ends_the_session_for_good(server: Server, carol: str) -> None:
    web = Web(server)
    web.login(carol)
    cookie = web.cookies["spacehub_session"]
    r = web.form("/logout", {})
    assert r.status_code == 303
    replay = Web(server)
    replay.cookies.set("spacehub_session", cookie)
    assert "Sign out" not in replay.get("/spaces").text  # the session token was deleted, not just the cookie
    assert replay.get("/settings/tokens").status_code == 303


def test_a_tampered_or_foreign_session_cookie_is_anonymous(server: Server, carol: str) -> None:
    web = Web(server)
    web.login(carol)
    signed = web.cookies["spacehub_session"]
    token = signed.split(".", 1)[0]
    for value in (token, signed[:-2] + "AA", "hf_" + "a" * 34):
        forged = Web(server)
        forged.cookies.set("spacehub_session", value)
        assert "Sign out" not in forged.get("/spaces").text
    # the session token is not an API token's equivalent for outsiders: it is only in an HttpOnly cookie, but it
    # does carry the API's permission checks (the pages call the same use cases)
    assert httpx.get(f"{server.url}/api/whoami-v2", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_next_never_leaves_the_site(server: Server, carol: str) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        web = Web(server)
        r = web.form("/login", {"username": carol, "password": PASSWORD, "next": target}, page="/login")
        assert r.status_code == 303 and r.headers["location"] == "/spaces"
