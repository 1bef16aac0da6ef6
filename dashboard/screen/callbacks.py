"""The screen's callbacks: render on selection, update in place on every tick.

Every callback reads the state through `source` (the process's shared cache,
restricted to the user's scope, or a replay of the past when the time control
says so), never Redis itself, and the frame computed from a view is shared by
all clients (`frame_for`). A tick sends only what changed
since the signature the browser holds (`tick-sig`): unchanged panels are
`no_update`, the map gets a `Patch` of the changed traces.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import dash
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, no_update
from dash import _callback as dash_callbacks
from werkzeug.exceptions import Forbidden

from dashboard.auth.guard import access, current_user, in_scope
from dashboard.screen import panels, refusal, source
from dashboard.screen.frame import Frame
from dashboard.screen.layout import overdue_count, screen, screen_class, selection, stale_text
from dashboard.screen.mapfig import figure, patch, same_shape, visibility
from dashboard.services import current
from dashboard.state.replay import ReplayBusy
from layers import LAYERS

LIVE = {"at": None}  # the time control's choice "live"
_BEFORE_MAP = set(dash_callbacks.GLOBAL_CALLBACK_MAP)
_BEFORE_LIST = len(dash_callbacks.GLOBAL_CALLBACK_LIST)


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


@callback(Output("screen-root", "children"), Input("url", "search"), State("replay", "data"))
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


@callback(Output("url-fix", "search"), Input("url", "search"))
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


@callback(
    Output("kpi-row", "children"),
    Output("feed-list", "children"),
    Output("top-list", "children"),
    Output("detail-body", "children"),
    Output("trend-graph", "figure"),
    Output("map-graph", "figure"),
    Output("asof-time", "children"),
    Output("last-event", "children"),
    Output("stale-banner", "children"),
    Output("stale-banner", "className"),
    Output("screen", "className"),
    Output("overdue-list", "children"),
    Output("overdue-count", "children"),
    Output("replay-marker", "children"),
    Output("replay-marker", "className"),
    Output("timebar", "className"),
    Output("replay-slider", "value"),
    Output("tick-sig", "data"),
    Input("tick", "n_intervals"),
    State("url", "search"),
    State("tick-sig", "data"),
    State("map-layers", "value"),
    Input("replay", "data"),
    prevent_initial_call=True,
)
def tick(_: int, search: str | None, sig: dict[str, Any] | None,
         visible: list[str] | None, replay: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """Send what changed since the browser's signature; everything if it is behind.

    While looking back the frame is the replay at the chosen moment (moving forward
    while playing); the same signature logic sends only what differs. A replay not
    ready yet (`ReplayBusy`) changes only the marker: the next tick continues it.
    """
    services = current()
    try:
        frame, key, moment = source.frame(search, replay)
    except ReplayBusy as busy:  # keep what is shown; the marker says why it has not moved
        moment = source.replay_moment(replay, search, services.settings)
        text, css = timecontrol.marker(moment, replay, services.settings, busy)
        return (*(no_update,) * 13, text, css, "timebar replaying", no_update,
                {**(sig or {}), "replay": text})
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
    return (
        changed("kpis", lambda: panels.kpi_row(frame)),
        changed("feed", lambda: panels.feed_items(frame)),
        changed("top", lambda: panels.top_items(frame)),
        changed("detail", lambda: panels.detail_body(frame)),
        trend_update,
        map_update,
        no_update if frame.error else frame.as_of,  # keep the time of the last good read
        changed("last_event", lambda: frame.last_event),
        stale_text(frame, services.settings) if stale_changed else no_update,
        ("stale-banner" + ("" if frame.stale else " hidden")) if stale_changed else no_update,
        screen_class(frame, moment is not None) if stale_changed or replay_changed
        else no_update,
        changed("overdue", lambda: panels.overdue_items(frame)),
        changed("kpis", lambda: overdue_count(frame)),
        marker if replay_changed else no_update,
        marker_class if replay_changed else no_update,
        ("timebar" + (" replaying" if moment is not None else "")) if replay_changed
        else no_update,
        slider,
        new,
    )


@callback(
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


@callback(
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
        points = (click or {}).get("points") or []
        target = next((p.get("location") for p in points
                       if p.get("location") in geography.areas), None)
    else:
        target = picked
    if (not target or target == area or target not in geography.areas
            or not in_scope(current_user(), target, geography)):
        return no_update
    query = parse_qs((search or "").lstrip("?"))
    keep = f"&lang={lang}" if query.get("lang") else ""
    return f"?area={target}{keep}"


clientside_callback(
    ClientsideFunction(namespace="cockpit", function_name="clock"),
    Output("clock", "children"),
    Input("clock-tick", "n_intervals"),
    State("clock-tz", "data"),
)


# The officials' parts register their callbacks when imported, here, so that they are
# taken out of Dash's global registry with this module's own (below).
from dashboard.screen import audit_view, incident_panel, officials, timecontrol  # noqa: E402

# `dash.callback` puts callbacks into Dash's global registry, which the first app
# that serves a request takes and empties. `create_app` builds one app per call
# (the tests build many in one process), so this module keeps its own entries,
# takes them out of the global registry, and `attach` gives each app a copy.
_MAP = {k: v for k, v in dash_callbacks.GLOBAL_CALLBACK_MAP.items() if k not in _BEFORE_MAP}
_LIST = list(dash_callbacks.GLOBAL_CALLBACK_LIST[_BEFORE_LIST:])
for _key in _MAP:
    del dash_callbacks.GLOBAL_CALLBACK_MAP[_key]
del dash_callbacks.GLOBAL_CALLBACK_LIST[_BEFORE_LIST:]


def attach(app: dash.Dash) -> None:
    """Give an app the screen's callbacks."""
    app.callback_map.update(_MAP)
    app._callback_list.extend(_LIST)
