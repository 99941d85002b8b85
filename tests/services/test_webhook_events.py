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
