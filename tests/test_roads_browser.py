"""Roads, not dots, in headless Chromium (run: pytest -k rds).

The demo city with its shipped synthetic road network: segments on the network are
drawn as lines coloured by their level, a segment without a road as a dot; the
network's geometry is fetched once by URL and never travels with a tick.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from playwright.sync_api import Error as PlaywrightError

from layers.base import ROADS_URL
from layers.traffic import LEVEL_COLORS
from tests import browser
from tests.events import XUHUI_POINT, traffic

pytestmark = pytest.mark.browser

MAP = "#map-graph .js-plotly-plot"
# segment -> speed (free flow 60): 10 km/h severe, 35 slow, 55 smooth
ON_ROADS = {"SEG-310104-001": 10.0, "SEG-310104-002": 35.0, "SEG-310101-001": 55.0}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with browser.embedded_app(tmp_path_factory.mktemp("roads"),
                              CITYBRAIN_UPDATE_MS="400") as (settings, client, app):
        geography = app.server.extensions["citybrain"].geography
        roads = geography.roads
        for segment_id, speed in ON_ROADS.items():
            client.xadd(settings.stream, traffic(segment_id, speed, 60,
                                                 point=roads.midpoints[segment_id]))
        client.xadd(settings.stream, traffic("NO-ROAD-1", 20, 60, point=XUHUI_POINT))
        with browser.background_worker(settings, client, geography), \
                browser.live_server(app) as base, sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            context = chromium.new_context(viewport={"width": 1920, "height": 1080})
            tried = browser.offline(context)
            fetched: list[str] = []
            ticks: list[bytes] = []

            def seen(response) -> None:  # type: ignore[no-untyped-def]
                if ROADS_URL in response.url:
                    fetched.append(response.url)
                elif "_dash-update-component" in response.url and "kpi-row.children" in (
                        response.request.post_data or "") and response.status == 200:
                    try:
                        ticks.append(response.body())
                    except PlaywrightError:  # the page closed while the tick came in
                        pass

            context.on("response", seen)
            page = context.new_page()
            yield SimpleNamespace(settings=settings, client=client, geography=geography,
                                  base=base, page=page, fetched=fetched, ticks=ticks)
            context.close()
            chromium.close()
            assert tried == [], f"requests tried to leave the machine: {tried}"


def drawn_roads(page) -> list[dict]:
    """The road lines MapLibre rendered: centre, colour (0..1 channels) and width."""
    return page.evaluate(f"""() => {{
        const m = document.querySelector('{MAP}')._fullLayout.map._subplot.map;
        const layers = m.getStyle().layers.map(l => l.id)
            .filter(id => id.includes('traffic-roads') && id.endsWith('line'));
        return m.queryRenderedFeatures({{layers}}).map(f => ({{
            ct: f.properties.ct, colour: f.layer.paint['line-color'],
            width: f.layer.paint['line-width']}})); }}""")


def nearest(roads, point) -> str:
    """The segment whose road's middle is closest to a point."""
    return min(ON_ROADS, key=lambda s: (roads.midpoints[s][0] - point[0]) ** 2
               + (roads.midpoints[s][1] - point[1]) ** 2)


def test_rds006_roads_are_lines_coloured_by_level_and_fetched_once(stack):
    page = stack.page
    page.goto(stack.base + "/")
    page.wait_for_selector("#map-layers", timeout=20_000)
    page.click("#map-layers label:has-text('交通拥堵')")  # the traffic layer is off by default
    page.wait_for_function(
        f"""n => {{ const gd = document.querySelector('{MAP}');
            const t = gd && gd.data && gd.data.find(d => d.uid === 'traffic-roads');
            const m = gd && gd._fullLayout.map && gd._fullLayout.map._subplot.map;
            if (!t || t.visible !== true || t.locations.length !== n || !m.loaded()) return false;
            const layers = m.getStyle().layers.map(l => l.id)
                .filter(id => id.includes('traffic-roads') && id.endsWith('line'));
            return m.queryRenderedFeatures({{layers}}).length >= n; }}""",
        arg=len(ON_ROADS), timeout=30_000)
    expected = {"SEG-310104-001": LEVEL_COLORS[4], "SEG-310104-002": LEVEL_COLORS[2],
                "SEG-310101-001": LEVEL_COLORS[1]}
    roads = stack.geography.roads
    drawn = {nearest(roads, line["ct"]): line for line in drawn_roads(page)}
    assert set(drawn) == set(expected)
    for segment_id, colour in expected.items():
        got = drawn[segment_id]["colour"]  # MapLibre's rendered colour: {r, g, b, a} in 0..1
        assert [round(got[c] * 255) for c in "rgb"] == [
            int(colour[i:i + 2], 16) for i in (1, 3, 5)], segment_id
        assert drawn[segment_id]["width"] == roads.width(segment_id)  # by its road class
    dots = page.evaluate(f"""() => document.querySelector('{MAP}').data
        .find(d => d.uid === 'traffic-segments').customdata.map(c => c[0])""")
    assert dots == ["NO-ROAD-1"]  # the segment without a road stays a dot
    # A new level for a road: its line changes colour; the geometry is not fetched again
    # and no tick carries it.
    stack.ticks.clear()
    stack.client.xadd(stack.settings.stream, traffic(
        "SEG-310101-001", 5.0, 60, point=stack.geography.roads.midpoints["SEG-310101-001"]))
    page.wait_for_function(
        f"""c => {{ const t = document.querySelector('{MAP}').data
            .find(d => d.uid === 'traffic-roads');
            return t.marker.line.color[t.locations.indexOf('SEG-310101-001')] === c; }}""",
        arg=LEVEL_COLORS[4], timeout=20_000)
    assert len(stack.fetched) == 1
    deadline = time.monotonic() + 20  # the new colour may come with a redraw: wait for a tick
    while not stack.ticks:
        assert time.monotonic() < deadline, "no tick answered after the new level"
        page.wait_for_timeout(100)
    assert not any(b"coordinates" in body for body in stack.ticks)
