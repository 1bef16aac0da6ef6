"""The push client in headless Chromium: updates by push, polling while push is away (psh005+).

A real `citybrain push` child process, the app served in-process, a worker thread and
one real Redis; the page is offline, and any console error fails the test unless the
test names it (the push process killed on purpose refuses connections).
"""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest
import requests

from dashboard.app import create_app
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.screen import source
from dashboard.settings import Settings
from tests import browser
from tests.events import PUDONG_POINT, XUHUI_POINT, incident
from tests.pushproc import PushProcess

pytestmark = pytest.mark.browser

TICK = "kpi-row.children"  # what the polling tick posts
PUSH_KILLED = pytest.mark.allow_console(
    r"ERR_CONNECTION_REFUSED|push/stream",
    reason="the push process is killed on purpose; the page's reconnects are refused "
           "until it is back")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    folder = tmp_path_factory.mktemp("push-browser")
    server = EmbeddedRedis(folder / "redis")
    server.start()
    env = {"REDIS_URL": server.url, "CITYBRAIN_STALE_AFTER_S": "600",
           "CITYBRAIN_BLOCK_MS": "200", "CITYBRAIN_UPDATE_MS": "500",
           "CITYBRAIN_CACHE_TTL_S": "0.2", "CITYBRAIN_AUDIT_DIR": str(folder / "audit")}
    push = PushProcess(env, folder / "push.log")
    settings = Settings.load(env={**env, "CITYBRAIN_PUSH_PORT": str(push.port)})
    client = connect(server.url)
    app = create_app(settings)
    geography = app.server.extensions["citybrain"].geography
    browser.seed(client, settings, geography, incidents=20)
    push.start()
    try:
        with browser.background_worker(settings, client, geography), \
                browser.live_server(app) as base, sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            yield SimpleNamespace(settings=settings, client=client, base=base, push=push,
                                  chromium=chromium)
            chromium.close()
    finally:
        push.stop()
        client.close()
        server.stop()


@pytest.fixture
def page(stack):
    context = stack.chromium.new_context(viewport={"width": 1920, "height": 1080})
    tried = browser.offline(context)
    page = context.new_page()
    page.stack, page.ticks, page.tick_counts = stack, [], []

    page.ticks_out = []  # how many ticks were out (sent, no answer yet) as each one left
    out = 0

    def is_tick(request) -> bool:  # type: ignore[no-untyped-def]
        return "_dash-update-component" in request.url and TICK in (request.post_data or "")

    def count(request) -> None:  # type: ignore[no-untyped-def]
        nonlocal out
        if is_tick(request):
            page.ticks.append(time.monotonic())
            page.tick_counts.extend(tick_inputs(json.loads(request.post_data)["inputs"]))
            out += 1
            page.ticks_out.append(out)

    def over(request) -> None:  # type: ignore[no-untyped-def]
        nonlocal out
        if is_tick(request):
            out -= 1
    page.on("request", count)
    page.on("requestfinished", over)
    page.on("requestfailed", over)
    page.replies = []  # (time, status, the outputs a tick reply set, its signature): for
    # failure messages

    def reply(response) -> None:  # type: ignore[no-untyped-def]
        if ("_dash-update-component" in response.url
                and TICK in (response.request.post_data or "")):
            try:
                outputs = response.json().get("response", {})
            except Exception as error:  # (for a failure message only)
                outputs = {"unreadable": repr(error)}
            page.replies.append((round(time.monotonic(), 2), response.status, sorted(outputs),
                                 json.dumps(outputs.get("tick-sig", ""))[:160]))
    page.on("response", reply)
    page.goto(stack.base + "/?area=310104&lang=en")
    page.wait_for_selector("#kpi-open", timeout=20_000)
    yield page
    context.close()
    if stack.push.process is None:  # a test that killed push and failed: the next needs it
        stack.push.start()
    assert tried == [], f"requests tried to leave the machine: {tried}"


def tick_inputs(inputs) -> list[int]:  # type: ignore[no-untyped-def]
    """The `n_intervals` a tick request carries (Dash nests grouped inputs)."""
    if isinstance(inputs, dict):
        if inputs.get("id") == "tick":
            return [inputs.get("value") or 0]
        inputs = list(inputs.values())
    if isinstance(inputs, list):
        return [n for item in inputs for n in tick_inputs(item)]
    return []


