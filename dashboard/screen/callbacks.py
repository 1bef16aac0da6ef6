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
import redis
from dash import ClientsideFunction, Input, Output, State, no_update
from werkzeug.exceptions import Forbidden

from dashboard.auth.guard import access, current_user, in_scope
from dashboard.metrics.web import web_metrics
from dashboard.screen import (
    alert_card,
    audit_view,
    incident_panel,
    officials,
    panels,
    rankings_view,
    refusal,
    source,
    timecontrol,
    tour,
    update,
)
from dashboard.screen.frame import Frame
from dashboard.screen.layout import screen, selection
from dashboard.screen.mapfig import refit, visibility
from dashboard.screen.registry import SCREEN
from dashboard.screen.update import TICK_OUTPUTS
from dashboard.screen.viewport import Box
from dashboard.services import current
from dashboard.state.replay import ReplayBusy
from dashboard.viewer import viewer_id
from layers import LAYERS
from layers.incidents import DRILL

LIVE = {"at": None}  # the time control's choice "live"


def _frame(search: str | None, replay: dict[str, Any] | None = None) -> tuple[Frame, str]:
    """The frame for the URL's area (and the chosen moment), checked against the user's scope.

    An area outside the scope answers 403 (logged and audited); the view the frame is
    computed from holds nothing outside the scope, so no panel or trace can show it.
    """
    frame, key, _ = source.frame(search, replay)
    return frame, key


@SCREEN.callback(Output("screen-root", "children"), Input("url", "search"), State("replay", "data"),
                 State("screen-box", "data"))
def render(search: str | None, replay: dict[str, Any] | None = None, box: Any = None) -> Any:
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
        frame, services.geography, services.settings, update.signature(frame, key), user.scope,
        user_box=officials.user_box(user, access().open_mode(), services.geography, lang),
        timebar=timecontrol.timebar(lang, moment, replay, services.settings, busy),
        incident_panel=incident_panel.panel(lang, user, services.settings),
        overlays=[rankings_view.rankings_modal(lang, user, rankings_view.wanted(search)),
                  *([audit_view.audit_modal(lang)] if user.role == "city" else []),
                  alert_card.card(lang, user, services.settings),
                  tour.parts(search, user, services.settings, services.geography, lang,
                             _own_tour(user.name))],
        replaying=moment is not None, push=_push_config(lang),
        export_href=None if user.role == "wall" else
        f"/api/v1/export/incidents.csv?area_id={frame.area_id}&lang={lang}",
        box=Box.parse(box), search=search or "")


def _own_tour(name: str) -> tuple[list[str], float | None] | None:
    """The account's own tour; none while Redis is away (the screen shows it is stale)."""
    try:
        return access().store.tour_of(name)
    except redis.RedisError:
        return None


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
            "replay": Input("replay", "data"), "box": State("screen-box", "data")},
    prevent_initial_call=True,
)
def tick(_: int, search: str | None, sig: dict[str, Any] | None,
         visible: list[str] | None, replay: dict[str, Any] | None = None,
         box: Any = None) -> dict[str, Any]:
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
    shown = visible if visible is not None else [
        layer.id for layer in LAYERS if layer.default_visible]
    outputs = update.changes(frame, key, sig, shown, services.settings, services.geography,
                             moment, replay, Box.parse(box))
    push = _push_config(frame.lang)
    if push is not None and (sig or {}).get("push") != push["up"]:
        outputs["push"] = push  # push came up (or went down): the page (re)connects
    outputs["sig"]["push"] = None if push is None else push["up"]
    outputs["sig"]["by"] = "tick"  # a late answer landing on a pushed page (push.sigSeen)
    return outputs


def _push_config(lang: str) -> dict[str, Any] | None:
    """Where the screen finds the push process, and whether it is up (None: poll only)."""
    services = current()
    if services.settings.update_mode != "push":
        return None
    return services.push.config(lang)


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
    Output("map-graph", "figure", allow_duplicate=True),
    Output("trend-graph", "figure", allow_duplicate=True),
    Input("screen-box", "data"),
    State("url", "search"),
    State("replay", "data"),
    prevent_initial_call=True,
)
def fit_to_box(box: Any, search: str | None, replay: dict[str, Any] | None) -> tuple[Any, Any]:
    """The map's box changed size: fit the selection into it and resize Plotly's text."""
    try:
        frame, _, _ = source.frame(search, replay)
    except (Forbidden, ReplayBusy):  # the screen shows its refusal, or the next tick redraws
        return no_update, no_update
    size = Box.parse(box)
    trend = dash.Patch()
    trend["layout"]["font"]["size"] = panels.px(panels.TREND_FONT_PX, size)
    trend["layout"]["hoverlabel"]["font"]["size"] = panels.px(panels.TREND_FONT_PX, size)
    trend["layout"]["margin"] = panels.trend_margin(size)
    return refit(frame, current().geography, size), trend


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
    ClientsideFunction(namespace="push", function_name="configure"),
    Output("push-status", "title"),
    Input("push-config", "data"),
    Input("replay", "data"),
)

SCREEN.clientside_callback(
    ClientsideFunction(namespace="push", function_name="sigSeen"),
    Output("push-status", "title", allow_duplicate=True),
    Input("tick-sig", "data"),
    prevent_initial_call=True,
)

SCREEN.clientside_callback(
    ClientsideFunction(namespace="cockpit", function_name="clock"),
    Output("clock", "children"),
    Input("clock-tick", "n_intervals"),
    State("clock-tz", "data"),
)


def attach(app: dash.Dash) -> None:
    """Give an app the screen's callbacks (this module's and the officials' parts')."""
    SCREEN.attach(app)
