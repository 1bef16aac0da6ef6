"""City-scale points in headless Chromium: counted bubbles at city zoom, points drilled down.

(run: pytest -k pts) 3,000 open incidents, more than the map draws one by one
(`layers.incidents.POINTS_MAX`), reported all over Shanghai through the stream and
applied by the real worker. The page runs offline: the count labels' glyphs come
from the app itself.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from layers.incidents import POINTS_MAX
from tests import browser

pytestmark = pytest.mark.browser

MAP = "#map-graph .js-plotly-plot"
OPEN = 3000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with browser.embedded_app(tmp_path_factory.mktemp("points"),
                              CITYBRAIN_UPDATE_MS="500") as (settings, client, app):
        geography = app.server.extensions["citybrain"].geography
        browser.report_incidents(client, settings, geography, OPEN)
        with browser.live_server(app) as base, sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            context = chromium.new_context(viewport={"width": 1920, "height": 1080})
            tried = browser.offline(context)
            glyphs: list[tuple[str, int]] = []
            context.on("response", lambda r: glyphs.append((r.url, r.status))
                       if "/glyphs/" in r.url else None)
            page = context.new_page()
            yield SimpleNamespace(settings=settings, client=client, app=app, geography=geography,
                                  base=base, page=page, glyphs=glyphs)
            context.close()
            chromium.close()
            assert tried == [], f"requests tried to leave the machine: {tried}"


def summary(stack, area_id: str) -> dict:
    with stack.app.server.test_client() as api:
        return api.get(f"/api/v1/summary?area_id={area_id}").get_json()


def shown(page, uid: str) -> dict:
    """A trace of the drawn map (lon, text and customdata)."""
    return page.evaluate(
        f"""uid => {{ const t = document.querySelector('{MAP}').data.find(d => d.uid === uid);
            return t && {{lon: t.lon, lat: t.lat, text: t.text, customdata: t.customdata}}; }}""",
        uid)


def wait_drawn(page, uid: str) -> None:
    """Until the map has loaded and draws something of that trace."""
    page.wait_for_function(
        f"""uid => {{ const gd = document.querySelector('{MAP}');
            const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
            const t = gd && gd.data && gd.data.find(d => d.uid === uid);
            return m && t && t.lon.length > 0 && m.map.loaded(); }}""", arg=uid, timeout=30_000)


def test_pts001_city_shows_counted_bubbles_with_drawn_labels(stack):
    page = stack.page
    page.goto(stack.base + "/")
    wait_drawn(page, "incidents-clusters")
    points = shown(page, "incidents-points")
    assert points["lon"] == []  # not 3,000 points: counts
    counted = shown(page, "incidents-clusters")
    districts = stack.geography.children(stack.geography.root_id)
    assert [c[0] for c in counted["customdata"]] == [f"drill:{d}" for d in districts]
    for district, label, custom in zip(districts, counted["text"], counted["customdata"],
                                       strict=True):
        numbers = summary(stack, district)["incidents"]
        assert label == str(numbers["open"]) == str(custom[2])
        assert custom[3] == numbers["overdue"]
    assert sum(int(x) for x in counted["text"]) == OPEN
    # The labels are drawn: MapLibre placed them with the glyphs the app serves (a label
    # that would collide with another is left out, as MapLibre does: most are drawn).
    placed = page.wait_for_function(
        f"""n => {{ const m = document.querySelector('{MAP}')._fullLayout.map._subplot.map;
            const layers = m.getStyle().layers.map(l => l.id)
                .filter(id => id.includes('incidents-clusters') && id.endsWith('symbol'));
            const found = layers.length ? m.queryRenderedFeatures({{layers}}) : [];
            return found.length >= n && found.map(f => f.properties.text); }}""",
        arg=len(districts) * 3 // 4, timeout=20_000).json_value()
    assert set(placed) <= set(counted["text"])
    assert stack.glyphs and all(status == 200 for _, status in stack.glyphs)


def test_pts002_drilling_down_shows_single_points(stack):
    page = stack.page
    xuhui = summary(stack, "310104")["incidents"]["open"]
    assert xuhui <= POINTS_MAX  # one district of sixteen: few enough to draw one by one
    page.goto(stack.base + "/?area=310104")
    wait_drawn(page, "incidents-points")
    assert len(shown(page, "incidents-points")["lon"]) == xuhui
    assert shown(page, "incidents-clusters")["lon"] == []


def test_pts003_a_click_on_a_bubble_drills_into_its_district(stack):
    page = stack.page
    page.goto(stack.base + "/")
    wait_drawn(page, "incidents-clusters")
    target = stack.geography.areas["310115"]  # Pudong
    xy = page.evaluate(
        f"""([lon, lat]) => {{ const gd = document.querySelector('{MAP}');
            const m = gd._fullLayout.map._subplot.map; const p = m.project([lon, lat]);
            const r = m.getCanvas().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y]; }}""", [target.lon, target.lat])
    page.mouse.move(xy[0] - 30, xy[1] - 30)
    page.mouse.move(*xy, steps=5)  # Plotly clicks what it hovers: wait for its label
    page.wait_for_selector(f".hoverlayer .hovertext:has-text('{target.name}')", timeout=10_000)
    page.mouse.click(*xy)
    page.wait_for_function("() => location.search.includes('area=310115')", timeout=10_000)
    wait_drawn(page, "incidents-points")  # Pudong has no finer areas and ~190 incidents
    assert len(shown(page, "incidents-points")["lon"]) == summary(
        stack, "310115")["incidents"]["open"]