def intervals(page) -> int:
    """How often the polling interval fired (its `n_intervals`, from Dash's store)."""
    return page.evaluate("""() => { const st = window.store.getState();
        let node = st.layout; for (const k of st.paths.strs['tick']) node = node[k];
        return node.props.n_intervals || 0; }""")


def status(page) -> str:
    return page.evaluate("() => document.querySelector('#push-status').className")


def wait_status(page, kind: str) -> None:
    try:
        page.wait_for_function("k => document.querySelector('#push-status')"
                               "?.classList.contains('is-' + k)", arg=kind, timeout=90_000)
    except Exception as error:  # say what the client and the push process held
        raise AssertionError(f"the header never said {kind!r}: {held_by_push(page)}") from error


def held_by_push(page) -> dict:  # type: ignore[no-untyped-def]
    """What the push client, the push process and the web's beacon say now (for failures)."""
    held: dict = {"now": round(time.monotonic(), 2)}
    try:
        held["client"] = page.evaluate("() => window.dash_clientside.push.probe()")
        held["intervals_out"] = page.evaluate("() => window.cockpitIntervalsOut()")
        held["status"] = status(page)
    except Exception as error:  # (for a failure message only)
        held["client"] = repr(error)
    push = page.stack.push
    held["process"] = None if push.process is None else push.process.poll()
    try:
        held["push"] = requests.get(push.base + "/push/healthz", timeout=5).json()
    except requests.RequestException as error:
        held["push"] = repr(error)
    held["web"] = healthz(page.stack).get("push")
    held["push_log"] = push.log.read_text()[-1500:] if push.log.exists() else None
    held["tick_replies"] = page.replies[-6:]
    return held


def not_pushed(page) -> None:
    """Until the header no longer says push (the page saw it go)."""
    page.wait_for_function("() => !document.querySelector('#push-status')"
                           ".classList.contains('is-push')", timeout=20_000)


def shows(page, text: str, stack=None) -> None:  # type: ignore[no-untyped-def]
    """Until the feed shows `text`; a failure says what the page and (given `stack`) the
    state held."""
    try:
        page.wait_for_function("t => document.querySelector('#feed-list').innerText.includes(t)",
                               arg=text, timeout=20_000)
    except Exception as error:  # say what the page held (a timeout says nothing)
        held = page.evaluate("""() => ({feed: document.querySelector('#feed-list').innerText,
            status: document.querySelector('#push-status').className,
            sig: JSON.stringify(window.store.getState().layout ? (() => {
                let node = window.store.getState().layout;
                for (const k of window.store.getState().paths.strs['tick-sig']) node = node[k];
                return {feed: node.props.data && node.props.data.feed,
                        key: node.props.data && node.props.data.key}; })() : null)})""")
        if stack is not None:
            pre = stack.settings.state_prefix
            held["redis_feed"] = [x[:160] for x in stack.client.lrange(pre + "feed", 0, 3)]
            held["stats"] = stack.client.hgetall(pre + "stats")
            held["dead"] = stack.client.xrevrange(stack.settings.dead_stream_key, count=2)
            held["pending"] = stack.client.xpending(stack.settings.stream, stack.settings.group)
        raise AssertionError(f"{text!r} not in the feed: page held {held}; now "
                             f"{time.monotonic():.2f}; tick replies {page.replies[-12:]}"
                             ) from error


def data_clock_moves(page, times: int = 3) -> None:
    """Until the "data as of" clock (sent every second) changed `times` times."""
    for _ in range(times):
        shown = page.inner_text("#asof-time")
        page.wait_for_function("t => document.querySelector('#asof-time').innerText !== t",
                               arg=shown, timeout=20_000)


def healthz(stack) -> dict:
    return requests.get(stack.base + "/healthz", timeout=10).json()


def test_psh005_an_xadded_event_arrives_by_push_without_polling(page, stack):
    wait_status(page, "push")
    assert healthz(stack)["push"]["process"] == "up"
    stack.client.xadd(stack.settings.stream, incident("PUSH-1", title="pushed-one"))
    shows(page, "pushed-one")
    page.wait_for_function(  # the map's incident trace has it too (a clientside Patch)
        """() => { const gd = document.querySelector('#map-graph .js-plotly-plot');
            const t = gd && gd.data.find(d => d.uid === 'incidents-points');
            return t && JSON.stringify(t).includes('pushed-one'); }""", timeout=20_000)
    # From here on the page is pushed. (A tick the interval fired before push connected
    # can leave later: Dash holds a callback while the page's first callbacks are
    # pending, and on a loaded machine they take seconds. Those are not polling.)
    fired = intervals(page)
    data_clock_moves(page)  # over 2 s pushed: 4 ticks at 500 ms, were it polling
    assert intervals(page) == fired, "the polling interval went on firing while pushed"
    # (no tick at all is fine: push may connect before the first one; psh006 checks that
    # the tick counter counts, by polling with push killed)
    assert [t for t in page.tick_counts if t > fired] == [], "the page polled while pushed"
    assert "is-push" in status(page)


