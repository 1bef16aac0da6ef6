"""Who is looking back: a random id per browser session, so each viewer has its own replay.

The id lives in a cookie (`citybrain_viewer`: HttpOnly, SameSite=Lax, no
expiry, so it ends with the browser session), given by the first response
that finds none. A replay's namespace is the account's name and this id: a
forged id reaches at most another replay of the same account, which sees
nothing more than that account does. A client that keeps no cookies (curl
without a cookie jar) shares one replay per account, as all viewers did before;
two tabs of one browser share theirs (looking at two moments there, each tab's
step sets the other's back, and both keep saying "preparing").
"""

from __future__ import annotations

import re
import secrets

import flask

from dashboard.auth.guard import current_user

COOKIE = "citybrain_viewer"
_VALID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_NO_COOKIE_PATHS = ("/assets/", "/_dash-component-suites/", "/_favicon.ico", "/favicon.ico",
                    "/healthz", "/metrics")


def _cookie() -> str | None:
    value = flask.request.cookies.get(COOKIE, "")
    return value if _VALID.fullmatch(value) else None


def viewer_id() -> str:
    """The replay namespace of this request: the account, then its browser session."""
    return f"{current_user().name}.{_cookie() or '-'}"


def _give_cookie(response: flask.Response) -> flask.Response:
    if _cookie() is None and not flask.request.path.startswith(_NO_COOKIE_PATHS):
        response.set_cookie(COOKIE, secrets.token_urlsafe(16), httponly=True, samesite="Lax",
                            secure=bool(flask.current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def install(server: flask.Flask) -> None:
    """Give every browser session its viewer id."""
    server.after_request(_give_cookie)
