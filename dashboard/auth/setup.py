"""Wiring accounts, the guard and the sign-in pages into the web app."""

from __future__ import annotations

import flask

from dashboard.auth.audit import Audit
from dashboard.auth.guard import Access, UserCache, install
from dashboard.auth.routes import auth
from dashboard.auth.throttle import SignInThrottle
from dashboard.auth.users import UserStore
from dashboard.services import Services
from dashboard.settings import SettingsError


def user_store(services: Services) -> UserStore:
    """The accounts of this city."""
    return UserStore(services.client, services.settings.state_prefix, services.geography)


def install_access(server: flask.Flask, services: Services) -> Access:
    """Guard every request; refuse to start with accounts but no signing key."""
    settings = services.settings
    store = user_store(services)
    if not settings.secret_key and store.any():
        raise SettingsError("CITYBRAIN_SECRET_KEY is not set, but accounts exist: set it "
                            "(the same value on every web process) to sign sessions")
    if settings.sso_header and not settings.trusted_proxies:
        raise SettingsError("CITYBRAIN_SSO_HEADER is set but CITYBRAIN_TRUSTED_PROXIES is "
                            "empty: name the single-sign-on proxy's address, or anyone could "
                            "send the header")
    acc = Access(store=store, cache=UserCache(store),
                 audit=Audit.build(settings, services.client, services.geography),
                 throttle=SignInThrottle(services.client, settings.state_prefix),
                 geography=services.geography,
                 session_hours=settings.session_hours, proxies=settings.trusted_proxies,
                 sso_header=settings.sso_header)
    install(server, acc, settings.secret_key, settings.secure_cookies)
    server.register_blueprint(auth)
    return acc