@PUSH_KILLED
def test_psh006_push_killed_the_page_polls_and_says_so_then_reconnects(page, stack):
    wait_status(page, "push")
    stack.push.stop(kill=True)
    not_pushed(page)
    lost = time.monotonic()
    stack.client.xadd(stack.settings.stream, incident("POLL-1", title="polled-one"))
    shows(page, "polled-one", stack)
    assert [t for t in page.ticks if t > lost], "the page did not poll while push was away"
    deadline = time.monotonic() + 20
    while healthz(stack)["push"]["process"] != "down":  # the beacon expires
        assert time.monotonic() < deadline, "/healthz did not say push is down"
        page.wait_for_timeout(250)
    assert healthz(stack)["push"]["fallback"] == "screens are polling"
    wait_status(page, "poll")
    stack.push.start()
    wait_status(page, "push")
    fired = intervals(page)
    stack.client.xadd(stack.settings.stream, incident("PUSH-2", title="pushed-again"))
    shows(page, "pushed-again")
    data_clock_moves(page)  # (a tick fired before the reconnect may still leave: not polling)
    assert intervals(page) == fired, "the polling interval went on firing after reconnect"
    assert [t for t in page.tick_counts if t > fired] == [], "polling went on after reconnect"


def test_psh009_a_map_draw_that_never_settles_holds_the_next_patches_a_while_only(page,
                                                                                  stack):
    """The soak's heap grew by patches joined behind a map draw that never settled: now
    the push client waits for a draw at most DRAW_WAIT_MS, then draws what it joined."""
    wait_status(page, "push")
    page.evaluate("""() => {  // the next map draw never shows (its promise never settles)
        const P = window.Plotly, react = P.react;
        P.react = function (gd) {
            const waiting = gd.cockpitWaiters;
            if (!waiting) { return react.apply(this, arguments); }
            delete gd.cockpitWaiters;
            P.react = react;
            const drawing = react.apply(this, arguments);
            waiting.forEach(waiter => waiter(new Promise(() => {})));
            return drawing;
        }; }""")
    stack.client.xadd(stack.settings.stream, incident("STUCK-1", title="stuck-one"))
    shows(page, "stuck-one")  # the lists: with the next draw, at most DRAW_WAIT_MS later
    stack.client.xadd(stack.settings.stream, incident("STUCK-2", title="stuck-two"))
    page.wait_for_function(  # the map too, once the wait is over (5 s; 30 s allowed)
        """() => { const gd = document.querySelector('#map-graph .js-plotly-plot');
            const t = gd && gd.data.find(d => d.uid === 'incidents-points');
            return t && JSON.stringify(t).includes('stuck-two'); }""", timeout=30_000)


def test_psh010_messages_that_waited_are_applied_together_and_lose_nothing(page, stack):
    """A page busy while messages arrive applies them in one go (their patches joined):
    every incident is in the feed, newest first, and on the map."""
    wait_status(page, "push")
    page.evaluate("() => setTimeout(() => { const end = Date.now() + 3000;"
                  " while (Date.now() < end) {} }, 0)")  # the page is busy for 3 s
    names = [f"batch-{i}" for i in range(6)]
    open_key = stack.settings.state_prefix + "open"
    for i, name in enumerate(names):  # one by one: each applied before the next is sent
        stack.client.xadd(stack.settings.stream, incident(
            f"BATCH-{i}", title=name, point=(XUHUI_POINT[0] + 0.001 * i, XUHUI_POINT[1])))
        assert browser.wait_for(lambda i=i: stack.client.hexists(open_key, f"BATCH-{i}"),
                                timeout_s=20)
    shows(page, names[-1])
    feed = page.inner_text("#feed-list")
    assert all(name in feed for name in names)
    assert sorted(names, key=feed.index) == names[::-1], "the feed is not newest first"
    page.wait_for_function(
        """names => { const gd = document.querySelector('#map-graph .js-plotly-plot');
            const t = gd && gd.data.find(d => d.uid === 'incidents-points');
            const text = t ? JSON.stringify(t) : '';
            return names.every(n => text.includes(n)); }""", arg=names, timeout=20_000)


