"""One incident's detail and actions, over the right column of the screen.

A click on an incident (a row of the open or overdue list, or its point on the
map) puts its id in `incident-sel`. The panel is read with the REST route's
own `incident_record` (404 unknown, 403 outside the user's scope, whatever id
the browser sent), and actions go through `perform_action`, the route's own
checks. While open, the panel checks on its own timer whether the stored
incident or its history changed and only then reads and sends it again. An
action answers as soon as its command is written ("sent"); no request thread
waits for the worker: the panel's own timer shows the applied result, on
every screen that has the incident open. While looking back the panel shows
the incident as it was at that moment, and no actions.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import dash
import orjson
from dash import ALL, ClientsideFunction, Input, Output, State, dcc, html, no_update
from werkzeug.exceptions import BadRequest, Conflict, NotFound, ServiceUnavailable

from dashboard.actions import (
    NotVerifier,
    decode_incident,
    perform_action,
    stored_incident,
    with_report_titles,
)
from dashboard.auth.guard import client_address, current_user
from dashboard.auth.users import User
from dashboard.i18n import label, t
from dashboard.kinds.incident import OpenIncident
from dashboard.kinds.risk import RiskModel
from dashboard.pipeline.contract import MAX_NOTE_CHARS, SATISFACTION
from dashboard.screen import source
from dashboard.screen.frame import digest
from dashboard.screen.layout import selection
from dashboard.screen.registry import SCREEN
from dashboard.services import current
from dashboard.settings import Settings
from dashboard.state.replay import ReplayBusy
from dashboard.viewer import viewer_id
from layers.incidents import SEVERITY_COLORS, age_text

REFRESH_MS = 800  # how often an open panel checks whether its incident changed
ACTION_IDS = {f"act-{name}": name for name in ("acknowledge", "dispatch", "note", "close",
                                               "verify", "reject", "follow_up")}


def panel(lang: str, user: User, settings: Settings) -> html.Aside:
    """The (hidden) panel; its body is filled when an incident is chosen."""
    if user.can_act:
        actions: Any = html.Div([
            html.Div([
                html.Button(label("action", "acknowledge", lang), id="act-acknowledge",
                            className="act-button"),
            ], className="act-row"),
            html.Div([
                dcc.Dropdown(id="act-dept", options=list(settings.departments),
                             placeholder=t("dept_ph", lang), clearable=False,
                             searchable=False, className="act-dept"),
                html.Button(label("action", "dispatch", lang), id="act-dispatch",
                            className="act-button"),
            ], className="act-row"),
            html.Div([
                dcc.Input(id="act-note-text", type="text", maxLength=MAX_NOTE_CHARS,
                          placeholder=t("note_ph", lang), className="act-text", debounce=False),
                html.Button(label("action", "note", lang), id="act-note",
                            className="act-button"),
            ], className="act-row"),
            html.Div([
                dcc.Input(id="act-result", type="text", maxLength=MAX_NOTE_CHARS,
                          placeholder=t("result_ph", lang), className="act-text"),
                html.Button(label("action", "close", lang), id="act-close",
                            className="act-button act-close"),
            ], className="act-row"),
            html.Div([  # 核查结案: another account verifies, or rejects with a reason
                dcc.Input(id="act-reason", type="text", maxLength=MAX_NOTE_CHARS,
                          placeholder=t("reason_ph", lang), className="act-text"),
                html.Button(label("action", "verify", lang), id="act-verify",
                            className="act-button act-close"),
                html.Button(label("action", "reject", lang), id="act-reject",
                            className="act-button act-reject"),
            ], className="act-row"),
            html.Div([  # 跟踪回访: the resident's answer (hotline incidents; the note above)
                dcc.Dropdown(id="act-sat", options=[
                    {"label": label("satisfaction", code, lang), "value": code}
                    for code in SATISFACTION], placeholder=t("sat_ph", lang),
                    clearable=False, searchable=False, className="act-dept"),
                html.Button(label("action", "follow_up", lang), id="act-follow_up",
                            className="act-button"),
            ], className="act-row"),
            html.Div(id="act-msg", className="act-msg", role="status"),
        ], id="ip-actions", className=_actions_class(user, False))
    else:
        actions = html.Div(t("read_only", lang), id="ip-actions",
                           className=_actions_class(user, False))
    return html.Aside([
        dcc.Store(id="incident-sel"),
        dcc.Store(id="incident-sig"),
        # Its own timer, running only while the panel is open: the screen's tick can be
        # busier than this panel's cheap check, and a slow one would hold it back.
        dcc.Interval(id="incident-tick", interval=REFRESH_MS, disabled=True),
        html.Div([
            html.H2(t("incident", lang), id="incident-heading"),
            html.Button("✕", id="incident-close", className="ip-x", title=t("close", lang)),
        ], className="ip-head"),
        html.Div(id="incident-body", className="ip-body"),
        actions,
    ], id="incident-panel", className="incident-panel hidden")


def _actions_class(user: User, replaying: bool) -> str:
    """The actions' box: hidden while looking back (they act on the live incident)."""
    css = "ip-actions" if user.can_act else "ip-actions ip-read-only"
    return css + " hidden" if replaying else css


