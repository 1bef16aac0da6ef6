"""The wall in headless Chromium: alert focus end to end and the tour (run: -k "alr or tur").

One Redis, one worker thread, one app server with accounts (a wall screen signed
in by its token, a district official, a city operator) and one Chromium; pages
run offline. The city holds no severity-4 incident at first, so the only
alerts are the ones the tests XADD. Waits are for conditions, with generous
timeouts for a busy machine.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard import alerts
from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.geography import load_geography
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.settings import Settings
from dashboard.state.store import StateCache
from tests import browser
from tests.events import PUDONG_POINT, XUHUI_POINT, incident, now_ms, risk, traffic

pytestmark = pytest.mark.browser

SECRET = "wall-test-secret-" + "w" * 40
PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
MAP = "#map-graph .js-plotly-plot"
WAIT_MS = 45_000  # the machine the tests run on may be very busy (2 cores, many suites)
UPDATE_BUDGET_MS = 30_000  # XADD to the wall's map and card: worker, tick, queue, fly
SHOW_S = 12.0
PAUSE_S = 4.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = EmbeddedRedis(tmp_path_factory.mktemp("wall-redis"))
    server.start()
    settings = Settings.load(env={
        "REDIS_URL": server.url, "CITYBRAIN_CACHE_TTL_S": "0.2", "CITYBRAIN_UPDATE_MS": "500",
        "CITYBRAIN_STALE_AFTER_S": "600", "CITYBRAIN_BLOCK_MS": "200",
        "CITYBRAIN_AUDIT_DIR": str(tmp_path_factory.mktemp("wall-audit")),
        "CITYBRAIN_WALL_TOUR": "off", "CITYBRAIN_ALERT_SHOW_S": str(SHOW_S),
        "CITYBRAIN_TOUR_PAUSE_S": str(PAUSE_S)}).replace(secret_key=SECRET)
    client = connect(server.url)
    geography = load_geography(None, "shanghai")
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    store.add("wall1", "wall", None)
    token = store.issue_token("wall1")
    t = now_ms(-300)
    for i, compound in enumerate(geography.descendants_at("310104", "compound")[:40]):
        client.xadd(settings.stream, risk(compound, "fire_hazards", i % 4, ts=t))
    client.xadd(settings.stream, traffic("SEG1", 40, 60, ts=t))
    client.xadd(settings.stream, incident("QUIET", ts=t, severity="2", title="平常"))
    app = create_app(settings)
    with browser.background_worker(settings, client, geography), \
            browser.live_server(app) as base, sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        yield SimpleNamespace(server=server, settings=settings, client=client, app=app,
                              geography=geography, base=base, chromium=chromium, token=token)
        chromium.close()
    client.close()
    server.stop()


def _page(stack, path: str):
    context = stack.chromium.new_context(viewport={"width": 1920, "height": 1080})
    context.tried = browser.offline(context)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(stack.base + path)
    return page


def _signed_in(stack, name: str, query: str = ""):
    page = _page(stack, "/")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#kpi-open", timeout=WAIT_MS)
    if query:
        page.goto(stack.base + "/" + query)
    wait_map(page)
    return page


def _close(page) -> None:
    context = page.context
    context.close()
    assert context.tried == [], f"requests tried to leave the machine: {context.tried}"
    assert page.dialogs == [], "a script ran from untrusted text"


@pytest.fixture(scope="module")
def wall(stack):
    page = _page(stack, f"/?token={stack.token}")
    wait_map(page)
    yield page
    _close(page)


@pytest.fixture(scope="module")
def official(stack):
    page = _signed_in(stack, "xuhui")
    yield page
    _close(page)


def wait_map(page) -> None:
    """Until the screen's map is drawn."""
    page.wait_for_selector("#kpi-open", timeout=WAIT_MS)
    page.wait_for_function(
        f"""() => {{ const gd = document.querySelector('{MAP}');
            const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
            return m && m.map && m.map.loaded(); }}""", timeout=WAIT_MS)


