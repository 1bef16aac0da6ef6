"""What one web process shares between its requests: settings, Redis, geography, cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import flask
import redis

from dashboard.geography import Geography
from dashboard.metrics.presence import SCREEN_WINDOW_S, SeenBuffer, presence_key
from dashboard.push.beacon import PushStatus
from dashboard.redis_conn import connect
from dashboard.roads import city_geography
from dashboard.screen import tour
from dashboard.settings import Settings
from dashboard.state.replay import Replayer
from dashboard.state.store import StateCache


@dataclass(frozen=True)
class Services:
    """Built once per process by `create_app`; read-only afterwards."""

    settings: Settings
    client: redis.Redis
    geography: Geography
    cache: StateCache
    replayer: Replayer
    screens: SeenBuffer  # viewers whose screen ticked, for the `screens connected` gauge
    push: PushStatus  # whether screens should connect to the push process
    clock: Callable[[], float] = field(default=time.time)  # "now" of the state and rankings

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], float] = time.time) -> Services:
        """Connect and load geography; a bad boundary or road file or setting fails here."""
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set (use `citybrain run` for an embedded Redis)")
        client = connect(settings.redis_url, settings.redis_cluster)
        geography = city_geography(settings)
        tour.check(settings, geography)  # a wall tour of unknown areas stops the start
        return cls(settings, client, geography, StateCache(settings, client, geography, clock),
                   Replayer(settings, client, geography),
                   SeenBuffer(client, presence_key(settings, "screens"), SCREEN_WINDOW_S),
                   PushStatus(settings, client), clock)


def current() -> Services:
    """The services of the app serving this request."""
    return flask.current_app.extensions["citybrain"]
