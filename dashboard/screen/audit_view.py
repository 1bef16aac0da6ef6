"""The audit log view for city operators: filters, and pages through the whole history.

It reads the audit files through the same query as `/api/v1/audit` (newest first,
a cursor per page); every request is checked on the server (403 for anyone but a
city operator).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update
from werkzeug.exceptions import Forbidden

from dashboard.audit.reader import query_from
from dashboard.auth.guard import access, client_address, current_user
from dashboard.i18n import t
from dashboard.screen.layout import selection
from dashboard.screen.registry import SCREEN
from dashboard.services import current

log = logging.getLogger(__name__)

AUDIT_ROWS = 100
FILTERS = ("from", "to", "user", "action", "area")


def audit_modal(lang: str) -> html.Div:
    """The (hidden) audit log overlay; filled on the server for city operators only."""
    def field(name: str, placeholder: str) -> dcc.Input:
        return dcc.Input(id=f"audit-{name}", type="text", placeholder=placeholder,
                         debounce=True, className="audit-field", value="")

    return html.Div([
        html.Div([
            html.H2(t("audit", lang)),
            html.Button("✕", id="audit-close", className="ip-x", title=t("close", lang)),
        ], className="ip-head"),
        html.Div([
            field("from", t("audit_from", lang)), field("to", t("audit_to", lang)),
            field("user", t("who", lang)), field("action", t("what_done", lang)),
            field("area", t("audit_area", lang)),
            html.Button(t("audit_newest", lang), id="audit-newest", className="who-button"),
            html.Button(t("audit_older", lang), id="audit-older", className="who-button",
                        disabled=True),
        ], className="audit-filters"),
        html.Div(id="audit-body", className="audit-body"),
        dcc.Store(id="audit-next"),
    ], id="audit-modal", className="audit-modal hidden", role="dialog")


def audit_table(entries: list[dict[str, Any]], lang: str, zone: Any) -> html.Table:
    """The entries as text, newest first."""
    def when(ms: Any) -> str:
        try:
            return datetime.fromtimestamp(int(ms) / 1000, zone).strftime("%Y-%m-%d %H:%M:%S")
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


@SCREEN.callback(
    output={"body": Output("audit-body", "children"),
            "modal": Output("audit-modal", "className"),
            "next": Output("audit-next", "data"),
            "older_disabled": Output("audit-older", "disabled")},
    inputs={"opened": Input("audit-open", "n_clicks"),
            "closed": Input("audit-close", "n_clicks"),
            "newest": Input("audit-newest", "n_clicks"),
            "older": Input("audit-older", "n_clicks"),
            "filters": [Input(f"audit-{name}", "value") for name in FILTERS],
            "cursor": State("audit-next", "data"),
            "search": State("url", "search")},
    prevent_initial_call=True,
)
def show_audit(opened: int | None, closed: int | None, newest: int | None,
               older: int | None, filters: list[str | None], cursor: str | None,
               search: str | None) -> dict[str, Any]:
    """A page of the audit log, for city operators only (403 for anyone else)."""
    trigger = dash.ctx.triggered_id
    if trigger == "audit-close":
        return {"body": [], "modal": "audit-modal hidden", "next": None,
                "older_disabled": True}
    if not opened:
        return {"body": no_update, "modal": no_update, "next": no_update,
                "older_disabled": no_update}
    user = current_user()
    if user.role != "city":
        log.warning("audit log refused to %s (%s) from %s", user.name, user.role,
                    client_address())
        raise Forbidden("the audit log is for city operators")
    services = current()
    _, lang = selection(search, services.geography, services.settings.lang, user.scope)
    params = {name: value or "" for name, value in zip(FILTERS, filters, strict=True)}
    if trigger == "audit-older" and cursor:
        params["before"] = cursor
    try:
        query = query_from(params, services.settings.zone, limit=AUDIT_ROWS)
    except ValueError as exc:
        return {"body": html.Div(f"✗ {exc}", id="audit-error", className="act-msg is-error"),
                "modal": "audit-modal", "next": None, "older_disabled": True}
    entries, following = access().audit.page(query)
    return {"body": audit_table(entries, lang, services.settings.zone), "modal": "audit-modal",
            "next": following, "older_disabled": following is None}
