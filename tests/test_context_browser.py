"""The context layer in headless Chromium (run: pytest -k ctx).

The demo city's coastline is fetched once by URL, drawn by MapLibre as thin lines under
the areas, credited "© OpenStreetMap contributors" on the map, and nothing leaves the
machine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from dashboard.context import CONTEXT_URL
from dashboard.screen.mapfig import CONTEXT_LINES, CONTEXT_RIVERS
from tests import browser

pytestmark = pytest.mark.browser

MAP = "#map-graph .js-plotly-plot"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    browser.need_chromium()
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with browser.embedded_app(tmp_path_factory.mktemp("ctx"), CITYBRAIN_UPDATE_MODE="poll",
                              CITYBRAIN_UPDATE_MS="500") as (_settings, _client, app), \
            browser.live_server(app) as base, sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        context = chromium.new_context(viewport={"width": 1920, "height": 1080})
        tried = browser.offline(context)
        fetched: list[str] = []
        context.on("request", lambda r: fetched.append(r.url) if CONTEXT_URL in r.url else None)
        page = context.new_page()
        page.goto(base + "/")
        yield SimpleNamespace(page=page, fetched=fetched)
        context.close()
        chromium.close()
        assert tried == [], f"requests tried to leave the machine: {tried}"


def test_ctx010_the_coastline_under_the_areas_the_rivers_over_the_fill_credited(stack):
    page = stack.page
    page.wait_for_function(f"""id => {{ const gd = document.querySelector('{MAP}');
        const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
        const map = m && m.map;
        return map && map.loaded() && map.getLayer(id) &&
               map.queryRenderedFeatures({{layers: [id]}}).length > 0; }}""",
                           arg=CONTEXT_LINES["id"], timeout=WAIT_MS)
    order = page.evaluate(f"""() => document.querySelector('{MAP}')._fullLayout.map._subplot
        .map.getStyle().layers.map(l => l.id)""")
    assert order.index(CONTEXT_LINES["id"]) < min(
        i for i, name in enumerate(order) if name.startswith("plotly-trace-layer"))
    # the rivers over the risk fill (which would hide them), under the areas' names
    page.wait_for_function(f"""id => {{ const map = document.querySelector('{MAP}')
        ._fullLayout.map._subplot.map;
        return map.getLayer(id) && map.queryRenderedFeatures({{layers: [id]}}).length > 0; }}""",
                           arg=CONTEXT_RIVERS["id"], timeout=WAIT_MS)
    order = page.evaluate(f"""() => document.querySelector('{MAP}')._fullLayout.map._subplot
        .map.getStyle().layers.map(l => l.id)""")
    names = [i for i, name in enumerate(order) if name.startswith("plotly-trace-layer-risk-names")]
    assert order.index("plotly-trace-layer-risk-fill-fill") < order.index(
        CONTEXT_RIVERS["id"]) < min(names)
    credit = page.locator(".maplibregl-ctrl-attrib").inner_text()
    assert "© OpenStreetMap contributors" in credit and "Rivers: GSHHG (LGPL)" in credit
    for _ in range(3):  # three ticks more: the lines are not fetched again
        page.wait_for_event("response", lambda r: "_dash-update-component" in r.url,
                            timeout=WAIT_MS)
    assert len(stack.fetched) == 1
    page.screenshot(path=str(SCREENSHOTS / "context-1920x1080.png"))
