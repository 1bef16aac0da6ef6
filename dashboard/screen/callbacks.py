"""The screen's callbacks: render on selection, update in place on every tick.

Every callback reads the state through `source` (the process's shared cache,
restricted to the user's scope, or a replay of the past when the time control
says so), never Redis itself, and the frame computed from a view is shared by
all clients (kept on the view, freed with it). A tick sends only what changed
since the signature the browser holds (`tick-sig`): unchanged panels are
`no_update`, the map gets a `Patch` of the changed traces.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import dash
from dash import ClientsideFunction, Input, Output, State, no_update
from werkzeug.exceptions import Forbidden

from dashboard.auth.guard import access, current_user, in_scope
from dashboard.metrics.web import web_metrics
from dashboard.screen import (
    audit_view,
    incident_panel,
    officials,
    panels,
    refusal,
    source,
    timecontrol,
)
from dashboard.screen.frame import Frame
from dashboard.screen.layout import overdue_count, screen, screen_class, selection, stale_text
from dashboard.screen.mapfig import figure, patch, same_shape, visibility
from dashboard.screen.registry import SCREEN
from dashboard.services import current
from dashboard.state.replay import ReplayBusy
from dashboard.viewer import viewer_id
from layers import LAYERS
from layers.incidents import DRILL

LIVE = {"at": None}  # the time control's choice "live"
# What a tick updates, by name (a grouped output: the callback returns a dict).
TICK_OUTPUTS = {
    "kpis": Output("kpi-row", "children"),
    "feed": Output("feed-list", "children"),
    "top": Output("top-list", "children"),
    "detail": Output("detail-body", "children"),
    "trend": Output("trend-graph", "figure"),
    "map": Output("map-graph", "figure"),
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
    "sig": Output("tick-sig", "data"),
}


def _frame(search: str | None, replay: dict[str, Any] | None = None) -> tuple[Frame, str]:
    """The frame for the URL's area (and the chosen moment), checked against the user's scope.

    An area outside the scope answers 403 (logged and audited); the view the frame is
    computed from holds nothing outside the scope, so no panel or trace can show it.
    """
    frame, key, _ = source.frame(search, replay)
    return frame, key


def _signature(frame: Frame, key: str) -> dict[str, Any]:
    return {"key": key, **frame.hashes(), "owners": frame.trace_layers, "stale": frame.stale,
            "last_event": frame.last_event}


@SCREEN.callback(Output("screen-root", "children"), Input("url", "search"), State("replay", "data"))
def render(search: str | None, replay: dict[str, Any] | None = None) -> Any:
    """Draw the whole screen for the area and language in the URL (and the chosen moment).

    While the chosen moment's replay is not ready the screen is drawn live, its marker
    saying that the moment is being prepared; a tick shows the moment once it is.
    """
    services = current()
    busy: ReplayBusy | None = None
    try:
        frame, key, moment = source.frame(search, replay)
    except Forbidden:  # logged and audited; `keep_in_scope` sends the URL back
        return refusal.refused(selection(search, services.geography, services.settings.lang)[1])
    except ReplayBusy as exc:
        busy, moment = exc, source.replay_moment(replay, search, services.settings)
        frame, key, _ = source.frame(search, LIVE)
    user = current_user()
    lang = frame.lang
    return screen(
        frame, services.geography, services.settings, _signature(frame, key), user.scope,
        user_box=officials.user_box(user, access().open_mode(), services.geography, lang),
        timebar=timecontrol.timebar(lang, moment, replay, services.settings, busy),
        incident_panel=incident_panel.panel(lang, user, services.settings),
        overlays=[audit_view.audit_modal(lang)] if user.role == "city" else [],
        replaying=moment is not None,
        export_href=None if user.role == "wall" else
        f"/api/v1/export/incidents.csv?area_id={frame.area_id}&lang={lang}")


@SCREEN.callback(Output("url-fix", "search"), Input("url", "search"))
def keep_in_scope(search: str | None) -> Any:
    """Send a URL asking for an area outside the user's scope back to their own area."""
    services = current()
    user = current_user()
    area, lang = selection(search, services.geography, services.settings.lang, user.scope)
    if in_scope(user, area, services.geography):
        return no_update
    query = parse_qs((search or "").lstrip("?"))
    keep = f"&lang={lang}" if query.get("lang") else ""
    return f"?area={user.scope}{keep}"