def _at_point(view: Any, area: str, point: dict[str, Any]) -> str | None:
    lon, lat = point.get("lon"), point.get("lat")
    if point.get("location") or lon is None or lat is None:
        return None
    for item in view.open_incidents(area):
        if (item.lon is not None and item.lat is not None
                and abs(item.lon - lon) < 1e-7 and abs(item.lat - lat) < 1e-7):
            return item.incident_id
    return None


SCREEN.clientside_callback(  # rows and ✕: in the browser (assets/cockpit.js `choose`)
    ClientsideFunction(namespace="cockpit", function_name="choose"),
    Output("incident-sel", "data"),
    Output("incident-panel", "className", allow_duplicate=True),
    Output("incident-sig", "data", allow_duplicate=True),
    Output("incident-tick", "disabled", allow_duplicate=True),
    Input({"type": "inc-open", "id": ALL, "src": ALL}, "n_clicks"),
    Input("incident-close", "n_clicks"),
    prevent_initial_call=True,
)


@SCREEN.callback(
    Output("incident-sel", "data", allow_duplicate=True),
    Input("map-graph", "clickData"),
    State("url", "search"),
    State("replay", "data"),
    prevent_initial_call=True,
)
def choose_on_map(click: dict[str, Any] | None, search: str | None,
                  replay: dict[str, Any] | None) -> Any:
    """Open the incident of the clicked map point (a list row or ✕: `cockpit.choose`)."""
    try:
        view, area, _, _ = source.view(search, replay)
    except ReplayBusy:  # the moment is not ready: the map still shows another one
        return no_update
    points = (click or {}).get("points") or []
    found = next((i for i in (_at_point(view, area, p) for p in points) if i), None)
    return found or no_update


def _clock(ms: Any, settings: Settings, fmt: str = "%H:%M") -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, settings.zone).strftime(fmt)
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


def _title(record: dict[str, Any], lang: str) -> str:
    """Its title; a hotspot case (未诉先办) has none: its category and how many reports."""
    if record["title"]:
        return str(record["title"])
    if record.get("source") == "proactive" and record.get("reports"):
        return t("proactive_title", lang).format(
            what=label("category", record.get("category") or "unknown", lang),
            n=len(record["reports"]))
    return str(record["incident_id"])


