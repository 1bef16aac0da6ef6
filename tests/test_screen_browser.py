"""The screen in headless Chromium against the app and a real Redis (run: pytest -k scr).

One Redis, one worker thread, one app server and one browser serve the whole
module; every page runs offline (any request leaving the machine is aborted
and fails the test), and a console error or an uncaught exception on any
page fails it too (`no_console_errors` in conftest.py). The stale-banner test
stops and restarts this module's own Redis, so it stays last in the file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dashboard.app import create_app
from tests import browser
from tests.events import PUDONG_POINT, incident

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"
MAP = browser.MAP
UPDATE = "/_dash-update-component"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    with browser.demo_city(tmp_path_factory.mktemp("screen")) as city:
        yield city


@pytest.fixture(scope="module")
def screen(stack):
    """One page for the module (a wall screen loads once and then lives on its own)."""
    context = stack.chromium.new_context(viewport={"width": 1920, "height": 1080})
    tried = browser.offline(context)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(stack.base + "/")
    wait_map(page, 16)
    yield page
    context.close()
    assert tried == [], f"requests tried to leave the machine: {tried}"


@pytest.fixture
def page(screen):
    yield screen
    assert screen.dialogs == [], "a script ran from untrusted text"


wait_map = browser.wait_map


@contextmanager
def fresh_page(stack, size: tuple[int, int], scale: float = 1) -> Iterator:
    """A new offline page of that size (CSS pixels) and scale, on the city's drawn map."""
    context = stack.chromium.new_context(viewport={"width": size[0], "height": size[1]},
                                         device_scale_factor=scale)
    tried = browser.offline(context)
    page = context.new_page()
    try:
        page.goto(stack.base + "/")
        wait_map(page, 16)
        yield page
    finally:
        context.close()
    assert tried == [], f"requests tried to leave the machine: {tried}"


def navigate(page, query: str, locations: int) -> None:
    """Go to `/?query` the way the screen's own links do (no page reload)."""
    page.evaluate("""q => { history.pushState({}, '', '/' + q);
        window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""", query)
    wait_map(page, locations)


def trace(page, uid: str) -> dict:
    return page.evaluate(
        f"""uid => {{ const t = document.querySelector('{MAP}').data.find(d => d.uid === uid);
            return t && {{locations: t.locations, lon: t.lon, lat: t.lat, z: t.z,
                          visible: t.visible}}; }}""", uid)


def wait_for_search(page, part: str) -> None:
    page.wait_for_function("p => location.search.includes(p)", arg=part, timeout=20_000)


def summary(stack, area_id: str | None = None) -> dict:
    with stack.app.server.test_client() as api:
        return api.get("/api/v1/summary" + (f"?area_id={area_id}" if area_id else "")).get_json()


def number(page, selector: str) -> int:
    return int(page.inner_text(selector).replace(",", "").strip())


def test_scr001_city_loads_with_district_polygons(page, stack):
    navigate(page, "", 16)
    fill = trace(page, "risk-fill")
    assert sorted(fill["locations"]) == sorted(stack.geography.children("310000"))
    drawn = page.evaluate(f"""() => {{
        const m = document.querySelector('{MAP}')._fullLayout.map._subplot.map;
        const ids = m.queryRenderedFeatures({{layers: ['plotly-trace-layer-risk-fill-fill']}})
            .map(f => f.properties && f.properties.id || f.id);
        return {{n: ids.length, canvas: m.getCanvas().width}}; }}""")
    assert drawn["n"] >= 16 and drawn["canvas"] > 500
    assert page.inner_text("#screen .title") == "城市运行驾驶舱"
    assert number(page, "#kpi-open") == summary(stack)["incidents"]["open"]
    assert page.is_hidden("#stale-banner")
    fits = page.evaluate("() => [document.documentElement.scrollWidth <= innerWidth,"
                         " document.documentElement.scrollHeight <= innerHeight]")
    assert fits == [True, True], "the screen scrolls at 1920x1080"
    assert browser.clipped_headings(page) == [], "headings squeezed by their lists"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / "cockpit-1920x1080.png"))
    # The traffic layer: switched on, its traces show with their legend; off again.
    page.click("#map-layers label:has-text('交通拥堵')")
    page.wait_for_function(
        f"""() => document.querySelector('{MAP}').data
            .filter(d => d.uid.startsWith('traffic-')).every(d => d.visible === true)""",
        timeout=20_000)
    assert "畅通" in page.inner_text("#map-legend")
    page.click("#map-layers label:has-text('交通拥堵')")
    page.wait_for_function("() => !document.querySelector('#map-legend').innerText"
                           ".includes('畅通')", timeout=20_000)


