"""Times in words on the pages (pure logic; the pages themselves: tests/ui/test_settings.py, test_accounts.py)."""

from __future__ import annotations

from markupsafe import Markup

from spacehub.ui.space_settings import SLEEP_CHOICES, human_duration, sleep_view
from spacehub.ui.web import when

FLAVORS = [{"name": "cpu-basic", "unitCostUSD": 0}, {"name": "cpu-upgrade", "unitCostUSD": 0.0005}]


def view(gc_timeout: int | None, flavor: str) -> dict:
    return {"runtime": {"gcTimeout": gc_timeout, "hardware": {"requested": flavor}}, "flavors": FLAVORS}


def test_durations_read_as_people_say_them() -> None:
    assert [human_duration(v) for v, _ in SLEEP_CHOICES][:4] == ["5 minutes", "15 minutes", "30 minutes", "1 hour"]
    assert human_duration(604800) == "1 week" and human_duration(-1) == human_duration(None) == "never"
    assert human_duration(5400) == "1 hour 30 minutes"
    assert human_duration(694861) == "1 week 1 day 1 hour 1 minute 1 second"
    assert human_duration(7) == "7 seconds"


def test_the_rule_of_free_hardware_and_a_time_set_through_the_api() -> None:
    free = sleep_view(view(172800, "cpu-basic"), custom_on_free=False)
    assert free["fixed"] and free["free"] and free["current"] == 172800 and free["now"] == "48 hours"
    assert free["choices"] == list(SLEEP_CHOICES)
    assert sleep_view(view(172800, "cpu-basic"), custom_on_free=True)["fixed"] is False  # the admin allows a choice
    paid = sleep_view(view(None, "cpu-upgrade"), custom_on_free=False)
    assert not paid["free"] and paid["current"] == -1 and paid["now"] == "never"
    odd = sleep_view(view(100, "cpu-upgrade"), custom_on_free=False)["choices"]
    assert odd[0] == (100, "1 minute 40 seconds (set through the API)") and odd[-1] == (-1, "Never")


def test_timestamps_read_as_people_say_them_and_keep_the_exact_value() -> None:
    exact = "2026-12-06T20:39:01.709Z"
    assert str(when(exact)) == f'<time datetime="{exact}">2026-12-06 20:39 UTC</time>'
    assert str(when("2026-12-06T21:39:01+01:00")).endswith(">2026-12-06 20:39 UTC</time>")  # in UTC
    assert when(None, "never") == "never" and when("") == ""
    odd = when('"><script>')  # not a timestamp: the text as it is, plain (the template escapes it), never markup
    assert odd == '"><script>' and not isinstance(odd, Markup)