def centre(page) -> dict:
    """Where the map really is (MapLibre's own centre), and its zoom."""
    return page.evaluate(f"""() => {{ const m = document.querySelector('{MAP}')
        ._fullLayout.map._subplot.map; const c = m.getCenter();
        return {{lon: c.lng, lat: c.lat, zoom: m.getZoom()}}; }}""")


def wait_centre(page, lon: float, lat: float, timeout: int = WAIT_MS) -> None:
    page.wait_for_function(
        f"""([lon, lat]) => {{ const gd = document.querySelector('{MAP}');
            const m = gd && gd._fullLayout.map && gd._fullLayout.map._subplot;
            if (!m) return false; const c = m.map.getCenter();
            return Math.abs(c.lng - lon) < 0.002 && Math.abs(c.lat - lat) < 0.002; }}""",
        arg=[lon, lat], timeout=timeout)


def card_shows(page, text: str, timeout: int = WAIT_MS) -> None:
    page.wait_for_function(
        """t => { const c = document.querySelector('#alert-card');
            const w = document.querySelector('#alert-what');
            return c && !c.classList.contains('hidden') && w && w.textContent === t; }""",
        arg=text, timeout=timeout)


def card_hidden(page, timeout: int = WAIT_MS) -> None:
    page.wait_for_function(
        "() => document.querySelector('#alert-card')?.classList.contains('hidden')",
        timeout=timeout)


def test_alr007_severity_4_incident_flies_the_wall_there_and_back(wall, stack):
    page = wall
    card_hidden(page)
    before = centre(page)
    title = f"{XSS} 燃气管道泄漏"
    sent = time.monotonic()
    stack.client.xadd(stack.settings.stream, incident(
        "WALL-1", point=PUDONG_POINT, severity="4", category="fire_hazard", title=title))
    # within the update budget: the card shows the title as text and the map is there
    card_shows(page, title, timeout=UPDATE_BUDGET_MS)
    shown = page.evaluate("""() => { const text = id => document.getElementById(id).textContent;
        return {where: text('alert-where'), why: text('alert-why'),
                elements: document.querySelectorAll('#alert-card img, #alert-what *').length,
                ring: !document.getElementById('alert-ring').classList.contains('hidden')}; }""")
    assert shown["elements"] == 0  # the title is text, never HTML
    assert "浦东新区" in shown["where"] and "特别严重" in shown["why"]
    assert shown["ring"]  # it pulses at the map's centre
    wait_centre(page, *PUDONG_POINT, timeout=UPDATE_BUDGET_MS)
    assert time.monotonic() - sent < UPDATE_BUDGET_MS / 1000
    assert centre(page)["zoom"] > before["zoom"] + 2
    # after the card's time the wall goes back to the view it had
    card_hidden(page, timeout=int(SHOW_S * 1000) + WAIT_MS)
    try:
        wait_centre(page, before["lon"], before["lat"])
    except PlaywrightTimeout:
        pytest.fail(f"the map did not fly back to {before}: it is at {centre(page)}")
    assert page.dialogs == []


def test_alr008_an_official_sees_the_card_and_keeps_the_map(official, stack):
    page = official
    card_hidden(page)
    before = centre(page)
    stack.client.xadd(stack.settings.stream, incident(
        "OFF-1", point=(XUHUI_POINT[0] + 0.01, XUHUI_POINT[1] + 0.01), severity="4",
        title="路面塌陷"))
    card_shows(page, "路面塌陷")
    after = centre(page)
    assert abs(after["lon"] - before["lon"]) < 1e-6 and abs(after["lat"] - before["lat"]) < 1e-6
    assert page.evaluate("() => document.querySelector('#alert-ring')"
                         ".classList.contains('hidden')")