def test_scr002_xadded_incident_reaches_feed_map_and_kpi(page, stack):
    navigate(page, "", 16)
    before = summary(stack)["incidents"]["open"]
    title = f"新井盖缺失 {time.time():.0f}"
    lon = PUDONG_POINT[0] + 0.0123
    stack.client.xadd(stack.settings.stream, incident(
        "LIVE-1", point=(lon, PUDONG_POINT[1]), category="manhole", severity="4", title=title))
    started = time.monotonic()
    page.wait_for_function(
        "t => document.querySelector('#feed-list').innerText.includes(t)", arg=title,
        timeout=20_000)
    page.wait_for_function(
        f"""lon => document.querySelector('{MAP}').data
            .find(d => d.uid === 'incidents-points').lon.some(x => Math.abs(x - lon) < 1e-6)""",
        arg=lon, timeout=20_000)
    page.wait_for_function(
        "n => document.querySelector('#kpi-open').innerText.replace(/,/g, '') === String(n)",
        arg=before + 1, timeout=20_000)
    assert time.monotonic() - started < 5
    assert number(page, "#kpi-open") == summary(stack)["incidents"]["open"] == before + 1
    assert number(page, "#kpi-today") == summary(stack)["incidents"]["today"]


def test_scr003_untrusted_title_is_text(page, stack):
    navigate(page, "", 16)
    stack.client.xadd(stack.settings.stream, incident(
        "XSS-1", point=PUDONG_POINT, title=XSS, department="<b>dept</b>"))
    page.wait_for_function(
        "t => document.querySelector('#feed-list').innerText.includes(t)", arg=XSS,
        timeout=20_000)
    page.wait_for_timeout(500)
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert page.dialogs == []


def test_scr004_xuhui_by_url_shows_compounds(page, stack):
    navigate(page, "?area=310104", 957)
    compounds = stack.geography.descendants_at("310104", "compound")
    assert len(trace(page, "risk-fill")["locations"]) == len(compounds) == 957
    assert "徐汇区" in page.inner_text("#detail-title")
    assert page.inner_text("#crumbs").startswith("上海市")
    assert number(page, "#kpi-open") == summary(stack, "310104")["incidents"]["open"]
    # The top-risk list of Xuhui links to its compounds.
    assert page.locator("#top-list a").count() == 10


