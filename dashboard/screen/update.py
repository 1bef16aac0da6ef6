"""What a screen update sends: the outputs that changed since the signature the browser holds.

One pure function shared by the polling tick (`callbacks.tick`, per browser) and the push
process (`dashboard.push.hub`, once per area, language and scope for every screen showing
it): unchanged outputs are `no_update`, the map gets a `Patch` of the changed traces and
the new signature is among the outputs (`sig`).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import dash
from dash import Output, no_update

from dashboard.geography import Geography
from dashboard.screen import panels, timecontrol
from dashboard.screen.frame import Frame
from dashboard.screen.layout import overdue_count, screen_class, stale_text
from dashboard.screen.mapfig import figure, patch, same_shape
from dashboard.screen.source import speed
from dashboard.screen.viewport import Box
from dashboard.settings import Settings

# What a tick updates, by name (a grouped output: the callback returns a dict).
TICK_OUTPUTS = {
    "kpis": Output("kpi-row", "children"),
    "feed": Output("feed-list", "children"),
    "top": Output("top-list", "children"),
    "detail": Output("detail-body", "children"),
    "trend": Output("trend-graph", "figure"),
    "map": Output("map-graph", "figure"),
    "day": Output("asof-date", "children"),
    "as_of": Output("asof-time", "children"),
    "last_event": Output("last-event", "children"),
    "stale_text": Output("stale-banner", "children"),
    "stale_class": Output("stale-banner", "className"),
    "screen_class": Output("screen", "className"),
    "overdue": Output("overdue-list", "children"),
    "overdue_count": Output("overdue-count", "children"),
    "marker": Output("replay-marker", "children"),
    "marker_class": Output("replay-marker", "className"),
    "timebar_class": Output("timebar", "className"),
    "slider": Output("replay-slider", "value"),
    "push": Output("push-config", "data"),
    "sig": Output("tick-sig", "data"),
}


def signature(frame: Frame, key: str) -> dict[str, Any]:
    """What the browser holds after an update: the key and a hash per panel and trace."""
    return {"key": key, **frame.hashes(), "owners": frame.trace_layers, "stale": frame.stale,
            "last_event": frame.last_event, "day": frame.day}


def changes(frame: Frame, key: str, sig: dict[str, Any] | None, shown: Collection[str],
            settings: Settings, geography: Geography, moment: int | None = None,
            replay: dict[str, Any] | None = None, box: Box | None = None) -> dict[str, Any]:
    """Every tick output by name: what differs from `sig`, `no_update` for the rest.

    `shown` are the visible layers (hidden traces keep their old hashes and are sent
    once shown); `moment` is the replayed moment (None: live); `box` the map's real
    box as the browser reported it (None for push, which serves many screens: the
    page keeps its own fit, `assets/push.js`).
    """
    new = signature(frame, key)
    marker, marker_class = timecontrol.marker(moment, replay, settings)
    new["replay"] = marker
    old = sig if sig and sig.get("key") == key else {}

    def changed(name: str, make: Any) -> Any:
        return make() if old.get(name) != new[name] else no_update

    map_update: Any = no_update
    if not old or not same_shape(old.get("traces") or [], new["traces"]):
        map_update = figure(frame, geography, shown, settings.tile_url, box)
    elif old["traces"] != new["traces"]:
        map_patch, new["traces"] = patch(frame, old["traces"], new["traces"], shown, box)
        if map_patch is not None:
            map_update = map_patch
    trend_update: Any = no_update
    if old.get("trend") != new["trend"]:
        trend_update = dash.Patch()
        trend_update["data"][0]["x"] = frame.trend["x"]
        trend_update["data"][0]["y"] = frame.trend["y"]
        trend_update["layout"]["xaxis"]["tickvals"] = frame.trend["x"][::4]
    stale_changed = old.get("stale") != new["stale"] or frame.stale
    replay_changed = old.get("replay") != marker
    playing = moment is not None and speed(replay) > 0
    slider = (timecontrol.slider_value(moment, int(time.time() * 1000))
              if playing and replay_changed else no_update)  # the slider follows the play
    return {
        "kpis": changed("kpis", lambda: panels.kpi_row(frame)),
        "feed": changed("feed", lambda: panels.feed_items(frame)),
        "top": changed("top", lambda: panels.top_items(frame)),
        "detail": changed("detail", lambda: panels.detail_body(frame)),
        "trend": trend_update,
        "map": map_update,
        "day": changed("day", lambda: frame.day),  # rolls over at midnight, no reload
        "as_of": no_update if frame.error else frame.as_of,  # the time of the last good read
        "last_event": changed("last_event", lambda: frame.last_event),
        "stale_text": stale_text(frame, settings) if stale_changed else no_update,
        "stale_class": ("stale-banner" + ("" if frame.stale else " hidden"))
        if stale_changed else no_update,
        "screen_class": screen_class(frame, moment is not None)
        if stale_changed or replay_changed else no_update,
        "overdue": changed("overdue", lambda: panels.overdue_items(frame)),
        "overdue_count": changed("kpis", lambda: overdue_count(frame)),
        "marker": marker if replay_changed else no_update,
        "marker_class": marker_class if replay_changed else no_update,
        "timebar_class": ("timebar" + (" replaying" if moment is not None else ""))
        if replay_changed else no_update,
        "slider": slider,
        "push": no_update,  # the polling tick says when push comes up (callbacks.tick)
        "sig": new,
    }

