"""Sign-in and sign-out pages, and who-am-I (plain Flask, escaped templates)."""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

import flask
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response as BaseResponse

from dashboard.audit.reader import query_from
from dashboard.auth.guard import (
    access,
    client_address,
    current_user,
    end_session,
    start_session,
    take_sign_in_try,
)
from dashboard.metrics.web import web_metrics
from dashboard.services import current

auth = flask.Blueprint("auth", __name__)

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>登录 · Sign in</title>
<style>
body{background:#0b1220;color:#e6edf7;font-family:"Noto Sans CJK SC",sans-serif;display:flex;
align-items:center;justify-content:center;height:100vh;margin:0}
form{background:#121b2e;padding:2.5rem;border-radius:10px;min-width:22rem}
h1{font-size:1.6rem;margin:0 0 1.5rem}label{display:block;margin:.8rem 0 .3rem}
input{width:100%;padding:.6rem;font-size:1.1rem;border-radius:6px;border:1px solid #33415c;
background:#0b1220;color:#e6edf7;box-sizing:border-box}
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1.1rem;background:#1f6fff;
color:#fff;border:0;border-radius:6px}.error{color:#ff6b6b;margin-top:1rem}
</style></head><body>
<form method="post" action="{{ url_for('auth.login') }}">
<h1>城市运行驾驶舱 · City Operations Cockpit</h1>
<input type="hidden" name="next" value="{{ next }}">
<label for="name">用户名 · User</label><input id="name" name="name" autocomplete="username"
 value="{{ name }}" required>
<label for="password">密码 · Password</label><input id="password" name="password"
 type="password" autocomplete="current-password" required>
<button type="submit" id="login-submit">登录 · Sign in</button>
{% if error %}<div class="error" id="login-error">{{ error }}</div>{% endif %}
</form></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect)."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@auth.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str:
    """Show the form; check the password; start a session."""
    acc = access()
    next_url = _safe_next(flask.request.values.get("next"))
    if acc.open_mode():
        return flask.redirect(next_url)
    if flask.request.method == "GET":
        return flask.render_template_string(_PAGE, next=next_url, name="", error="")
    name = flask.request.form.get("name", "")[:64]
    address = client_address()
    take_sign_in_try(name, address)
    opened = acc.store.sign_in(name, flask.request.form.get("password", ""),
                               acc.session_hours)
    if opened is None:
        acc.throttle.failed(name, address)
        web_metrics().sign_in_failures.labels("password").inc()
        acc.audit.record(None, address, "sign_in_failed", name)
        page = flask.render_template_string(_PAGE, next=next_url, name=name,
                                            error="用户名或密码错误 · Wrong user or password")
        return flask.Response(page, status=401)
    user, sid = opened
    acc.throttle.passed(name, address)
    start_session(sid)
    acc.audit.record(user, address, "sign_in", user.scope)
    return flask.redirect(next_url)


@auth.route("/logout", methods=["GET", "POST"])
def logout() -> BaseResponse:
    """End the session, on the server too (a copied cookie stops working)."""
    name = end_session()
    if name:
        access().audit.record(None, client_address(), "sign_out", name)
    return flask.redirect(flask.url_for("auth.login"))


@auth.get("/api/v1/me")
def me() -> flask.Response:
    """The signed-in user, and whether the cockpit is in open demo mode."""
    user = current_user()
    return flask.jsonify({"name": user.name, "role": user.role, "scope": user.scope,
                          "open_demo": access().open_mode()})


@auth.get("/api/v1/audit")
def audit_log() -> flask.Response:
    """A page of the audit log, newest first (city operators only).

    Filters `from`, `to`, `user`, `action`, `area`; `limit` (default 200); the next
    page's URL is in the `Link` header (rel="next"), absent on the last page.
    """
    user = current_user()
    if user.role != "city":
        flask.abort(403)
    args = flask.request.args
    try:
        query = query_from(args, current().settings.zone, limit=200)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    entries, cursor = access().audit.page(query)
    response = flask.jsonify(entries)
    if cursor:
        params = urlencode({**args.to_dict(), "before": cursor})
        response.headers["Link"] = f'<{flask.request.path}?{params}>; rel="next"'
    return response
