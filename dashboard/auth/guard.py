"""Sign-in, sessions and the per-request check of who may see what.

Every request passes `before_request`: static files, `/login` and `/healthz`
are open; everything else needs a session (a signed, HttpOnly, SameSite
cookie holding only a session id, looked up in Redis on every request, so that
ending a session takes effect at the next request) or, for a wall screen, a
valid `?token=`. With no accounts at all the
cockpit runs in an open demo mode, and says so on the screen. Behind the
city's single-sign-on proxy (`CITYBRAIN_SSO_HEADER`, off by default) the
header names the account, believed only from `CITYBRAIN_TRUSTED_PROXIES`. Data handlers
then ask `current_user()` and `require_area()`, which answer 403 (and log
the attempt) for an area outside the user's scope.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import flask
import redis
from werkzeug.exceptions import Forbidden, TooManyRequests
from werkzeug.wrappers import Response as BaseResponse

from dashboard.auth.audit import Audit
from dashboard.auth.throttle import SignInThrottle
from dashboard.auth.users import User, UserStore
from dashboard.geography import Geography
from dashboard.metrics.web import web_metrics

log = logging.getLogger(__name__)

# `/api/v1/events` checks its own producer tokens (dashboard/intake.py), never a session;
# `/metrics` its own token (dashboard/metrics/scrape.py).
OPEN_PREFIXES = ("/login", "/logout", "/healthz", "/metrics", "/assets/",
                 "/_dash-component-suites/", "/_favicon.ico", "/favicon.ico", "/api/v1/events")
DEMO_USER = User("demo", "city", "")  # scope filled with the city's id at use
USER_CACHE_S = 5.0


class UserCache:
    """The accounts as one process saw them at most `USER_CACHE_S` ago (one read per TTL)."""

    def __init__(self, store: UserStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._users: dict[str, User] | None = None
        self._read_at = -1e9

    def users(self) -> dict[str, User]:
        """Every account by name (Redis errors raise until the first read succeeded)."""
        with self._lock:
            if time.monotonic() - self._read_at > USER_CACHE_S:
                try:
                    self._users = {u.name: u for u in self.store.all()}
                except (redis.ConnectionError, redis.TimeoutError):
                    if self._users is None:  # never read: not knowing is not "no accounts"
                        raise
                    log.warning("Redis unreachable: keeping the accounts read before")
                self._read_at = time.monotonic()
            return self._users or {}

    def invalidate(self) -> None:
        """Read the accounts again at the next request."""
        with self._lock:
            self._read_at = -1e9


@dataclass(frozen=True)
class Access:
    """Everything the guard needs; one per process, hung on the Flask app."""

    store: UserStore
    cache: UserCache
    audit: Audit
    throttle: SignInThrottle
    geography: Geography
    session_hours: float
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    sso_header: str | None = None

    def from_proxy(self, peer: str | None) -> bool:
        """Whether the direct peer is one of the trusted reverse proxies."""
        if not self.proxies or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def open_mode(self) -> bool:
        """No accounts exist: everyone is a city operator (a demo)."""
        return not self.cache.users()

    def demo_user(self) -> User:
        """The user everyone is in open demo mode."""
        return User(DEMO_USER.name, DEMO_USER.role, self.geography.root_id)


def access() -> Access:
    """The access object of this app."""
    return flask.current_app.extensions["citybrain_access"]


def client_address() -> str:
    """The caller's address: the direct peer, or what a trusted proxy says it forwarded."""
    peer = flask.request.remote_addr or "?"
    if access().from_proxy(peer):
        hops = [h.strip() for h in flask.request.headers.get("X-Forwarded-For", "").split(",")]
        if hops[-1]:
            return hops[-1][:64]  # the address the proxy itself saw
    return peer


def current_user() -> User:
    """The user of this request (set by the guard)."""
    return flask.g.user


def in_scope(user: User, area_id: str, geography: Geography) -> bool:
    """Whether the user's scope contains the area."""
    return area_id in geography.areas and user.scope in geography.chain(area_id)


