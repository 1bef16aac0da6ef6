"""The alert card on the screen, its acknowledgement, and the list each tick sends.

Its own timer sends the user's current alerts (`listed`: computed once per view
and language, in the user's scope) to the `alert-list` store when they change; the
browser (`assets/alerts.js`) queues them newest first, shows each one's card
for `CITYBRAIN_ALERT_SHOW_S` and, on a wall screen only, flies the map to it
and back. Every text reaches the card as a string property, rendered as text.
Acknowledging from the card is checked against the user's scope on the server
and audited before it is stored.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from dash import Input, Output, State, dcc, html, no_update
from dash.dependencies import ClientsideFunction

from dashboard import alerts
from dashboard.auth.guard import access, client_address, current_user, require_area
from dashboard.auth.users import User
from dashboard.i18n import t
from dashboard.screen import source
from dashboard.screen.frame import digest
from dashboard.screen.layout import selection
from dashboard.screen.registry import SCREEN
from dashboard.services import current
from dashboard.settings import Settings

log = logging.getLogger(__name__)

TICK_MS = 1000  # how often the browser looks at its queue (no request: a browser-side callback)


def listed(lang: str) -> list[dict[str, Any]]:
    """The current alerts of this request's user, newest first (shared per view and language)."""
    services = current()
    view = services.cache.view_for(current_user().scope)
    key = ("alerts", lang)
    found = view.derived.get(key)
    if found is None:
        acked = view.derived.get("alert_acks")
        if acked is None:
            acked = view.derived["alert_acks"] = alerts.acknowledged(
                services.client, services.settings, view.now_ms)
        found = view.derived[key] = [
            a.as_json() for a in alerts.alerts(view, services.settings, acked, lang)]
    return found


def card(lang: str, user: User, settings: Settings) -> html.Div:
    """The (hidden) card, its stores and timers; a wall screen's map moves, others' do not."""
    return html.Div([
        dcc.Interval(id="alert-poll", interval=settings.update_ms),
        dcc.Store(id="alert-sig"),
        dcc.Store(id="alert-list"),
        dcc.Store(id="alert-current"),
        dcc.Store(id="alert-ack-done"),
        dcc.Store(id="alert-config", data={"wall": user.role == "wall",
                                           "show_ms": int(settings.alert_show_s * 1000)}),
        dcc.Interval(id="alert-tick", interval=TICK_MS),
        html.Div(id="alert-ring", className="alert-ring hidden"),
        html.Div([
            html.Div(id="alert-head", className="alert-head"),
            html.Div(id="alert-what", className="alert-what"),
            html.Dl([
                html.Dt(t("alert_where", lang)), html.Dd(id="alert-where"),
                html.Dt(t("alert_when", lang)), html.Dd(id="alert-when"),
                html.Dt(t("alert_why", lang)), html.Dd(id="alert-why", className="alert-why"),
            ], className="alert-facts"),
            html.Button(t("alert_ack", lang), id="alert-ack", n_clicks=0,
                        className="alert-ack"),
        ], id="alert-card", className="alert-card hidden", role="alert"),
    ], id="alerts")


SCREEN.clientside_callback(
    ClientsideFunction(namespace="cockpit_alerts", function_name="run"),
    Output("alert-card", "className"),
    Output("alert-head", "children"),
    Output("alert-what", "children"),
    Output("alert-where", "children"),
    Output("alert-when", "children"),
    Output("alert-why", "children"),
    Output("alert-current", "data"),
    Output("map-graph", "figure", allow_duplicate=True),
    Output("alert-ring", "className"),
    Input("alert-tick", "n_intervals"),
    Input("alert-list", "data"),
    Input("alert-ack", "n_clicks"),
    State("alert-config", "data"),
    prevent_initial_call=True,
)


@SCREEN.callback(
    Output("alert-list", "data"),
    Output("alert-sig", "data"),
    Input("alert-poll", "n_intervals"),
    State("alert-sig", "data"),
    State("url", "search"),
    State("replay", "data"),
    prevent_initial_call=True,
)
def poll(_: int, held: str | None, search: str | None,
         replay: dict[str, Any] | None = None) -> Any:
    """The user's current alerts when they changed (none while looking back).

    Its own timer (`CITYBRAIN_UPDATE_MS`), apart from the screen's tick, so that alerts
    arrive whether the screen polls or is pushed to.
    """
    services = current()
    settings = services.settings
    lang = selection(search, services.geography, settings.lang)[1]
    live = source.replay_moment(replay, search, settings) is None
    if live and services.cache.view().error is not None:
        return no_update, no_update  # Redis is away: keep the card; the tick's banner says so
    try:
        found = listed(lang) if live else []
    except (redis.ConnectionError, redis.TimeoutError):
        return no_update, no_update
    signature = digest(found)
    if signature == held:
        return no_update, no_update
    return found, signature


@SCREEN.callback(
    Output("alert-ack-done", "data"),
    Input("alert-ack", "n_clicks"),
    State("alert-current", "data"),
    State("url", "search"),
    prevent_initial_call=True,
)
def acknowledge(clicks: int | None, shown: dict[str, Any] | None,
                search: str | None) -> Any:
    """Acknowledge the alert on the card: in the user's scope, audited, then stored."""
    if not clicks or not shown or not isinstance(shown.get("id"), str):
        return no_update
    alert_id = shown["id"][:200]
    services = current()
    found = next((a for a in listed(services.settings.lang) if a["id"] == alert_id), None)
    if found is None:  # gone, acknowledged already, or never in this user's scope
        log.info("acknowledgement of unknown alert %r by %s", alert_id, current_user().name)
        return {"id": alert_id, "ok": False}
    require_area(found["area"])  # the view is scoped already; checked again, audited if not
    user = current_user()
    access().audit.record(user, client_address(), "alert_ack", alert_id,
                          f"{found['head']}: {found['what']}", area=found["area"],
                          required=True)
    alerts.acknowledge(services.client, services.settings, alert_id, int(time.time() * 1000))
    return {"id": alert_id, "ok": True}