SOURCES = """() => { const gd = document.querySelector('#map-graph .js-plotly-plot');
    const map = gd._fullLayout.map._subplot.map;
    const ids = Object.entries(map.getStyle().sources)
        .filter(([, s]) => s.type === 'geojson').map(([id]) => id);
    return {ids, sent: Object.getPrototypeOf(map.getSource(ids[0])).cockpitSent}; }"""


def test_psh011_a_map_source_given_the_data_it_holds_is_not_parsed_again(page):
    """Plotly hands every source to MapLibre on every figure: equal data is kept as it is,
    changed data goes through and is drawn."""
    page.wait_for_function(f"""() => {{ const gd = document.querySelector('{browser.MAP}');
        const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
        return m && m.map.cockpitSkipSame && !gd.cockpitDrawing; }}""", timeout=60_000)
    # Pushed map patches are kept off this map: one drawn between a redraw here and its
    # check would bring back the server's colours.
    page.evaluate("""() => { const dc = window.dash_clientside, set = dc.set_props;
        dc.set_props = function (id) {
            return id === 'map-graph' ? undefined : set.apply(this, arguments); }; }""")
    redraw = f"""async change => {{ const gd = document.querySelector('{browser.MAP}');
        const data = JSON.parse(JSON.stringify(gd.data));
        const fill = data.find(d => d.uid === 'risk-fill');
        if (change) {{ fill.z = fill.z.map((z, i) => i === 0 ? (z > 50 ? 5 : 95) : z); }}
        const layout = Object.assign({{}}, gd.layout, {{datarevision: Date.now()}});
        await Plotly.react(gd, data, layout);
        await gd.cockpitDrawing;
        return fill.locations[0]; }}"""
    held = f"""area => {{ const gd = document.querySelector('{browser.MAP}');
        const map = gd._fullLayout.map._subplot.map;
        const id = Object.keys(map.getStyle().sources).find(s => s.includes('risk-fill'));
        return map.getSource(id).cockpitHeld.features
            .filter(f => f.id === area).map(f => f.properties.fc); }}"""
    page.evaluate(redraw, False)  # a source holds what it was given since the first draw
    before = page.evaluate(SOURCES)
    assert len(before["ids"]) >= 3 and isinstance(before["sent"], int)
    area = page.evaluate(redraw, False)  # every trace calculated again, every source handed over
    assert page.evaluate(SOURCES)["sent"] == before["sent"], "equal data was parsed again"
    colour = page.evaluate(held, area)
    page.evaluate(redraw, True)  # one area of the risk fill recoloured
    after = page.evaluate(SOURCES)
    assert before["sent"] < after["sent"] < before["sent"] + len(before["ids"])
    assert colour and page.evaluate(held, area) not in ([], colour), "the new colour is not held"


LAYER_MOVES = f"""() => {{ const gd = document.querySelector('{browser.MAP}');
    const map = gd._fullLayout.map._subplot.map;
    if (!map.cockpitMoves) {{
        map.cockpitMoves = 0;
        for (const name of ['addLayer', 'removeLayer', 'moveLayer']) {{
            const call = map[name];
            map[name] = function () {{
                map.cockpitMoves += 1; return call.apply(this, arguments); }};
        }}
    }}
    return map.cockpitMoves; }}"""
PLACES = f"""() => {{ const gd = document.querySelector('{browser.MAP}');
    const ids = gd._fullLayout.map._subplot.map.getStyle().layers.map(l => l.id);
    return gd.data.map((t, i) => {{
        const own = ids.map((id, at) => id.startsWith('plotly-trace-layer-' + t.uid + '-')
                                        ? at : -1).filter(at => at >= 0);
        return [t.uid, t.below, ids.indexOf(t.below), own]; }}); }}"""


