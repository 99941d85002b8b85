"""The grant exchange on a Space's host (`proxy.grants`): ``?__sign=`` leaves the URL at once, a valid grant becomes
the Space host's cookie, and the app sees neither the grant nor the cookie."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spacehub.proxy import RouteTarget, StaticRouteTable
from tests.proxy.conftest import Proxy, Upstream, start_proxy

GRANT, COOKIE = "grant-for-secret", "sg.cookie-for-secret"


@pytest.fixture
def granted(upstream: Upstream) -> Iterator[Proxy]:
    table = StaticRouteTable(readers={"alice/secret": {COOKIE}}, grants={("alice/secret", GRANT): COOKIE})
    table.set("secret.localhost", RouteTarget.to_upstream("alice/secret", "127.0.0.1", upstream.port, private=True))
    table.set("other.localhost", RouteTarget.to_upstream("alice/other", "127.0.0.1", upstream.port, private=True))
    px = start_proxy(table)
    yield px
    px.server.should_exit = True
    px.thread.join(10)


def test_a_grant_becomes_a_host_cookie_and_leaves_the_url(granted: Proxy) -> None:
    with granted.client("secret") as c:
        r = c.get("/echo", params={"a": "1", "__sign": GRANT, "b": "2"})
        assert r.status_code == 303 and r.headers["location"] == "/echo?a=1&b=2"
        assert r.headers["set-cookie"].startswith(f"spacehub_token={COOKIE}; Path=/;")
        assert "Partitioned" in r.headers["set-cookie"] and "Domain" not in r.headers["set-cookie"]
        seen = c.get("/echo", headers={"cookie": f"spacehub_token={COOKIE}; theme=dark"}).json()
    names = {n.lower(): v for n, v in seen["headers"]}
    assert names["cookie"] == "theme=dark" and COOKIE not in str(seen) and GRANT not in str(seen)


def test_a_grant_for_another_space_or_a_lookalike_parameter_sets_nothing(granted: Proxy) -> None:
    with granted.client("other") as c:
        r = c.get("/", params={"__sign": GRANT})
        assert r.status_code == 303 and "set-cookie" not in r.headers and r.headers["location"] == "/"
        assert c.get("/", headers={"cookie": f"spacehub_token={COOKIE}"}).status_code == 404
    with granted.client("secret") as c:
        r = c.get("/echo", params={"x__sign": GRANT}, headers={"cookie": f"spacehub_token={COOKIE}"})
        assert r.status_code == 200  # not a grant parameter: forwarded, no redirect loop
        r = c.get("/", params=[("__sign", GRANT), ("__sign", GRANT)])
        assert r.status_code == 303 and "set-cookie" not in r.headers  # two grants: neither