def reports(record: dict[str, Any], lang: str, settings: Settings,
            can_split: bool) -> list[Any]:
    """A case's reports, earliest first (merged: each but the first splittable).

    A merged case's reports (多源合并), or the reports that opened a proactive case (未诉先办).
    """
    listed = record.get("reports") or []
    proactive = record["source"] == "proactive"
    if len(listed) < (1 if proactive else 2):  # (a risk work order lists no reports)
        return []
    can_split = can_split and not proactive
    rows = [html.Li([
        html.Span(_clock(r.get("time"), settings, "%m-%d %H:%M"), className="h-time"),
        html.Span(label("source", r.get("source") or "", lang), className="h-user"),
        html.Span(str(r.get("title") or r["incident_id"]), className="h-note"),
        *([html.Button(t("split_off", lang), id={"type": "inc-split", "report": r["incident_id"]},
                       className="act-button ip-split", title=t("split_case", lang))]
          if can_split and i and not r.get("outside") else []),
    ], className="h-item ip-report", **{"data-report": r["incident_id"]})
        for i, r in enumerate(listed)]
    heading = t("triggered" if proactive else "reports", lang).format(
        n=len(listed), m=len(record["sources"]))
    return [html.H3(heading, id="incident-reports-heading"),
            html.Ol(rows, id="incident-reports", className="ip-history")]


def body(record: dict[str, Any], live: OpenIncident | None, lang: str,
         settings: Settings, moment: int | None = None, can_split: bool = False) -> list[Any]:
    """The incident's fields, reports and history; every user-written text is a plain child.

    With `moment` (looking back) ages and lateness are as of that moment.
    """
    now_ms = time.time() * 1000 if moment is None else moment
    sev = min(max(int(record["severity"]), 1), 4)
    late = live is not None and record["status"] != "closed" and live.overdue(now_ms)
    reported = record.get("reported") or (live.start if live else None)
    age = age_text((now_ms - float(reported)) / 60000, lang) if reported else "–"
    fields = [
        ("category", label("category", record["category"], lang)),
        ("status", label("status", record["status"], lang)),
        ("source", label("source", record["source"] or "", lang)),
        ("severity", label("severity", str(sev), lang)),
        ("department", record["department"] or "–"),
        ("reported", f"{_clock(reported, settings, '%m-%d %H:%M')} · {age}"),
        ("overdue", t("yes", lang) if late else t("no", lang)),
        ("reopen_count", str(record.get("reopen_count") or 0)),
    ]
    if record.get("satisfaction"):
        fields.append(("satisfaction", label("satisfaction", record["satisfaction"], lang)))
    history = [html.Li([
        html.Span(_clock(h.get("ts"), settings, "%m-%d %H:%M"), className="h-time"),
        html.Span(str(h.get("user") or ""), className="h-user"),
        html.Span(label("action", h.get("action"), lang), className="h-action"),
        html.Span(str(h.get("department") or ""), className="h-dept"),
        html.Span(str(h.get("note") or ""), className="h-note"),
    ], className="h-item") for h in reversed(record.get("history") or [])]
    replay = [] if moment is None else [html.Div(
        t("replay_panel", lang).format(time=_clock(moment, settings, "%m-%d %H:%M")),
        id="incident-replay", className="ip-replay")]
    return [
        *replay,
        html.Div(_title(record, lang), id="incident-title",
                 className="ip-title", style={"borderColor": SEVERITY_COLORS[sev - 1]}),
        html.Div(record["incident_id"], className="ip-id"),
        html.Dl([part for key, value in fields for part in (
            html.Dt(t(key, lang)), html.Dd(value, id=f"incident-{key}",
                                           className="ip-late" if key == "overdue" and late
                                           else None))], className="ip-fields"),
        *reports(record, lang, settings, can_split and moment is None),
        *_trigger(record.get("trigger"), lang, settings),
        html.H3(t("history", lang)),
        html.Ol(history or [html.Li(t("none", lang), className="feed-empty")],
                id="incident-history", className="ip-history"),
    ]


def _trigger(trigger: dict[str, Any] | None, lang: str, settings: Settings) -> list[Any]:
    """未诉先办: what keeps a risk work order open, by category, then indicator (text)."""
    if not trigger:
        return []
    model = RiskModel.from_settings(settings)
    rows = [html.Li([
        html.Span(model.name(c["category"], "risk_category", lang), className="factor-name"),
        html.Span("", className="factor-value"),
        html.Span(f"+{c['contribution']:.1f}", className="factor-points"),
    ], className="factor-category") for c in trigger["categories"]]
    rows += [html.Li([
        html.Span(model.name(i["indicator"], "indicator", lang), className="factor-name"),
        html.Span(f"{i['value']:g}", className="factor-value"),
        html.Span(f"+{i['contribution']:.1f}", className="factor-points"),
    ]) for i in trigger["indicators"]]
    head = (f"{t('order_trigger', lang)} · {label('risk_level', trigger['level'], lang)} "
            f"{float(trigger['score']):.1f}")
    return [html.H3(head), html.Ul(rows, id="incident-trigger", className="ip-trigger")]


