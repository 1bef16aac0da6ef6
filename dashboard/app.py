"""The Dash app factory: `create_app(settings)`; `server` for a WSGI server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dash

from dashboard import intake, viewer
from dashboard.actions import actions
from dashboard.api import api, replay_busy
from dashboard.auth.setup import install_access
from dashboard.export import exports
from dashboard.geojson_export import geojson_exports
from dashboard.heap import freeze_start_up
from dashboard.logs import configure as configure_logs
from dashboard.metrics import web as web_metrics
from dashboard.metrics.scrape import metrics
from dashboard.rankings_api import rankings_api
from dashboard.screen import callbacks, refusal
from dashboard.screen.geo import geo
from dashboard.screen.glyphs import glyphs
from dashboard.screen.heap_guard import heap_guard
from dashboard.screen.index import index_page
from dashboard.screen.layout import skeleton
from dashboard.services import Services
from dashboard.settings import Settings
from dashboard.state.replay import ReplayBusy

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def create_app(settings: Settings | None = None,
               clock: Callable[[], float] = time.time) -> dash.Dash:
    """Build the app: services (Redis, geography, cache), read API, screen.

    `clock` is "now" for the state read (today, the last 24 h, overdue) and the rankings'
    periods (tests inject one).
    """
    settings = settings or Settings.load()
    services = Services.build(settings, clock)
    app = dash.Dash(
        __name__,
        title="City Operations Cockpit",
        serve_locally=True,
        update_title=None,  # type: ignore[arg-type]  # None: no "Updating..." title
        suppress_callback_exceptions=True,
        assets_folder=str(ASSETS),
        on_error=refusal.on_error,
    )
    server = app.server
    server.extensions["citybrain"] = services
    server.json.ensure_ascii = False  # type: ignore[attr-defined]
    server.json.sort_keys = False  # type: ignore[attr-defined]
    web_metrics.install(server)  # first: the request id is there for every later hook
    install_access(server, services)
    viewer.install(server)
    server.register_error_handler(ReplayBusy, replay_busy)
    server.register_blueprint(api)
    server.register_blueprint(actions)
    server.register_blueprint(exports)
    server.register_blueprint(geojson_exports)
    server.register_blueprint(rankings_api)
    intake.install(server, services)
    server.register_blueprint(geo)
    server.register_blueprint(glyphs)
    server.register_blueprint(heap_guard)
    server.register_blueprint(metrics)
    app.layout = skeleton(settings)
    app.index_string = index_page(settings.page_start_s, settings.heap_ceiling_mb)
    callbacks.attach(app)
    # Dash (4.4) registers the component libraries it may serve, the assets and the
    # callbacks in `_setup_server`, a `before_request` hook that marks itself done as it
    # starts: a second request thread that came in meanwhile answered 500 ("dash" is not
    # a registered library). Dash has no public way to do it; doing it here makes every
    # process (each gunicorn worker calls `wsgi()`) set up before it serves (test_cold).
    app._setup_server()
    return app


def wsgi() -> object:
    """The WSGI callable for `gunicorn 'dashboard.app:wsgi()'`."""
    settings = Settings.load()
    configure_logs(settings.log_format)
    server = create_app(settings).server
    freeze_start_up()
    return server