def test_scr005_select_by_picker_click_and_breadcrumb(page, stack):
    navigate(page, "", 16)
    page.click("#area-picker")
    page.click("[role=option]:has-text('徐汇区')")
    wait_for_search(page, "area=310104")
    page.wait_for_function(
        f"""() => {{ const t = document.querySelector('{MAP}').data
            .find(d => d.uid === 'risk-fill'); return t && t.locations.length === 957; }}""",
        timeout=20_000)
    # Hide the incidents (the layer switcher) so that the click lands on the area.
    page.click("#map-layers label:has-text('在办事件')")
    page.wait_for_function(
        f"""() => document.querySelector('{MAP}').data
            .find(d => d.uid === 'incidents-points').visible === false""", timeout=20_000)
    target = stack.geography.areas["310104-R0100"]
    x, y = page.evaluate(
        f"""([lon, lat]) => {{ const gd = document.querySelector('{MAP}');
            const m = gd._fullLayout.map._subplot.map; m.jumpTo({{center: [lon, lat], zoom: 15}});
            const p = m.project([lon, lat]); const r = m.getCanvas().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y]; }}""", [target.lon, target.lat])
    page.wait_for_timeout(600)
    page.mouse.move(x, y)  # Plotly clicks what it hovers
    page.mouse.move(x + 1, y + 1)
    page.wait_for_timeout(200)
    page.mouse.click(x + 1, y + 1)
    wait_for_search(page, "area=310104-R0100")
    page.wait_for_selector("#detail-title:has-text('示例小区 0100')", timeout=20_000)
    page.click("#map-layers label:has-text('在办事件')")
    page.click("#crumbs a >> text=上海市")
    wait_for_search(page, "area=310000")
    page.wait_for_function(
        f"""() => document.querySelector('{MAP}').data
            .find(d => d.uid === 'risk-fill').locations.length === 16""", timeout=20_000)


def test_scr006_english_by_query(page, stack):
    navigate(page, "?lang=en&area=310104", 957)
    assert page.inner_text("#screen .title") == "City Operations Cockpit"
    assert page.inner_text(".kpi-open .kpi-label") == "Open"
    assert "Xuhui" in page.inner_text("#detail-title")
    assert page.get_attribute("#screen", "lang") == "en"
    page.wait_for_timeout(600)
    page.screenshot(path=str(SCREENSHOTS / "cockpit-xuhui-en-1920x1080.png"))


def test_scr007_4k_fits_and_screenshot(page, stack):
    navigate(page, "?area=310000", 16)
    page.set_viewport_size({"width": 3840, "height": 2160})
    try:
        page.wait_for_timeout(300)
        fits = page.evaluate("() => [document.documentElement.scrollWidth <= innerWidth,"
                             " document.documentElement.scrollHeight <= innerHeight]")
        assert fits == [True, True], "the screen scrolls at 3840x2160"
        assert browser.clipped_headings(page) == [], "headings squeezed by their lists"
        font = page.evaluate("() => parseFloat(getComputedStyle("
                             "document.querySelector('#kpi-open')).fontSize)")
        assert font >= 100, "KPI numerals must stay large on a 4K wall"
    finally:
        page.set_viewport_size({"width": 1920, "height": 1080})
    # A 4K wall runs its browser at 200 %: the screenshot is 3840x2160 device pixels.
    with fresh_page(stack, (1920, 1080), scale=2) as wall:
        wall.wait_for_timeout(500)
        wall.screenshot(path=str(SCREENSHOTS / "cockpit-3840x2160.png"))


def is_tick(response) -> bool:
    """Whether a response answers the screen's tick (its live update)."""
    return UPDATE in response.url and "tick.n_intervals" in (response.request.post_data or "")


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160), (1366, 768), (390, 844)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_scr009_page_loads_without_console_errors(stack, size):
    """A fresh page at each wall, desk and phone size logs no console or page error."""
    with fresh_page(stack, size) as page:
        for _ in range(2):  # two live updates after the map is drawn
            with page.expect_response(is_tick, timeout=20_000) as tick:
                pass
            assert tick.value.status == 200
        assert browser.CONSOLE.take() == []


@contextmanager
def failing_once(stack, pattern: str) -> Iterator:
    """A new offline page whose first request matching `pattern` answers 500.

    Yields the page, the URLs that failed and the URLs of its `load` events.
    """
    context = stack.chromium.new_context(viewport={"width": 1920, "height": 1080})
    tried = browser.offline(context)
    failed: list[str] = []

    def fail_once(route) -> None:
        if failed:
            route.fallback()
        else:
            failed.append(route.request.url)
            route.fulfill(status=500, body="error")

    context.route(pattern, fail_once)
    page = context.new_page()
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    try:
        yield page, failed, loads
    finally:
        context.close()
    assert tried == []