@SCREEN.callback(
    Output("incident-body", "children"),
    Output("incident-panel", "className"),
    Output("incident-sig", "data"),
    Output("incident-tick", "disabled"),
    Output("ip-actions", "className"),
    Input("incident-sel", "data"),
    Input("incident-tick", "n_intervals"),
    State("incident-sig", "data"),
    State("url", "search"),
    State("replay", "data"),
    prevent_initial_call=True,
)
def show(chosen: str | None, _tick: int | None, sig: dict[str, Any] | None,
         search: str | None, replay: dict[str, Any] | None = None) -> Any:
    """Show the chosen incident, live or as it was at the moment looked back at.

    On its timer the panel is sent again only if the stored record or its action
    history changed (two HGETs in one round trip). While looking back it brings the
    viewer's replay to the moment and reads the incident under the replay's lock; a
    replay not ready yet shows "being prepared" until a later timer tick.
    """
    if not chosen:
        return ([], "incident-panel hidden", None, True, no_update) if sig else (no_update,) * 5
    services = current()
    user = current_user()
    moment = source.replay_moment(replay, search, services.settings)
    timer = dash.ctx.triggered_id == "incident-tick"
    # A chosen incident's panel is open and its timer on, whatever triggered this call: a
    # timer call that overtook the choice's own call (the timer not yet off after a close)
    # must open it too, since Dash drops the overtaken answer. A timer answer on its way
    # when ✕ is clicked cannot reopen it: ✕ calls this again, and that call overtakes it.
    _, lang = selection(search, services.geography, services.settings.lang, user.scope)
    live: OpenIncident | None = None
    if moment is None:
        stored = stored_incident(services.client, services.settings.state_prefix, str(chosen))
    else:
        try:
            stored, live = _past(services, moment, str(chosen))
        except ReplayBusy:
            mark = {"id": chosen, "replay": True, "rec": "busy"}
            if timer and sig == mark:
                return (no_update,) * 5
            waiting = [html.Div(t("replay_busy", lang), id="incident-busy",
                                className="ip-replay ip-busy")]
            return (waiting, "incident-panel", mark, False, _actions_class(user, True))
    mark = {"id": chosen, "replay": moment is not None, "rec": digest(repr(stored))}
    if timer and sig == mark:
        return (no_update,) * 5
    if moment is None:
        live = services.cache.view_for(user.scope).raw.open_incidents.get(str(chosen))
    try:  # 403 outside the scope (not caught); 404 unknown
        record = decode_incident(services, str(chosen), *stored)
        if moment is None:
            with_report_titles(services, record)
    except NotFound:
        if moment is None:
            raise
        content: list[Any] = [html.Div(t("not_yet", lang), id="incident-replay",
                                       className="ip-replay")]
    else:
        content = body(record, live, lang, services.settings, moment, user.can_act)
    return (content, "incident-panel", mark, False, _actions_class(user, moment is not None))


def _past(services: Any, moment: int, incident_id: str
          ) -> tuple[tuple[bytes | None, bytes | None], OpenIncident | None]:
    """The incident's stored record and history, and its open entry, at the moment.

    Read under the viewer's replay lock once the replay is there (`ReplayBusy` if not yet).
    """
    def read(past: Settings) -> tuple[tuple[bytes | None, bytes | None], OpenIncident | None]:
        stored = stored_incident(services.client, past.state_prefix, incident_id)
        entry = services.client.hget(past.state_prefix + "open", incident_id)
        return stored, OpenIncident.from_stored(incident_id, orjson.loads(entry)) if entry else None

    at = datetime.fromtimestamp(moment / 1000, services.settings.zone)
    return services.replayer.read_at(viewer_id(), at, read)


