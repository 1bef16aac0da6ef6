"""Who is signed in (or the open demo mode), sign-out, the rankings and audit log buttons."""

from __future__ import annotations

from dash import html

from dashboard.auth.users import User
from dashboard.geography import Geography
from dashboard.i18n import label, t


def user_box(user: User, open_demo: bool, geography: Geography, lang: str) -> html.Div:
    """The header's account block: name, role and scope with sign-out, or the demo label."""
    audit = html.Button(t("audit", lang), id="audit-open", className="who-button") \
        if user.role == "city" else None
    ranks = html.Button(t("rankings", lang), id="rank-open", className="who-button")
    if open_demo:
        return html.Div([
            html.Span("开放演示模式 / Open demo mode", id="demo-label", className="demo-label"),
            ranks, audit,
        ], id="who", className="who is-demo")
    return html.Div([
        html.Div([html.Span(user.name, id="who-name", className="who-name"),
                  html.Span(label("role", user.role, lang), id="who-role", className="who-role")],
                 className="who-line"),
        html.Div([html.Span(geography.name(user.scope, lang), id="who-scope",
                            className="who-scope"),
                  ranks, audit,
                  html.A(t("sign_out", lang), href="/logout", id="sign-out",
                         className="who-button")], className="who-line"),
    ], id="who", className="who", title=t("signed_in", lang))

