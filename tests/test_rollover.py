"""Days unattended: "today" rolls over at midnight without a reload (run: pytest -k soa).

Real Redis and the real worker; the app's clock is injected (`create_app(clock=...)`) and
moved across the city's midnight between two ticks of the same screen, which keeps the
signature of the first tick as a browser would.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from dashboard.app import create_app
from dashboard.pipeline.worker import Worker
from tests import dashcb
from tests.events import incident

ZONE = "Asia/Shanghai"


@pytest.fixture
def midnight(settings) -> datetime:
    """The city's last midnight (real, in the past: the worker takes events of then)."""
    now = datetime.now(settings.replace(tz=ZONE).zone)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def tile_text(node: Any, tile_id: str) -> str | None:
    """The text inside the component with this id, from a callback's JSON answer."""
    if isinstance(node, list):
        found = (tile_text(child, tile_id) for child in node)
        return next((text for text in found if text is not None), None)
    if not isinstance(node, dict):
        return None
    props = node.get("props", {})
    if props.get("id") == tile_id:
        return text_of(props.get("children"))
    return tile_text(props.get("children"), tile_id)


def text_of(node: Any) -> str:
    """All the text of a component tree."""
    if isinstance(node, list):
        return "".join(text_of(child) for child in node)
    if isinstance(node, dict):
        return text_of(node.get("props", {}).get("children"))
    return "" if node is None else str(node)


def trend_hours(answer: dict[str, Any]) -> list[str]:
    """The hours of the trend chart an update sets (a Patch of its x values)."""
    patch = answer["trend-graph.figure"]
    return next(op["params"]["value"] for op in patch["operations"]
                if op["location"] == ["data", 0, "x"])


def tick(http, sig: dict | None) -> dict[str, Any]:
    """One update of the city screen, as its browser's interval asks for it."""
    return dashcb.outputs(dashcb.post(http, "kpi-row.children", {
        "url.search": "", "tick.n_intervals": 1, "tick-sig.data": sig,
        "map-layers.value": ["incidents"], "replay.data": None, "screen-box.data": None},
        ["tick.n_intervals"]))


def test_soa001_today_resets_and_the_date_changes_at_midnight_without_a_reload(
        settings, client, geography, midnight):
    settings = settings.replace(tz=ZONE, stale_after_s=10 * 86400.0)
    at_ms = int(midnight.timestamp() * 1000)
    for n in range(3):  # yesterday evening
        client.xadd(settings.stream, incident(f"Y{n}", ts=at_ms - (10 + n) * 60_000))
    client.xadd(settings.stream, incident("T0", ts=at_ms + 10_000))  # ten seconds past midnight
    Worker(settings, client, geography, name="rollover").work(burst=True)
    clock = [midnight.timestamp() - 30]  # 23:59:30 the evening before
    app = create_app(settings, clock=lambda: clock[0])
    http = app.server.test_client()

    before = tick(http, None)
    yesterday = (midnight - timedelta(days=1)).strftime("%m-%d")
    assert before["asof-date.children"] == yesterday
    assert tile_text(before["kpi-row.children"], "kpi-today") == "3"
    assert http.get("/api/v1/summary").get_json()["incidents"]["today"] == 3

    clock[0] = midnight.timestamp() + 30  # 00:00:30: the same screen's next update
    after = tick(http, before["tick-sig.data"])
    assert after["asof-date.children"] == midnight.strftime("%m-%d")
    assert tile_text(after["kpi-row.children"], "kpi-today") == "1"  # T0 alone
    assert http.get("/api/v1/summary").get_json()["incidents"]["today"] == 1
    assert trend_hours(before)[-1] == "23:00"  # the last 24 h move on with the clock
    assert trend_hours(after)[-1] == "00:00"


def test_soa002_an_update_within_the_same_day_leaves_the_date_alone(
        settings, client, geography, midnight):
    settings = settings.replace(tz=ZONE, stale_after_s=10 * 86400.0)
    clock = [midnight.timestamp() + 3600]
    http = create_app(settings, clock=lambda: clock[0]).server.test_client()
    first = tick(http, None)
    clock[0] += 60
    again = tick(http, first["tick-sig.data"])
    assert first["asof-date.children"] == midnight.strftime("%m-%d")
    assert "asof-date.children" not in again  # unchanged: not resent
