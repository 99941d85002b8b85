"""What a change of a Space's status row means for webhooks (`services.webhooks.runtime_events`), as a table."""

from __future__ import annotations

from typing import Any

import pytest

from spacehub.services.webhooks import runtime_events


def status(stage: str, hardware: str | None = "cpu-basic") -> dict[str, Any]:
    return {"stage": stage, "hardware": hardware}


@pytest.mark.parametrize(
    ("before", "after", "events"),
    [
        (None, status("BUILDING", None), []),
        (status("BUILDING", None), status("APP_STARTING", None), []),
        (status("APP_STARTING", None), status("RUNNING"), ["running"]),  # the first start on free hardware
        (status("RUNNING"), status("RUNNING_APP_STARTING"), []),
        (status("RUNNING_APP_STARTING"), status("RUNNING", "cpu-upgrade"), ["running", "hardware_granted"]),
        (status("RUNNING", "cpu-upgrade"), status("RUNNING", "t4-small"), ["hardware_granted"]),
        (status("APP_STARTING", None), status("RUNNING", "t4-small"), ["running", "hardware_granted"]),
        (status("BUILDING", None), status("BUILD_ERROR", None), ["build_failed"]),
        (status("APP_STARTING", None), status("RUNTIME_ERROR", None), ["runtime_error"]),
        (status("RUNNING"), status("SLEEPING"), ["sleeping"]),
        (status("SLEEPING"), status("RUNNING"), ["woke", "running"]),  # thawed
        (status("SLEEPING", None), status("APP_STARTING", None), ["woke"]),  # started again after deep sleep
        (status("SLEEPING"), status("PAUSED", None), []),
        (status("RUNNING"), status("RUNNING"), []),
    ],
)
def test_runtime_events(before: dict[str, Any] | None, after: dict[str, Any], events: list[str]) -> None:
    assert runtime_events(before, after) == events


class FakeDNS:
    """What `socket.getaddrinfo` answers for each name (``spacehub.services.webhooks.socket`` is replaced)."""

    SOCK_STREAM = 1

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    def getaddrinfo(self, host: str, port: int, type: int = 0) -> list[tuple[Any, ...]]:
        if host not in self.answers:
            raise OSError("Name or service not known")
        return [(None, type, 6, "", (ip, port)) for ip in self.answers[host]]


def test_a_delivery_is_pinned_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from spacehub.services import webhooks

    monkeypatch.setattr(webhooks, "socket", FakeDNS({
        "hooks.example.com": ["93.184.216.34"],
        "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
        "rebound.example.com": ["93.184.216.34", "127.0.0.1"],
        "metadata.example.com": ["169.254.169.254"],
    }))  # fmt: skip
    t = webhooks.pin("https://hooks.example.com/hook?token=x")
    assert isinstance(t, webhooks.Target)
    assert t.url == "https://93.184.216.34:443/hook?token=x"
    assert t.headers == {"host": "hooks.example.com"} and t.extensions == {"sni_hostname": "hooks.example.com"}
    t = webhooks.pin("http://user:pw@v6.example.com:8080/p")
    assert isinstance(t, webhooks.Target)
    assert t.url == "http://user:pw@[2606:2800:220:1:248:1893:25c8:1946]:8080/p"
    assert t.headers == {"host": "v6.example.com:8080"} and t.extensions == {}
    assert "127.0.0.1, not a public address" in str(webhooks.pin("http://rebound.example.com/"))
    assert "169.254.169.254, not a public address" in str(webhooks.pin("http://metadata.example.com/"))
    assert "cannot resolve" in str(webhooks.pin("http://nowhere.example.com/"))