@pytest.mark.allow_console(r"status of 500 .*react-dom@",
                           reason="the test answers react-dom's first load with 500")
@pytest.mark.allow_console(
    r"page error: (DashRenderer is not defined|Cannot read properties of undefined "
    r"\(reading '(unstable_batchedUpdates|DashContext)'\))",
    reason="the scripts after the missing react-dom fail, before the page reloads")
def test_scr010_page_reloads_itself_when_a_script_fails_to_load(stack):
    """A script answering 500 once (a cold server did): the page reloads and draws the map."""
    with failing_once(stack, "**/react-dom@*") as (page, failed, loads):
        page.goto(stack.base + "/")
        wait_map(page, 16)
        assert len(failed) == 1 and len(loads) == 2
        assert page.evaluate("() => sessionStorage.getItem('citybrain-reloads')") is None


def test_scr011_a_map_purged_while_it_draws_is_purged_after_the_drawing(stack):
    """A new screen replaced the map while it drew a tick's figure: no page error.

    Dash's Graph purges a graph it removes; Plotly's remaining drawing steps then read
    the purged graph and threw (off006 saw "reading '_rangeSliderData'").
    """
    with fresh_page(stack, (1920, 1080)) as page:
        result = page.evaluate(f"""async () => {{
            const gd = document.querySelector('{MAP}');
            const layout = JSON.parse(JSON.stringify(gd.layout));
            layout.map.center = {{lon: 121.5, lat: 31.1}};
            Plotly.react(gd, gd.data, layout);
            const drawing = gd.cockpitDrawing;  // the whole draw (react's own promise
            // settles at the first painted frame: assets/purge-guard.js `painted`)
            Plotly.purge(gd);  // as the Graph does when a new screen replaces it
            const kept = !!gd._fullLayout;
            await drawing;
            return {{kept: kept, purged: !gd._fullLayout}}; }}""")
        assert result == {"kept": True, "purged": True}
        assert browser.CONSOLE.take() == []


@pytest.mark.allow_console(r"status of 500 .*_dash-layout",
                           reason="the test answers the page's first layout request with 500")
def test_scr012_page_reloads_itself_when_the_screen_is_not_drawn_in_time(stack):
    """The layout failing once leaves the page without a screen: it reloads after the wait."""
    app = create_app(stack.settings.replace(page_start_s=2))
    with browser.live_server(app) as base, \
            failing_once(stack, "**/_dash-layout") as (page, failed, loads):
        page.goto(base + "/")
        page.wait_for_selector("._dash-error", timeout=20_000)  # no screen, and no reload yet
        assert len(loads) == 1
        wait_map(page, 16)
        assert len(failed) == 1 and len(loads) == 2


@pytest.mark.allow_console(
    r"status of 503 .*_dash-update-component",
    reason="Redis is stopped on purpose: until it is back the server answers update "
           "requests 503 with Retry-After (acc020), which the browser logs")
def test_scr008_stale_banner_when_redis_stops_and_clears_on_restart(page, stack):
    navigate(page, "", 16)
    shown = page.inner_text("#kpi-open")
    stack.server.stop()
    try:
        page.wait_for_selector("#stale-banner:not(.hidden)", timeout=20_000)
        banner = page.inner_text("#stale-banner")
        assert "数据已停止更新" in banner and "无法连接数据库" in banner
        assert page.get_attribute("#screen", "class") == "screen is-stale"
        assert page.inner_text("#kpi-open") == shown  # the last known state stays
        page.screenshot(path=str(SCREENSHOTS / "cockpit-stale-1920x1080.png"))
    finally:
        stack.server.start()
    page.wait_for_selector("#stale-banner.hidden", state="attached", timeout=15_000)
    assert page.get_attribute("#screen", "class") == "screen"