def test_psh012_a_pushed_update_moves_no_map_layer(page, stack):
    """Each trace keeps its layers under its own slot from one figure to the next: a pushed
    update sets data, it neither removes nor adds a layer (Plotly did both, for every trace
    that shared a place, on every update: each source tiled again, the map drawn twice)."""
    wait_status(page, "push")
    page.wait_for_function(f"""() => {{ const gd = document.querySelector('{browser.MAP}');
        const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
        return m && m.cockpitKeepsPlaces && !gd.cockpitDrawing; }}""", timeout=60_000)

    def drawn(name: str) -> None:
        page.wait_for_function(f"""n => {{ const gd = document.querySelector('{browser.MAP}');
            const t = gd.data.find(d => d.uid === 'incidents-points');
            return t && JSON.stringify(t).includes(n) && !gd.cockpitDrawing; }}""",
                               arg=name, timeout=30_000)

    # Layer calls are counted from the second pushed update on.
    stack.client.xadd(stack.settings.stream, incident(
        "PLACE-0", title="place-0", point=(XUHUI_POINT[0] - 0.002, XUHUI_POINT[1])))
    drawn("place-0")
    moves = page.evaluate(LAYER_MOVES)
    for i in range(1, 4):
        stack.client.xadd(stack.settings.stream, incident(
            f"PLACE-{i}", title=f"place-{i}",
            point=(XUHUI_POINT[0] - 0.002, XUHUI_POINT[1] + 0.001 * i)))
        drawn(f"place-{i}")
    assert page.evaluate(LAYER_MOVES) == moves, "an update removed or added map layers"
    places = page.evaluate(PLACES)
    assert len({below for _, below, _, _ in places}) == len(places) > 3
    slots = [at for _, _, at, _ in places]
    assert all(at >= 0 for at in slots) and slots == sorted(slots)
    for (uid, _, slot, own), before in zip(places, [-1, *slots], strict=False):
        assert all(before < at < slot for at in own), f"{uid}: {places}"


RECORD_UPDATES = """(() => { const add = EventSource.prototype.addEventListener;
    window.cockpitUpdates = [];  // every pushed message's data, as it arrives
    EventSource.prototype.addEventListener = function (type, listener, options) {
        if (type === 'update') {
            add.call(this, type, e => window.cockpitUpdates.push(e.data), options);
        }
        return add.call(this, type, listener, options); }; })()"""
HANG_DRAWS = """() => { const P = window.Plotly, react = P.react;
    P.react = function (gd) {  // from now on no map draw settles (push waits DRAW_WAIT_MS)
        const waiting = gd.cockpitWaiters;
        delete gd.cockpitWaiters;
        const drawing = react.apply(this, arguments);
        (waiting || []).forEach(waiter => waiter(new Promise(() => {})));
        return drawing; }; }"""
DRAW_WAIT_MS = 5000  # assets/push.js


@PUSH_KILLED
def test_psh014_what_push_left_waiting_does_not_land_on_what_polling_shows(page, stack):
    """A message that waited for a map draw when push went away was applied after the
    polled update: its feed item a second time, the header saying push, and the polled
    signature replaced (so polling never mended it). Now it is dropped, and polling
    starts once the map has drawn what push gave it."""
    page.context.add_init_script(RECORD_UPDATES)
    page.reload()
    page.wait_for_selector("#kpi-open", timeout=20_000)
    wait_status(page, "push")
    page.evaluate(HANG_DRAWS)
    stack.client.xadd(stack.settings.stream, incident("WAIT-1", title="waiting-one"))
    shows(page, "waiting-one")  # applied; its map patch is drawing (for DRAW_WAIT_MS)
    stack.client.xadd(stack.settings.stream, incident("WAIT-2", title="waiting-two"))
    page.wait_for_function("""t => window.cockpitUpdates.some(
        d => window.dash_clientside.push.text(d).includes(t))""", arg="waiting-two",
                           timeout=20_000)  # arrived; it waits behind the draw
    try:
        stack.push.stop(kill=True)
        lost = page.evaluate("() => performance.now()")
        shows(page, "waiting-two")  # by polling
        page.wait_for_function(  # the draw wait is over on the page's own clock ...
            "t => performance.now() > t", arg=lost + 2 * DRAW_WAIT_MS, timeout=60_000,
            polling=250)
        with page.expect_response(lambda r: "_dash-update-component" in r.url and TICK in (
                r.request.post_data or ""), timeout=30_000):
            pass  # ... and a tick answered after it
        feed = page.inner_text("#feed-list")
        assert feed.count("waiting-two") == 1, f"the feed shows it twice: {feed!r}"
        assert "is-push" not in status(page), "the header says push while push is down"
    finally:
        stack.push.start()
    wait_status(page, "push")


