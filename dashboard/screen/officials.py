"""Who is signed in (or the open demo mode), sign-out, and the audit log for city operators."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, State, callback, html, no_update
from werkzeug.exceptions import Forbidden

from dashboard.auth.guard import access, client_address, current_user
from dashboard.auth.users import User
from dashboard.i18n import label, t
from dashboard.screen.layout import selection
from dashboard.services import current
from layers.geography import Geography

log = logging.getLogger(__name__)

AUDIT_ROWS = 100


def user_box(user: User, open_demo: bool, geography: Geography, lang: str) -> html.Div:
    """The header's account block: name, role and scope with sign-out, or the demo label."""
    audit = html.Button(t("audit", lang), id="audit-open", className="who-button") \
        if user.role == "city" else None
    if open_demo:
        return html.Div([
            html.Span("开放演示模式 / Open demo mode", id="demo-label", className="demo-label"),
            audit,
        ], id="who", className="who is-demo")
    return html.Div([
        html.Div([html.Span(user.name, id="who-name", className="who-name"),
                  html.Span(label("role", user.role, lang), id="who-role", className="who-role")],
                 className="who-line"),
        html.Div([html.Span(geography.name(user.scope, lang), id="who-scope",
                            className="who-scope"),
                  audit,
                  html.A(t("sign_out", lang), href="/logout", id="sign-out",
                         className="who-button")], className="who-line"),
    ], id="who", className="who", title=t("signed_in", lang))


def audit_modal(lang: str) -> html.Div:
    """The (hidden) audit log overlay; filled on the server for city operators only."""
    return html.Div([
        html.Div([
            html.H2(t("audit", lang)),
            html.Button("✕", id="audit-close", className="ip-x", title=t("close", lang)),
        ], className="ip-head"),
        html.Div(id="audit-body", className="audit-body"),
    ], id="audit-modal", className="audit-modal hidden", role="dialog")


def audit_table(entries: list[dict[str, Any]], lang: str, zone: Any) -> html.Table:
    """The newest entries as text, newest first."""
    def when(ms: str) -> str:
        try:
            return datetime.fromtimestamp(int(ms) / 1000, zone).strftime("%m-%d %H:%M:%S")
        except (TypeError, ValueError, OverflowError, OSError):
            return str(ms)

    head = html.Tr([html.Th(t(k, lang)) for k in
                    ("when", "who", "what_done", "target", "detail", "address")])
    rows = [html.Tr([html.Td(when(e.get("ts", ""))),
                     html.Td(f"{e.get('user', '')} {e.get('role', '')}".strip()),
                     html.Td(e.get("action", "")), html.Td(e.get("target", "")),
                     html.Td(e.get("detail", "")), html.Td(e.get("address", ""))])
            for e in entries]
    return html.Table([html.Thead(head), html.Tbody(rows)], id="audit-table",
                      className="audit-table")


@callback(
    Output("audit-body", "children"),
    Output("audit-modal", "className"),
    Input("audit-open", "n_clicks"),
    Input("audit-close", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def show_audit(opened: int | None, _closed: int | None, search: str | None) -> Any:
    """The audit log, for city operators only (403 for anyone else)."""
    if dash.ctx.triggered_id == "audit-close":
        return [], "audit-modal hidden"
    if not opened:
        return no_update, no_update
    user = current_user()
    if user.role != "city":
        log.warning("audit log refused to %s (%s) from %s", user.name, user.role,
                    client_address())
        raise Forbidden("the audit log is for city operators")
    services = current()
    _, lang = selection(search, services.geography, services.settings.lang, user.scope)
    entries = access().audit.latest(AUDIT_ROWS)
    return audit_table(entries, lang, services.settings.zone), "audit-modal"