def test_alr009_acknowledged_from_the_card_audited_and_gone(official, stack):
    page = official
    card_hidden(page, timeout=int(SHOW_S * 1000) + WAIT_MS)
    stack.client.xadd(stack.settings.stream, incident(
        "OFF-2", point=(XUHUI_POINT[0] - 0.01, XUHUI_POINT[1] - 0.005), severity="4",
        title="燃气泄漏 请确认"))
    card_shows(page, "燃气泄漏 请确认")
    page.click("#alert-ack")
    card_hidden(page, timeout=int(SHOW_S * 1000) - 2000)  # at once, not at the card's end
    audit = stack.app.server.extensions["citybrain_access"].audit

    def acked() -> dict | None:
        return next((e for e in audit.latest() if e["action"] == "alert_ack"
                     and "燃气泄漏 请确认" in e["detail"]), None)

    entry = browser.wait_for(acked, timeout_s=WAIT_MS / 1000)
    assert entry and entry["user"] == "xuhui" and entry["area"].startswith("310104")
    assert browser.wait_for(  # audited first, then stored: the store follows the audit
        lambda: entry["target"] in alerts.acknowledged(stack.client, stack.settings, now_ms()),
        timeout_s=WAIT_MS / 1000)
    view = StateCache(stack.settings, stack.client, stack.geography).view()
    listed = alerts.alerts(view, stack.settings, alerts.acknowledged(
        stack.client, stack.settings, now_ms()), "zh-CN")
    assert "燃气泄漏 请确认" not in [a.what for a in listed]


def badge(page) -> str:
    return page.evaluate("() => (document.querySelector('#tour-badge') || {}).textContent")


def wait_badge(page, text: str, timeout: int = WAIT_MS) -> None:
    page.wait_for_function(
        "t => { const b = document.querySelector('#tour-badge');"
        " return b && b.textContent === t && !b.classList.contains('hidden'); }",
        arg=text, timeout=timeout)


@pytest.fixture(scope="module")
def boss(stack):
    page = _signed_in(stack, "boss")
    yield page
    _close(page)


def test_tur001_the_tour_moves_on_every_few_seconds(boss, stack):
    page = boss
    assert page.locator("#tour-badge.hidden").count() == 1  # no tour: no badge
    page.goto(stack.base + "/?tour=310000,310104,310101&every=3")
    wait_badge(page, "巡屏 1/3")
    page.wait_for_function("() => location.search.includes('area=310000')", timeout=WAIT_MS)
    wait_badge(page, "巡屏 2/3")
    page.wait_for_function("() => location.search.includes('area=310104')"
                           " && location.search.includes('step=2')", timeout=WAIT_MS)
    page.wait_for_selector("#detail-title:has-text('徐汇区')", timeout=WAIT_MS)
    wait_badge(page, "巡屏 3/3")
    page.wait_for_selector("#detail-title:has-text('黄浦区')", timeout=WAIT_MS)
    wait_badge(page, "巡屏 1/3")  # and round again


def test_tur002_operator_input_pauses_the_tour(boss, stack):
    page = boss
    wait_badge(page, "巡屏 2/3")
    page.keyboard.press("Shift")
    pressed = time.monotonic()
    wait_badge(page, "巡屏 2/3 · 已暂停", timeout=5_000)
    wait_badge(page, "巡屏 3/3")
    assert time.monotonic() - pressed >= PAUSE_S  # not before the pause was over


def test_tur003_the_tour_survives_a_reload(boss, stack):
    page = boss
    page.goto(stack.base + "/?tour=310000,310104,310101&every=5&area=310104&step=2")
    wait_badge(page, "巡屏 2/3")
    page.reload()
    wait_badge(page, "巡屏 2/3")  # where it was
    assert "step=2" in page.evaluate("() => location.search")
    wait_badge(page, "巡屏 3/3")  # and it goes on
    page.wait_for_selector("#detail-title:has-text('黄浦区')", timeout=WAIT_MS)