@SCREEN.callback(
    output=TICK_OUTPUTS,
    inputs={"_": Input("tick", "n_intervals"), "search": State("url", "search"),
            "sig": State("tick-sig", "data"), "visible": State("map-layers", "value"),
            "replay": Input("replay", "data")},
    prevent_initial_call=True,
)
def tick(_: int, search: str | None, sig: dict[str, Any] | None,
         visible: list[str] | None, replay: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send what changed since the browser's signature; everything if it is behind.

    While looking back the frame is the replay at the chosen moment (moving forward
    while playing); the same signature logic sends only what differs. A replay not
    ready yet (`ReplayBusy`) changes only the marker: the next tick continues it.
    """
    services = current()
    web_metrics().ticks.inc()
    services.screens.seen(viewer_id(), time.time())
    try:
        frame, key, moment = source.frame(search, replay)
    except ReplayBusy as busy:  # keep what is shown; the marker says why it has not moved
        moment = source.replay_moment(replay, search, services.settings)
        text, css = timecontrol.marker(moment, replay, services.settings, busy)
        return {**dict.fromkeys(TICK_OUTPUTS, no_update), "marker": text, "marker_class": css,
                "timebar_class": "timebar replaying", "sig": {**(sig or {}), "replay": text}}
    new = _signature(frame, key)
    marker, marker_class = timecontrol.marker(moment, replay, services.settings)
    new["replay"] = marker
    old = sig if sig and sig.get("key") == key else {}

    def changed(name: str, make: Any) -> Any:
        return make() if old.get(name) != new[name] else no_update

    shown = visible if visible is not None else [
        layer.id for layer in LAYERS if layer.default_visible]
    map_update: Any = no_update
    if not old or not same_shape(old.get("traces") or [], new["traces"]):
        map_update = figure(frame, services.geography, shown, services.settings.tile_url)
    elif old["traces"] != new["traces"]:
        map_patch, new["traces"] = patch(frame, old["traces"], new["traces"], shown)
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
    playing = moment is not None and source.speed(replay) > 0
    slider = (timecontrol.slider_value(moment, int(time.time() * 1000))
              if playing and replay_changed else no_update)  # the slider follows the play
    return {
        "kpis": changed("kpis", lambda: panels.kpi_row(frame)),
        "feed": changed("feed", lambda: panels.feed_items(frame)),
        "top": changed("top", lambda: panels.top_items(frame)),
        "detail": changed("detail", lambda: panels.detail_body(frame)),
        "trend": trend_update,
        "map": map_update,
        "as_of": no_update if frame.error else frame.as_of,  # the time of the last good read
        "last_event": changed("last_event", lambda: frame.last_event),
        "stale_text": stale_text(frame, services.settings) if stale_changed else no_update,
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
        "sig": new,
    }


@SCREEN.callback(
    Output("map-graph", "figure", allow_duplicate=True),
    Output("map-legend", "children"),
    Input("map-layers", "value"),
    State("tick-sig", "data"),
    State("url", "search"),
    prevent_initial_call="initial_duplicate",
)
def switch_layers(visible: list[str] | None, sig: dict[str, Any] | None,
                  search: str | None) -> tuple[Any, Any]:
    """Show the chosen layers and their legends."""
    visible = visible or []
    _, lang = selection(search, current().geography, current().settings.lang)
    legends = panels.legend_box([layer.legend(lang) for layer in LAYERS if layer.id in visible])
    if not sig:
        return no_update, legends
    return visibility(sig["owners"], visible), legends


def clicked_area(points: list[dict[str, Any]], geography: Any) -> str | None:
    """The area a map click selects: a filled area, or the area of a counted bubble."""
    for point in points:
        location = point.get("location")
        if location in geography.areas:
            return str(location)
        custom = point.get("customdata")
        if isinstance(custom, list) and custom and isinstance(custom[0], str):
            area = custom[0].removeprefix(DRILL)
            if custom[0].startswith(DRILL) and area in geography.areas:
                return area
    return None


@SCREEN.callback(
    Output("url", "search"),
    Input("map-graph", "clickData"),
    Input("area-picker", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def select(click: dict[str, Any] | None, picked: str | None, search: str | None) -> Any:
    """A click on an area or a pick from the list selects it (and puts it in the URL)."""
    geography = current().geography
    area, lang = selection(search, geography, current().settings.lang)
    if dash.ctx.triggered_id == "map-graph":
        target = clicked_area((click or {}).get("points") or [], geography)
    else:
        target = picked
    if (not target or target == area or target not in geography.areas
            or not in_scope(current_user(), target, geography)):
        return no_update
    query = parse_qs((search or "").lstrip("?"))
    keep = f"&lang={lang}" if query.get("lang") else ""
    return f"?area={target}{keep}"


SCREEN.clientside_callback(
    ClientsideFunction(namespace="cockpit", function_name="clock"),
    Output("clock", "children"),
    Input("clock-tick", "n_intervals"),
    State("clock-tz", "data"),
)


def attach(app: dash.Dash) -> None:
    """Give an app the screen's callbacks (this module's and the officials' parts')."""
    SCREEN.attach(app)