@PUSH_KILLED
def test_psh015_a_tick_answer_landing_after_push_took_over_brings_a_snapshot(page, stack):
    """A tick sent while polling whose answer lands once push is back set the feed of an
    older moment, and push's next patch went onto it: an incident missing for good.
    Now the page asks push for a snapshot."""
    wait_status(page, "push")
    stack.push.stop(kill=True)
    held: list = []  # a tick answer that changes the feed, held back: its route and answer
    try:
        not_pushed(page)

        def hold(route) -> None:  # type: ignore[no-untyped-def]
            if TICK not in (route.request.post_data or ""):
                route.continue_()
                return
            answer = route.fetch()  # (any later tick held too: what lands must be
            if held or "feed-list" in answer.json().get("response", {}):  # the older
                held.append((route, answer))  # moment, whatever the gate lets leave)
            else:
                route.fulfill(response=answer)
        page.context.route(lambda url: "_dash-update-component" in url, hold)
        stack.client.xadd(stack.settings.stream, incident("HELD-0", title="polled-held"))
        browser.wait_for(lambda: held or page.wait_for_timeout(100), timeout_s=30)
        assert held, "no tick brought the polled incident while push was away"
    finally:
        stack.push.start()
    wait_status(page, "push")  # the snapshot is shown; the tick's answer still held
    stack.client.xadd(stack.settings.stream, incident("HELD-1", title="while-held"))
    shows(page, "while-held")
    for route, answer in held:  # the older moment lands
        route.fulfill(response=answer)
    stack.client.xadd(stack.settings.stream, incident("HELD-2", title="after-held"))
    shows(page, "after-held")
    try:
        page.wait_for_function("""() => { const t = document.querySelector('#feed-list')
            .innerText; return t.includes('while-held') && t.includes('after-held'); }""",
                               timeout=20_000)
    except Exception as error:  # say what the page and push held
        raise AssertionError(f"the feed lost an incident: {page.inner_text('#feed-list')!r}; "
                             f"{held_by_push(page)}") from error
    # (the late answer says push is down when it left after the beacon expired: the open
    # stream says otherwise, and the page stays pushed)
    assert "is-push" in status(page), f"a late tick's answer turned push off: {held_by_push(page)}"


def test_psh016_another_area_as_the_tour_goes_is_pushed_and_says_so(page, stack):
    """The tour (and any link) draws the screen anew for the next area, with a fresh
    header: the page went on being pushed, but the header no longer said so. Now it
    says push again, and the new area's events arrive by push."""
    wait_status(page, "push")
    fired = intervals(page)
    page.evaluate("""s => { window.history.replaceState({}, '', window.location.pathname + s);
        window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""",
                  "?area=310115&lang=en")  # as assets/tour.js goes to its next area
    page.wait_for_selector("#screen[data-search*='310115']", timeout=20_000)
    wait_status(page, "push")
    stack.client.xadd(stack.settings.stream, incident("AREA-1", title="pudong-one",
                                                      point=PUDONG_POINT))
    shows(page, "pudong-one")
    assert "is-push" in status(page)
    assert intervals(page) == fired, "the page polled in the new area"


@PUSH_KILLED
def test_psh017_ticks_slower_than_the_interval_leave_one_at_a_time_and_land(page, stack,
                                                                            monkeypatch):
    """A tick slower than the interval never showed: Dash drops a callback's answer once
    the callback is asked again, so a polling wall on a loaded server froze, and a fresh
    page never connected to push (`configure` reads a tick output and waited behind ticks
    always out). Now the next tick leaves once the last one answered."""
    frame = source.frame

    def loaded(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.7)  # every state read of the web takes longer than the tick (500 ms)
        return frame(*args, **kwargs)
    monkeypatch.setattr(source, "frame", loaded)
    page.reload()
    page.wait_for_selector("#kpi-open", timeout=20_000)
    wait_status(page, "push")
    stack.push.stop(kill=True)
    lost = time.monotonic()
    try:
        not_pushed(page)
        stack.client.xadd(stack.settings.stream, incident("SLOW-1", title="slow-one"))
        shows(page, "slow-one", stack)  # push is down: a tick's answer brought it
        polled = lambda: len([t for t in page.ticks if t > lost])  # noqa: E731
        assert browser.wait_for(lambda: polled() >= 3 or page.wait_for_timeout(100),
                                timeout_s=60), "the page stopped polling"
    finally:
        stack.push.start()
    assert max(page.ticks_out) == 1, f"ticks overlapped: {page.ticks_out}"
