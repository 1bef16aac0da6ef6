"""The push process: a small ASGI app (Starlette, server-sent events) beside the Flask web.

    GET /push/stream?area=<id>&lang=<zh-CN|en>   text/event-stream of `update` events
    GET /push/healthz                            the hub's numbers (JSON)

A stream needs what the web needs (the signed session cookie, or the open demo
mode); an area outside the user's scope answers 403 (logged and audited, as the
web does). The event id is the message's id: a browser that reconnects with
`Last-Event-ID` (or `?last=`) resumes if it missed nothing, else gets a snapshot.
A comment every `KEEP_ALIVE_S` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlparse

import redis
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.auth.audit import Audit
from dashboard.auth.guard import in_scope
from dashboard.auth.users import UserStore
from dashboard.heap import freeze_start_up
from dashboard.metrics.presence import SCREEN_WINDOW_S, SeenBuffer, presence_key
from dashboard.push.auth import PushAuth
from dashboard.push.beacon import BEAT_S, beat
from dashboard.push.hub import Hub, Screen
from dashboard.redis_conn import connect
from dashboard.roads import city_geography
from dashboard.screen.layout import selection
from dashboard.settings import Settings
from dashboard.viewer import COOKIE as VIEWER_COOKIE

log = logging.getLogger(__name__)

KEEP_ALIVE_S = 15
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def cors(request: Request) -> dict[str, str]:
    """Let the cockpit's own page read the stream from another port of the same host."""
    origin = request.headers.get("origin", "")
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
    if origin and urlparse(origin).hostname == host:
        return {"Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
    return {}


def create_push_app(settings: Settings) -> Starlette:
    """The push app: the hub thread and the beacon run while the app does (lifespan)."""
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set (use `citybrain run` for an embedded Redis)")
    client = connect(settings.redis_url, settings.redis_cluster)
    geography = city_geography(settings)  # with its roads: the same traces as the web's
    store = UserStore(client, settings.state_prefix, geography)
    auth = PushAuth(settings, store, geography)
    audit = Audit.build(settings, client, geography)
    screens = SeenBuffer(client, presence_key(settings, "screens"), SCREEN_WINDOW_S)
    hub = Hub(settings, client, geography, screens, open_mode=auth.open_mode)
    since_ms = int(time.time() * 1000)

    async def stream(request: Request) -> Response:
        peer = request.client.host if request.client else None
        found = await asyncio.to_thread(auth.user, request.cookies, request.headers, peer)
        extra = cors(request)
        if found is None:
            return JSONResponse({"error": "sign_in_required"}, 401, headers=extra)
        user, sid = found
        search = "?" + urlencode({k: v for k, v in request.query_params.items()
                                  if k in ("area", "lang")})
        area, lang = selection(search, geography, settings.lang, user.scope)
        if not in_scope(user, area, geography):
            log.warning("out of scope: %s (%s %s) asked push for %s from %s", user.name,
                        user.role, user.scope, area, peer)
            await asyncio.to_thread(audit.record, user, peer or "?", "denied", area,
                                    request.url.path)
            return JSONResponse({"error": f"area {area} is outside your scope"}, 403,
                                headers=extra)
        resume = request.headers.get("last-event-id") or request.query_params.get("last")
        screen = Screen(user, sid, f"{user.name}.{request.cookies.get(VIEWER_COOKIE, '-')}",
                        (user.scope, area, lang), asyncio.Queue(), asyncio.get_running_loop(),
                        resume=resume or None)
        hub.subscribe(screen)

        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    item = await screen.queue.get()
                    if item is None:
                        return
                    screen.pending -= 1
                    data, changed_ms = item
                    yield data  # resumes once it is written to the connection
                    if changed_ms is not None:
                        hub.stats.delivered.append(
                            (time.monotonic(), time.time() * 1000 - changed_ms))
            finally:
                hub.unsubscribe(screen)

        return EventSourceResponse(events(), headers={**HEADERS, **extra}, ping=KEEP_ALIVE_S,
                                   ping_message_factory=_ping)

    async def healthz(request: Request) -> Response:
        stats = hub.stats
        return JSONResponse({"streams": hub.streams(), "rounds": stats.rounds,
                             "messages": stats.messages, "sent": stats.sent,
                             "dropped": stats.dropped, "ended": stats.ended,
                             "redis_calls": stats.redis_calls, "since_ms": since_ms,
                             "delivery": stats.delivery(),
                             "round_ms": stats.rounds_ms()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = threading.Thread(target=hub.run, args=(stop,), name="push-hub", daemon=True)
        beacon = threading.Thread(target=_beat, args=(hub, settings, client, since_ms, stop),
                                  name="push-beacon", daemon=True)
        worker.start()
        beacon.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(5)
            beacon.join(5)
            with contextlib.suppress(Exception):
                client.delete(settings.state_prefix + "push")

    app = Starlette(routes=[Route("/push/stream", stream), Route("/push/healthz", healthz)],
                    lifespan=lifespan)
    app.state.hub = hub
    return app


def _ping() -> ServerSentEvent:
    """A keep-alive the page sees (a comment would not reach its watchdog)."""
    return ServerSentEvent(event="ping", data="")


def _beat(hub: Hub, settings: Settings, client: redis.Redis, since_ms: int,
          stop: threading.Event) -> None:
    """Keep the beacon alive while the process serves."""
    while not stop.is_set():
        try:
            beat(client, settings, hub.streams(), since_ms)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("could not write the push beacon: %s", exc)
        stop.wait(BEAT_S)


def serve(settings: Settings) -> None:
    """Run the push process with uvicorn until SIGTERM."""
    import uvicorn

    app = create_push_app(settings)
    freeze_start_up()
    uvicorn.run(app, host=settings.host, port=settings.push_port,
                log_level="warning", timeout_graceful_shutdown=2, access_log=False)
