"""Who opens a push stream: the web's signed session cookie, checked as the web checks it.

The cookie is Flask's (signed with `CITYBRAIN_SECRET_KEY`) and holds only a session
id; the session lives in Redis, so a sign-out, an account change or a revoked wall
token ends it for the push process as for the web. Without accounts everyone is
the demo user (the city), as on the web; behind a single-sign-on proxy its header
names the account, believed only from `CITYBRAIN_TRUSTED_PROXIES`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta

import flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from dashboard.auth.guard import UserCache
from dashboard.auth.identity import User
from dashboard.auth.sessions import Sessions
from dashboard.auth.users import UserStore
from dashboard.geography import Geography
from dashboard.settings import Settings

COOKIE = "citybrain_session"  # as `dashboard.auth.guard.install` names it


class PushAuth:
    """Turns a request's cookies (and a proxy's header) into a user, or None."""

    def __init__(self, settings: Settings, store: UserStore, geography: Geography) -> None:
        self.settings = settings
        self.sessions: Sessions = store.sessions
        self.cache = UserCache(store)
        self.geography = geography
        signer = flask.Flask("citybrain-push")
        signer.secret_key = settings.secret_key
        self._serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
        self._max_age = int(timedelta(hours=settings.session_hours).total_seconds())

    def open_mode(self) -> bool:
        """No accounts exist: everyone is the demo user."""
        return not self.cache.users()

    def session_id(self, cookies: Mapping[str, str]) -> str | None:
        """The session id the signed cookie holds, if the signature is good and not too old."""
        value = cookies.get(COOKIE)
        if not value or self._serializer is None:
            return None
        try:
            data = self._serializer.loads(value, max_age=self._max_age)
        except BadSignature:
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        return sid if isinstance(sid, str) else None

    def user(self, cookies: Mapping[str, str], headers: Mapping[str, str],
             peer: str | None) -> tuple[User, str | None] | None:
        """The user and their session id (None for the demo user and single sign-on)."""
        if self.open_mode():
            return User("demo", "city", self.geography.root_id), None
        if not self.settings.secret_key:
            return None
        header = self.settings.sso_header
        if header and (named := headers.get(header.lower(), "").strip()) and self._proxy(peer):
            sso_user = self.cache.users().get(named)
            return (sso_user, None) if sso_user else None
        sid = self.session_id(cookies)
        if sid is None:
            return None
        user = self.sessions.user(sid)
        return (user, sid) if user else None

    def _proxy(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in net for net in self.settings.trusted_proxies)