@SCREEN.callback(
    output=[Output("act-msg", "children"), Output("act-msg", "className"),
            Output("act-note-text", "value"), Output("act-result", "value"),
            Output("act-reason", "value")],
    inputs={"_clicks": [Input(button, "n_clicks") for button in ACTION_IDS],
            "chosen": State("incident-sel", "data"),
            "department": State("act-dept", "value"),
            "note": State("act-note-text", "value"),
            "result": State("act-result", "value"),
            "reason": State("act-reason", "value"),
            "satisfaction": State("act-sat", "value"),
            "search": State("url", "search"),
            "replay": State("replay", "data")},
    prevent_initial_call=True,
)
def act(_clicks: list[int | None], chosen: str | None, department: str | None,
        note: str | None, result: str | None, reason: str | None, satisfaction: str | None,
        search: str | None, replay: dict[str, Any] | None) -> Any:
    """Any action on the incident through the REST route's own checks.

    Answers once the command is written: the panel's timer shows the worker's result.
    A refusal (wrong status, the same account verifying its own work) is shown as text.
    """
    action = ACTION_IDS.get(str(dash.ctx.triggered_id))
    if action is None or not chosen or not dash.ctx.triggered[0].get("value"):
        return (no_update,) * 5
    services = current()
    user = current_user()
    _, lang = selection(search, services.geography, services.settings.lang, user.scope)
    if source.replay_moment(replay, search, services.settings) is not None:
        return f"✗ {t('go_live', lang)}", "act-msg is-error", no_update, no_update, no_update
    text = result if action == "close" else note if action in ("note", "follow_up") else ""
    try:  # 403 outside the scope: not caught
        perform_action(services, user, str(chosen), action,
                       (department or "") if action == "dispatch" else "", text or "",
                       client_address(), (reason or "") if action == "reject" else "",
                       (satisfaction or "") if action == "follow_up" else "")
    except (BadRequest, Conflict, NotFound, NotVerifier, ServiceUnavailable) as refused:
        return (f"✗ {t('refused', lang)}: {refused.description}", "act-msg is-error",
                no_update, no_update, no_update)
    done = label("action", action, lang)
    if action == "dispatch":
        done += f" → {department}"
    stamp = datetime.now(services.settings.zone).strftime("%H:%M:%S")
    return (f"✓ {t('sent', lang)}: {done} ({stamp})", "act-msg is-ok",
            "" if action in ("note", "follow_up") else no_update,
            "" if action == "close" else no_update, "" if action == "reject" else no_update)


@SCREEN.callback(
    Output("act-msg", "children", allow_duplicate=True),
    Output("act-msg", "className", allow_duplicate=True),
    Input({"type": "inc-split", "report": ALL}, "n_clicks"),
    State("incident-sel", "data"),
    State("url", "search"),
    State("replay", "data"),
    prevent_initial_call=True,
)
def split(_clicks: list[int | None], chosen: str | None, search: str | None,
          replay: dict[str, Any] | None) -> Any:
    """Split one report off the open case (a wrong merge) through the REST route's checks."""
    triggered = dash.ctx.triggered_id
    if not chosen or not isinstance(triggered, dict) or not dash.ctx.triggered[0].get("value"):
        return no_update, no_update
    services = current()
    user = current_user()
    _, lang = selection(search, services.geography, services.settings.lang, user.scope)
    if source.replay_moment(replay, search, services.settings) is not None:
        return f"✗ {t('go_live', lang)}", "act-msg is-error"
    report = str(triggered.get("report") or "")
    try:  # 403 outside the scope: not caught
        perform_action(services, user, str(chosen), "split", address=client_address(),
                       report=report)
    except (BadRequest, Conflict, NotFound, ServiceUnavailable) as refused:
        return f"✗ {t('refused', lang)}: {refused.description}", "act-msg is-error"
    return f"✓ {t('sent', lang)}: {label('action', 'split', lang)} {report}", "act-msg is-ok"