def require_area(area_id: str) -> str:
    """The area, if the user may see it; otherwise log, audit and answer 403."""
    acc = access()
    user = current_user()
    if not in_scope(user, area_id, acc.geography):
        log.warning("out of scope: %s (%s %s) asked for %s from %s", user.name, user.role,
                    user.scope, area_id, client_address())
        acc.audit.record(user, client_address(), "denied", area_id, flask.request.path)
        web_metrics().scope_refusals.inc()
        raise Forbidden(f"area {area_id} is outside your scope")
    return area_id


def _session_user(acc: Access) -> User | None:
    """The user of the session named in the cookie, if it lives (one Redis read, no cache)."""
    sid = flask.session.get("sid")
    if not isinstance(sid, str):
        return None
    user = acc.store.sessions.user(sid)
    if user is None:
        flask.session.clear()
    return user


def start_session(sid: str) -> None:
    """Put a new session's id in a fresh signed cookie."""
    flask.session.clear()
    flask.session.permanent = True
    flask.session["sid"] = sid


def end_session() -> str | None:
    """End this request's session on the server and in the browser; whose it was."""
    sid = flask.session.get("sid")
    flask.session.clear()
    if not isinstance(sid, str):
        return None
    sessions = access().store.sessions
    user = sessions.user(sid)
    sessions.close(sid)
    return user.name if user else None


def _guard() -> Any:
    acc = access()
    path = flask.request.path
    if path.startswith(OPEN_PREFIXES):
        return None
    if acc.open_mode():
        flask.g.user = acc.demo_user()
        return None
    if not flask.current_app.secret_key:
        log.error("accounts exist but CITYBRAIN_SECRET_KEY is not set: refusing sign-ins")
        return flask.Response("CITYBRAIN_SECRET_KEY is not set", status=503)
    if acc.sso_header and (named := flask.request.headers.get(acc.sso_header, "").strip()):
        if acc.from_proxy(flask.request.remote_addr):
            user = acc.cache.users().get(named)
            if user is None:
                acc.audit.record(None, client_address(), "sso_unknown", named[:64], path)
                raise Forbidden("the single-sign-on account has no access to this cockpit")
            flask.g.user = user
            return _read_only_wall(user, path)
        log.warning("ignored %s from %s: not a trusted proxy", acc.sso_header,
                    flask.request.remote_addr)
    token = flask.request.args.get("token")
    if token:
        opened = acc.store.token_sign_in(token, acc.session_hours)
        if opened is None:
            acc.audit.record(None, client_address(), "bad_token", "", path)
            web_metrics().sign_in_failures.labels("token").inc()
            return _unauthorised(path)
        start_session(opened[1])
        flask.g.user = opened[0]
        return None
    user = _session_user(acc)
    if user is None:
        return _unauthorised(path)
    flask.g.user = user
    return _read_only_wall(user, path)


def _read_only_wall(user: User, path: str) -> None:
    if user.role == "wall" and flask.request.method == "POST" and path.startswith("/api/"):
        raise Forbidden("the wall screen is read-only")


def _unauthorised(path: str) -> BaseResponse:
    if path.startswith(("/api/", "/_dash")):
        response = flask.jsonify({"error": "sign_in_required"})
        response.status_code = 401
        return response
    return flask.redirect(flask.url_for("auth.login", next=flask.request.full_path))


def _redis_unreachable(exc: Exception) -> flask.Response:
    """503 when Redis cannot say whether a session lives: never let a request in unchecked."""
    log.warning("Redis unreachable while checking access to %s: %s", flask.request.path, exc)
    response = flask.jsonify({"error": "redis_unreachable", "retry_after_s": 5})
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def install(server: flask.Flask, acc: Access, secret_key: str | None,
            secure_cookies: bool) -> None:
    """Hook the guard and the session settings into the Flask app."""
    server.extensions["citybrain_access"] = acc
    # Without accounts nothing is signed; with them a secret from the environment is
    # required (`Services.build` refuses to start without it).
    server.secret_key = secret_key
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_NAME="citybrain_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=acc.session_hours),
    )
    server.before_request(_guard)
    server.register_error_handler(redis.ConnectionError, _redis_unreachable)
    server.register_error_handler(redis.TimeoutError, _redis_unreachable)


def take_sign_in_try(name: str, address: str) -> None:
    """Count a sign-in try before it is checked; 429 when the name or address failed too often."""
    if not access().throttle.take(name, address):
        raise TooManyRequests("too many failed sign-ins; try again in 15 minutes")
